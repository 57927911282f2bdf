/**
 * The HTTP API's runs that move many people, over a real socket on the tests' stack: a domain's downgrade from its
 * people uploaded in pages through preview, approval and the administrator to its report in JSON and CSV; a
 * campaign rejected, paused, resumed and cancelled through the same routes; the webhook outbox's routes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import got, { type Response } from 'got';
import { parse } from 'csv-parse/sync';
import { startApiServer } from '../src/api/server.js';
import { ApiKeys } from '../src/store/apiKeys.js';
import {
  approveAsAdministrator,
  createDomain,
  createReadWriteUser,
  startStack,
  type RunningWorker,
  type Stack,
} from '../harness/stack.js';
import { waitUntil } from '../harness/waitUntil.js';
import { enterpriseDowngradeId } from '../src/workflows/enterpriseDefinitions.js';

let stack: Stack;
let worker: RunningWorker;
let api: { app: FastifyInstance; url: string };
/** An operator's key; one that may only approve; one that may only read. */
let operator: string;
let approver: string;
let reader: string;

before(async () => {
  stack = await startStack();
  worker = await stack.startWorker();
  api = await startApiServer(stack.api, { host: '127.0.0.1', port: 0, logLevel: 'silent' });
  const keys = new ApiKeys(stack.database);
  operator = (await keys.create('operator', ['operators:write', 'operators:read', 'webhooks:admin'])).key;
  approver = (await keys.create('approver', ['operators:approve'])).key;
  reader = (await keys.create('dashboard', ['operators:read'])).key;
  await got.put(`${stack.simulator.url}/_sim/rate-limit`, { json: { perSecond: 50, perMinute: 100_000 } });
});

after(async () => {
  await api?.app.close();
  await worker?.stop();
  await stack?.stop();
});

type Answer = { status: number; body: Record<string, unknown>; response: Response<string> };

async function call(
  method: 'GET' | 'POST',
  path: string,
  key: string,
  json?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const response = await got(`${api.url}${path}`, {
    method,
    throwHttpErrors: false,
    retry: { limit: 0 },
    json,
    headers: { authorization: `Bearer ${key}`, ...headers },
  });
  const json_ = /json/.test(response.headers['content-type'] ?? '');
  return { status: response.statusCode, body: json_ ? JSON.parse(response.body) : {}, response };
}

function assertStatus(answer: Answer, status: number, code?: string) {
  assert.equal(answer.status, status, answer.response.body);
  if (code) assert.equal(answer.body.code, code);
}

/** Uploads `pages` as one upload and answers its id. */
async function upload(kind: 'domains' | 'campaigns', pages: Array<Record<string, unknown>>): Promise<string> {
  const created = await call('POST', '/v1/uploads', operator, { kind });
  assertStatus(created, 201);
  const uploadId = String(created.body.uploadId);
  for (const page of pages)
    assertStatus(await call('POST', `/v1/uploads/${uploadId}/pages`, operator, page), 200);
  return uploadId;
}

describe('a domain through the API', () => {
  const domain = 'api-runs.example.org';
  const emails = Array.from({ length: 30 }, (_, i) => `user${i}@${domain}`);
  let previewId: string;

  test('its users go up in pages; the preview counts what it dropped and reads the service account', async () => {
    const serviceAccount = await createDomain(stack, domain, emails);
    const uploadId = await upload('domains', [
      { emails: [...emails.slice(0, 20), 'not-an-email'] },
      { emails: [...emails.slice(20), emails[3]!] },
    ]);
    // An upload takes its own kind's people only, and is its key's alone.
    assertStatus(
      await call('POST', `/v1/uploads/${uploadId}/pages`, operator, { people: [{ sub: 'acc_x' }] }),
      400,
      'invalid_request',
    );
    const other = (await new ApiKeys(stack.database).create('other operator', ['operators:write'])).key;
    assertStatus(
      await call('POST', `/v1/uploads/${uploadId}/pages`, other, { emails: ['a@b.c'] }),
      404,
      'upload_not_found',
    );

    const preview = await call('POST', `/v1/domains/${domain}/previews`, operator, {
      uploadId,
      serviceAccountRefreshToken: serviceAccount.refresh_token,
      serviceAccountSub: serviceAccount.service_account_id,
    });
    assertStatus(preview, 201);
    previewId = String(preview.body.previewId);
    const users = preview.body.users as Record<string, unknown>;
    assert.equal(users.count, 30);
    assert.equal(users.duplicates, 1);
    assert.equal(users.malformed, 1);
    assert.equal((preview.body.serviceAccount as Record<string, unknown>).providerName, 'google');
    assert.equal(JSON.stringify(preview.body).includes(serviceAccount.refresh_token), false);
    // Read once: the upload is gone.
    assertStatus(
      await call('POST', `/v1/domains/${domain}/previews`, operator, { uploadId }),
      404,
      'upload_not_found',
    );
    const again = await call('GET', `/v1/domains/${domain}/previews/${previewId}`, reader);
    assert.deepEqual(again.body, preview.body);
    assertStatus(
      await call('GET', `/v1/campaigns/${domain}/previews/${previewId}`, reader),
      404,
      'preview_not_found',
    );
  });

  test('started from its preview it waits for approval, which only an approver of that preview gives', async () => {
    const started = await call('POST', `/v1/domains/${domain}/start`, operator, { previewId, window: 10 });
    assertStatus(started, 201);
    assert.equal(started.body.previewId, previewId);
    const waiting = await call('GET', `/v1/domains/${domain}`, reader);
    assert.equal(waiting.body.phase, 'awaiting_approval');
    assert.equal((waiting.body.approval as Record<string, unknown>).previewId, previewId);

    const decision = { by: 'ops@example.com', previewId };
    assertStatus(
      await call('POST', `/v1/domains/${domain}/approve`, operator, decision),
      403,
      'insufficient_scope',
    );
    assertStatus(
      await call('POST', `/v1/domains/${domain}/approve`, approver, { ...decision, previewId: 'pv_stale' }),
      409,
      'downgrade_refused',
    );
    const approved = await call('POST', `/v1/domains/${domain}/approve`, approver, decision);
    assertStatus(approved, 200);
    assert.notEqual(approved.body.phase, 'awaiting_approval');
    assert.equal((approved.body.approval as Record<string, unknown>).decidedBy, 'ops@example.com');
  });

  test('once the administrator and its users have answered, the report pages in JSON and in CSV', async () => {
    await approveAsAdministrator(stack, domain);
    const result = await stack.enterprise.waitForResult(domain);
    assert.equal(result.phase, 'completed');

    const first = await call('GET', `/v1/domains/${domain}/report?limit=20`, reader);
    assertStatus(first, 200);
    assert.equal((first.body.rows as unknown[]).length, 20);
    assert.equal(first.body.nextCursor, '20');
    assert.match(String(first.response.headers.link), /cursor=20.*rel="next"/);
    const second = await call('GET', `/v1/domains/${domain}/report?limit=20&cursor=20`, reader);
    type Row = Record<string, unknown>;
    const rows = [...(first.body.rows as Row[]), ...(second.body.rows as Row[])];
    assert.equal(second.body.nextCursor, undefined);
    assert.deepEqual(
      rows.map((row) => row.email),
      emails,
    );
    assert.ok(rows.every((row) => row.state === 'completed' && row.providerName === 'google_free_busy'));

    const csv = await call('GET', `/v1/domains/${domain}/report`, reader, undefined, { accept: 'text/csv' });
    assertStatus(csv, 200);
    assert.match(csv.response.headers['content-type'] ?? '', /^text\/csv/);
    const records = parse(csv.response.body, { columns: true }) as Array<Record<string, string>>;
    assert.deepEqual(
      records.map((record) => [record.email, record.state]),
      emails.map((email) => [email, 'completed']),
    );
  });
});

test("a domain's run is no Individual downgrade: those routes neither read nor cancel it", async () => {
  const domainRun = enterpriseDowngradeId('api-runs.example.org');
  const backend = (
    await new ApiKeys(stack.database).create('backend', ['downgrades:write', 'downgrades:read'])
  ).key;
  assertStatus(await call('GET', `/v1/downgrades/${domainRun}`, backend), 404, 'downgrade_not_found');
  assertStatus(await call('POST', `/v1/downgrades/${domainRun}/cancel`, backend), 404, 'downgrade_not_found');
  assert.equal((await stack.enterprise.get('api-runs.example.org')).phase, 'completed');
});

test('a service account Cronofy refuses to read makes no preview: a 400 naming why, not a failure', async () => {
  const uploadId = await upload('domains', [{ emails: ['someone@refused.example.org'] }]);
  const answer = await call('POST', '/v1/domains/refused.example.org/previews', operator, {
    uploadId,
    serviceAccountRefreshToken: 'not-a-token-cronofy-gave',
  });
  assertStatus(answer, 400, 'invalid_request');
  assert.match(String(answer.body.detail), /service account could not be read.*invalid_grant/);
});

test('a path parameter as long as its schema allows is answered by the route, not refused by the router', async () => {
  assertStatus(await call('GET', `/v1/downgrades/${'a'.repeat(300)}`, reader), 403, 'insufficient_scope');
  const named = await call('GET', `/v1/domains/${'a'.repeat(253)}`, reader);
  assertStatus(named, 404, 'downgrade_not_found');
});

describe('a campaign through the same routes', () => {
  async function campaignPreview(name: string, count: number): Promise<string> {
    const people = [];
    for (let i = 0; i < count; i += 1) {
      const account = await createReadWriteUser(stack, `${name}-${i}@example.com`);
      people.push({ sub: account.sub, refreshToken: account.refresh_token, userId: `u${i}` });
    }
    const uploadId = await upload('campaigns', [{ people }]);
    const preview = await call('POST', `/v1/campaigns/${name}/previews`, operator, { uploadId });
    assertStatus(preview, 201);
    assert.equal((preview.body.users as Record<string, unknown>).count, count);
    return String(preview.body.previewId);
  }

  test('rejected while it waits for approval, it ends with nothing done; an ended run refuses a pause', async () => {
    const name = 'api-rejected';
    const previewId = await campaignPreview(name, 2);
    assertStatus(await call('POST', `/v1/campaigns/${name}/start`, operator, { previewId }), 201);
    const rejected = await call('POST', `/v1/campaigns/${name}/reject`, approver, {
      by: 'ops@example.com',
      reason: 'wrong list',
    });
    assertStatus(rejected, 200);
    assert.equal(rejected.body.phase, 'rejected');
    const report = await call('GET', `/v1/campaigns/${name}/report`, reader);
    assert.deepEqual(
      (report.body.rows as Array<Record<string, unknown>>).map((row) => row.userId),
      ['u0', 'u1'],
    );
    assertStatus(
      await call('POST', `/v1/campaigns/${name}/pause`, operator, { by: 'ops@example.com' }),
      409,
      'downgrade_refused',
    );
    assertStatus(
      await call('POST', `/v1/campaigns/${name}/retry-failed`, operator),
      409,
      'downgrade_refused',
    );
  });

  test('completed with people who never answered, its retry asks just those again in a new run', async () => {
    const name = 'api-retried';
    const previewId = await campaignPreview(name, 2);
    // Nobody answers: each person's one prompt ends, and their downgrade with it, as the deadline passes.
    const start = { previewId, requireApproval: false, maxPrompts: 1, deadlineMs: 500 };
    assertStatus(await call('POST', `/v1/campaigns/${name}/start`, operator, start), 201);
    const ended = await waitUntil(`campaign ${name} completes`, async () => {
      const status = await call('GET', `/v1/campaigns/${name}`, reader);
      return status.body.phase === 'completed' && status.body;
    });
    assert.deepEqual(ended.counts, { expired: 2 });
    const retried = await call('POST', `/v1/campaigns/${name}/retry-failed`, operator);
    assertStatus(retried, 201);
    assert.equal(retried.body.users, 2);
    const again = await call('GET', `/v1/campaigns/${name}`, reader);
    assert.equal(again.body.userCount, 2);
    assert.notEqual(again.body.phase, 'completed');
    assertStatus(await call('POST', `/v1/campaigns/${name}/cancel`, operator), 202);
  });

  test('paused, resumed and cancelled while its people have not answered', async () => {
    const name = 'api-operated';
    const previewId = await campaignPreview(name, 3);
    assertStatus(
      await call('POST', `/v1/campaigns/${name}/start`, operator, { previewId, requireApproval: false }),
      201,
    );
    const paused = await call('POST', `/v1/campaigns/${name}/pause`, operator, { by: 'ops@example.com' });
    assertStatus(paused, 200);
    assert.equal((paused.body.paused as Record<string, unknown>).by, 'ops@example.com');
    const resumed = await call('POST', `/v1/campaigns/${name}/resume`, operator, { by: 'ops@example.com' });
    assertStatus(resumed, 200);
    assert.equal(resumed.body.paused, undefined);
    assertStatus(await call('POST', `/v1/campaigns/${name}/cancel`, operator), 202);
    await waitUntil(`campaign ${name} ends cancelled`, async () => {
      const status = await call('GET', `/v1/campaigns/${name}`, reader);
      return status.body.phase === 'cancelled';
    });
  });

  test('a run never started is a 404; a name that is no run kind is refused', async () => {
    assertStatus(await call('GET', '/v1/campaigns/never-started', reader), 404, 'downgrade_not_found');
    assertStatus(await call('GET', '/v1/teams/never-started', reader), 400, 'invalid_request');
  });
});

describe('the webhook outbox', () => {
  test('its endpoint, events, redelivery and enabling, for a key with webhooks:admin only', async () => {
    assertStatus(await call('GET', '/v1/webhooks/endpoint', reader), 403, 'insufficient_scope');
    const endpoint = await call('GET', '/v1/webhooks/endpoint', operator);
    assertStatus(endpoint, 200);
    assert.equal(endpoint.body.state, 'enabled');
    const events = await call('GET', '/v1/webhooks/events?status=delivered&limit=5', operator);
    assertStatus(events, 200);
    assert.ok(Array.isArray(events.body.events));
    assert.deepEqual((await call('POST', '/v1/webhooks/redeliver', operator, {})).body, { redelivered: 0 });
    assert.deepEqual((await call('POST', '/v1/webhooks/endpoint/enable', operator)).body, { enabled: false });
  });

  test("one downgrade's events a page at a time, in the order recorded, the last page without a cursor", async () => {
    const stream = `paging-${Date.now()}`;
    const recorded = ['a', 'b', 'c', 'd', 'e'].map((name) => `${stream}-${name}`);
    // Recorded as the service records an event: the application's endpoint receives them meanwhile.
    const body = JSON.stringify({ type: 'paging_test', status: { workflowId: stream } });
    for (const eventId of recorded)
      await stack.notifications.record({
        eventId,
        channel: 'webhook',
        stream,
        eventType: 'paging_test',
        body,
      });
    const listed: string[] = [];
    const pages: number[] = [];
    let cursor: string | undefined;
    do {
      const query = new URLSearchParams({ downgrade: stream, limit: '2', ...(cursor ? { cursor } : {}) });
      const page = await call('GET', `/v1/webhooks/events?${query}`, operator);
      assertStatus(page, 200);
      const events = page.body.events as Array<{ eventId: string }>;
      listed.push(...events.map((event) => event.eventId));
      pages.push(events.length);
      cursor = page.body.nextCursor as string | undefined;
    } while (cursor);
    assert.deepEqual(listed, recorded);
    assert.deepEqual(pages, [2, 2, 1]);
    assertStatus(await call('GET', '/v1/webhooks/events?cursor=abc', operator), 400, 'invalid_request');
  });
});
