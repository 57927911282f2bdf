/**
 * The HTTP API over a real socket, on the tests' stack (Temporal dev server, worker, simulator): keys and scopes,
 * problems, idempotent POSTs, an Individual downgrade from its start to its new credentials, the log, and the
 * OpenAPI document the routes' zod schemas make, with its reference page in Chromium.
 */
import assert from 'node:assert/strict';
import { API_KEY_PATTERN } from '../src/contracts/apiKeyFormat.js';
import { Validator } from '@seriousme/openapi-schema-validator';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import got, { type Response } from 'got';
import { startApiServer } from '../src/api/server.js';
import { ApiKeys } from '../src/store/apiKeys.js';
import { individualDowngradeId } from '../src/workflows/definitions.js';
import {
  createReadWriteUser,
  decideOnConsentPage,
  followRedirect,
  startStack,
  type RunningWorker,
  type Stack,
} from '../harness/stack.js';
import { launchChromium, missingChromium, SCREENSHOTS } from '../harness/chromium.js';
import { waitUntil } from '../harness/waitUntil.js';

let stack: Stack;
let worker: RunningWorker;
let api: { app: FastifyInstance; url: string };
let keys: ApiKeys;
/** A backend's key; a key that may only read; one revoked. */
let writer: string;
let reader: string;
let revoked: string;
/** Every line the API logged. */
const logLines: string[] = [];

before(async () => {
  stack = await startStack();
  worker = await stack.startWorker();
  keys = new ApiKeys(stack.database);
  api = await startApiServer(stack.api, {
    host: '127.0.0.1',
    port: 0,
    logLevel: 'info',
    logStream: { write: (line) => void logLines.push(line) },
  });
  writer = (await keys.create('backend', ['downgrades:write', 'downgrades:read', 'credentials:read'])).key;
  reader = (await keys.create('dashboard', ['downgrades:read'])).key;
  const gone = await keys.create('old backend', ['downgrades:write']);
  await keys.revoke(gone.id);
  revoked = gone.key;
});

after(async () => {
  await api?.app.close();
  await worker?.stop();
  await stack?.stop();
});

/** One request to the API, never throwing on a status; the body parsed as JSON. */
async function call(
  method: 'GET' | 'POST',
  path: string,
  options: { key?: string; json?: unknown; body?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: Record<string, unknown>; response: Response<string> }> {
  const response = await got(`${api.url}${path}`, {
    method,
    throwHttpErrors: false,
    retry: { limit: 0 },
    json: options.json,
    body: options.body,
    headers: {
      ...(options.key ? { authorization: `Bearer ${options.key}` } : {}),
      ...options.headers,
    },
  });
  return { status: response.statusCode, body: JSON.parse(response.body || 'null'), response };
}

function assertProblem(
  answer: { status: number; body: Record<string, unknown>; response: Response<string> },
  status: number,
  code: string,
) {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.match(answer.response.headers['content-type'] ?? '', /^application\/problem\+json/);
  assert.equal(answer.body.code, code);
  assert.equal(answer.body.status, status);
  assert.equal(typeof answer.body.title, 'string');
}

async function workflowExists(workflowId: string): Promise<boolean> {
  return stack.env.client.workflow
    .getHandle(workflowId)
    .describe()
    .then(
      () => true,
      () => false,
    );
}

describe('keys and scopes', () => {
  test('no key, a malformed, unknown or revoked key: 401, and nothing is started', async () => {
    const sub = 'acc_unauthenticated1';
    for (const key of [undefined, 'not-a-key', `cdk_${'a'.repeat(16)}_${'b'.repeat(43)}`, revoked]) {
      const answer = await call('POST', '/v1/downgrades', { key, json: { sub } });
      assertProblem(answer, 401, 'unauthenticated');
      assert.equal(answer.response.headers['www-authenticate'], 'Bearer');
    }
    assert.equal(await workflowExists(individualDowngradeId(sub)), false);
  });

  test('a key without the scope: 403, and nothing is started', async () => {
    const sub = 'acc_readeronly1';
    assertProblem(
      await call('POST', '/v1/downgrades', { key: reader, json: { sub } }),
      403,
      'insufficient_scope',
    );
    assert.equal(await workflowExists(individualDowngradeId(sub)), false);
  });

  test('keys are stored as a hash of their secret: no row holds a key or its secret', async () => {
    const rows = JSON.stringify(await stack.database.query('SELECT * FROM api_keys'));
    for (const key of [writer, reader, revoked]) {
      assert.equal(rows.includes(key), false);
      assert.equal(rows.includes(API_KEY_PATTERN.exec(key)![2]!), false);
    }
  });

  test('a key admin makes keys through the API, of its own scopes at most; the text is answered once', async () => {
    const admin = (await keys.create('key admin', ['keys:admin', 'downgrades:read'])).key;
    const request = {
      json: { name: 'reporting', scopes: ['downgrades:read'] },
      headers: { 'idempotency-key': 'k1' },
    };
    const created = await call('POST', '/v1/api-keys', { key: admin, ...request });
    assert.equal(created.status, 201);
    const made = String(created.body.key);
    assert.match(made, API_KEY_PATTERN);
    // A replay answers the same key; the stored answer is encrypted, so no row holds it.
    assert.equal((await call('POST', '/v1/api-keys', { key: admin, ...request })).body.key, made);
    const stored = JSON.stringify(await stack.database.query('SELECT * FROM api_idempotency'));
    assert.equal(stored.includes(API_KEY_PATTERN.exec(made)![2]!), false);
    assertProblem(
      await call('POST', '/v1/api-keys', {
        key: admin,
        json: { name: 'too much', scopes: ['credentials:read'] },
      }),
      403,
      'insufficient_scope',
    );
    assert.equal((await call('GET', '/v1/downgrades?limit=1', { key: made })).status, 200);
    const listed = await call('GET', '/v1/api-keys', { key: admin });
    assert.equal(JSON.stringify(listed.body).includes(made), false);
    assert.ok((listed.body.keys as Array<{ id: string }>).some((key) => key.id === created.body.id));
    assert.equal(
      (await call('POST', `/v1/api-keys/${String(created.body.id)}/revoke`, { key: admin })).status,
      200,
    );
    assertProblem(await call('GET', '/v1/downgrades?limit=1', { key: made }), 401, 'unauthenticated');
  });
});

test('no key, secret or refresh token appears in a line of the log', async () => {
  const account = await createReadWriteUser(stack, 'api-logged@example.com');
  const started = await call('POST', '/v1/downgrades', {
    key: writer,
    json: { sub: account.sub, refreshToken: account.refresh_token },
  });
  assert.equal(started.status, 201);
  await call('POST', '/v1/downgrades', { key: revoked, json: { sub: account.sub } });
  await call('GET', `/v1/downgrades/${String(started.body.workflowId)}`, { key: `${reader}x` });
  assert.ok(logLines.length > 0, 'the API logged its requests');
  const log = logLines.join('');
  for (const secret of [writer, reader, revoked, account.refresh_token]) {
    assert.equal(log.includes(secret), false);
    assert.equal(log.includes(secret.slice(-20)), false);
  }
});

describe('problems', () => {
  test('a body that does not match the schema names each field; one that is not JSON is refused too', async () => {
    const invalid = await call('POST', '/v1/downgrades', {
      key: writer,
      json: { sub: 'not-an-account', maxPrompts: 0, extra: true },
    });
    assertProblem(invalid, 400, 'invalid_request');
    const paths = (invalid.body.errors as Array<{ path: string }>).map((error) => error.path).join(' ');
    assert.match(paths, /sub/);
    assert.match(paths, /maxPrompts/);
    assertProblem(
      await call('POST', '/v1/downgrades', {
        key: writer,
        body: '{"sub":',
        headers: { 'content-type': 'application/json' },
      }),
      400,
      'invalid_request',
    );
  });

  test('an unknown downgrade and an unknown route: 404', async () => {
    assertProblem(
      await call('GET', '/v1/downgrades/downgrade-individual-acc_nobody', { key: reader }),
      404,
      'downgrade_not_found',
    );
    assertProblem(await call('GET', '/v1/nothing-here', { key: reader }), 404, 'not_found');
  });
});

describe('an Individual downgrade through the API', () => {
  test('started with its link, consented to Free/Busy, completed, and its new credentials read', async () => {
    const account = await createReadWriteUser(stack, 'api-person@example.com');
    const started = await call('POST', '/v1/downgrades', {
      key: writer,
      json: { sub: account.sub, refreshToken: account.refresh_token, userId: 'person-1' },
    });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const { workflowId, authorizationUrl } = started.body as { workflowId: string; authorizationUrl: string };
    assert.equal(workflowId, individualDowngradeId(account.sub));

    const waiting = await call('GET', `/v1/downgrades/${workflowId}`, { key: reader });
    assert.equal(waiting.body.state, 'awaiting_reauthorization');
    assert.equal(waiting.body.userId, 'person-1');
    assertProblem(
      await call('GET', `/v1/downgrades/${workflowId}/credentials`, { key: writer }),
      409,
      'downgrade_refused',
    );
    assertProblem(
      await call('GET', `/v1/downgrades/${workflowId}/credentials`, { key: reader }),
      403,
      'insufficient_scope',
    );

    await followRedirect(await decideOnConsentPage(authorizationUrl, 'free_busy_google', account));
    await waitUntil('the downgrade completes', async () => {
      const { body } = await call('GET', `/v1/downgrades/${workflowId}`, { key: reader });
      return body.state === 'completed';
    });
    const credentials = await call('GET', `/v1/downgrades/${workflowId}/credentials`, { key: writer });
    assert.equal(credentials.status, 200);
    assert.equal(credentials.body.sub, account.sub);
    assert.equal(credentials.body.providerName, 'google_free_busy');
    assert.equal(typeof credentials.body.accessToken, 'string');
  });

  test('cancelled: 202, and the downgrade ends cancelled', async () => {
    const account = await createReadWriteUser(stack, 'api-cancel@example.com');
    const started = await call('POST', '/v1/downgrades', { key: writer, json: { sub: account.sub } });
    const { workflowId } = started.body as { workflowId: string };
    const cancelled = await call('POST', `/v1/downgrades/${workflowId}/cancel`, { key: writer });
    assert.equal(cancelled.status, 202);
    await waitUntil('the downgrade ends cancelled', async () => {
      const { body } = await call('GET', `/v1/downgrades/${workflowId}`, { key: reader });
      return body.state === 'cancelled';
    });
  });
});

describe('the list of downgrades', () => {
  test('by state, a page at a time, each downgrade once; a cursor the API never gave is refused', async () => {
    const started: string[] = [];
    for (const name of ['a', 'b', 'c']) {
      const account = await createReadWriteUser(stack, `api-listed-${name}@example.com`);
      const { body } = await call('POST', '/v1/downgrades', { key: writer, json: { sub: account.sub } });
      started.push(String(body.workflowId));
    }
    type Page = {
      downgrades: Array<{ workflowId: string; state?: string; sub?: string }>;
      nextCursor?: string;
    };
    const waitingList = async () => {
      const listed: Page['downgrades'] = [];
      let cursor: string | undefined;
      do {
        const query = `state=awaiting_reauthorization&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
        const { status, body } = await call('GET', `/v1/downgrades?${query}`, { key: reader });
        assert.equal(status, 200, JSON.stringify(body));
        const page = body as unknown as Page;
        assert.ok(page.downgrades.length <= 2);
        listed.push(...page.downgrades);
        cursor = page.nextCursor;
      } while (cursor);
      return listed;
    };
    // Temporal's list follows its visibility store, which takes in a state change a moment after the workflow.
    const listed = await waitUntil('the three are listed as waiting', async () => {
      const all = await waitingList();
      return started.every((id) => all.some((downgrade) => downgrade.workflowId === id)) && all;
    });
    assert.ok(listed.every((downgrade) => downgrade.state === 'awaiting_reauthorization'));
    const ids = listed.map((downgrade) => downgrade.workflowId);
    assert.equal(new Set(ids).size, ids.length, 'no downgrade on two pages');
    assertProblem(
      await call('GET', '/v1/downgrades?cursor=bm90LWEtY3Vyc29y', { key: reader }),
      400,
      'invalid_request',
    );
    assertProblem(await call('GET', '/v1/downgrades?limit=1000', { key: reader }), 400, 'invalid_request');
  });
});

describe('Idempotency-Key', () => {
  test('concurrent duplicates get one answer; the same key with another request is refused', async () => {
    const account = await createReadWriteUser(stack, 'api-idempotent@example.com');
    const headers = { 'idempotency-key': 'start-api-idempotent-1' };
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        call('POST', '/v1/downgrades', { key: writer, json: { sub: account.sub }, headers }),
      ),
    );
    assert.deepEqual(new Set(answers.map((answer) => answer.status)), new Set([201]));
    assert.equal(new Set(answers.map((answer) => answer.response.body)).size, 1, 'one answer, given to each');
    const replayed = answers.filter((answer) => answer.response.headers['idempotent-replayed'] === 'true');
    assert.equal(replayed.length, answers.length - 1, 'all but the first were answered from the record');

    const runs = stack.env.client.workflow.list({
      query: `WorkflowId = '${individualDowngradeId(account.sub)}'`,
    });
    let count = 0;
    for await (const run of runs) count += run ? 1 : 0;
    assert.equal(count, 1, 'one workflow was started');

    assertProblem(
      await call('POST', '/v1/downgrades', {
        key: writer,
        json: { sub: account.sub, userId: 'someone else' },
        headers,
      }),
      422,
      'idempotency_key_reused',
    );
    // Another key's Idempotency-Key of the same name is its own.
    const other = (await keys.create('second backend', ['downgrades:write'])).key;
    const second = await call('POST', '/v1/downgrades', { key: other, json: { sub: account.sub }, headers });
    assert.equal(second.status, 201);
    assert.equal(second.response.headers['idempotent-replayed'], undefined);
  });
});

describe('rate limits', () => {
  test("a key's budget is shared by two API servers on one database: spent, it is a 429 with Retry-After", async () => {
    const limited = { host: '127.0.0.1', port: 0, logLevel: 'silent', requestsPerMinute: 5 };
    const deps = stack.api;
    const servers = [await startApiServer(deps, limited), await startApiServer(deps, limited)];
    try {
      const key = (await keys.create('busy backend', ['downgrades:read'])).key;
      const statuses = [];
      // Alternately to each server: the bucket is the key's, not the process's.
      for (let i = 0; i < 8; i += 1) {
        const response = await got(`${servers[i % 2]!.url}/v1/downgrades?limit=1`, {
          headers: { authorization: `Bearer ${key}` },
          throwHttpErrors: false,
          retry: { limit: 0 },
        });
        statuses.push(response.statusCode);
        if (response.statusCode === 429) {
          assert.match(response.headers['content-type'] ?? '', /^application\/problem\+json/);
          assert.equal(JSON.parse(response.body).code, 'rate_limited');
          assert.ok(Number(response.headers['retry-after']) >= 1, response.headers['retry-after']);
        }
      }
      // Five a minute, refilled one every 12 s: the burst of eight within a second finds five.
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
      // Another key's budget is its own.
      assert.equal((await call('GET', '/v1/downgrades?limit=1', { key: reader })).status, 200);
    } finally {
      for (const server of servers) await server.app.close();
    }
  });
});

describe('the OpenAPI document', () => {
  test('is valid OpenAPI 3.1, served without a key, made from the routes and their schemas', async () => {
    const { status, body } = await call('GET', '/v1/openapi.json');
    assert.equal(status, 200);
    const validator = new Validator();
    const validation = await validator.validate(body);
    assert.equal(validation.valid, true, JSON.stringify(validation.errors));
    assert.equal(validator.version, '3.1');
    const paths = body.paths as Record<string, Record<string, { operationId?: string }>>;
    assert.equal(paths['/v1/downgrades']?.post?.operationId, 'startDowngrade');
    assert.equal(paths['/v1/downgrades/{workflowId}']?.get?.operationId, 'getDowngrade');
    const schemas = (body.components as { schemas: Record<string, unknown> }).schemas;
    for (const name of [
      'StartDowngrade',
      'StartedDowngrade',
      'DowngradeStatus',
      'NewCredentials',
      'Problem',
    ]) {
      assert.ok(schemas[name], `components.schemas.${name}`);
    }
  });

  test('documents every error as a problem, and every POST its Idempotency-Key and what that key may answer', async () => {
    const { body } = await call('GET', '/v1/openapi.json');
    type Operation = {
      parameters?: Array<{ in: string; name: string }>;
      responses: Record<string, { content?: Record<string, unknown> }>;
    };
    const operations = Object.entries(body.paths as Record<string, Record<string, Operation>>).flatMap(
      ([path, byMethod]) =>
        Object.entries(byMethod).map(([method, operation]) => ({ path, method, operation })),
    );
    for (const { path, method, operation } of operations) {
      for (const [code, response] of Object.entries(operation.responses)) {
        if (Number(code) >= 400) {
          assert.deepEqual(
            Object.keys(response.content ?? {}),
            ['application/problem+json'],
            `${method} ${path} ${code}`,
          );
        }
      }
      if (method !== 'post') continue;
      assert.ok(
        operation.parameters?.some(
          (parameter) => parameter.in === 'header' && parameter.name === 'idempotency-key',
        ),
        `${path} documents Idempotency-Key`,
      );
      for (const code of ['409', '422'])
        assert.ok(operation.responses[code], `${method} ${path} may answer ${code}`);
    }
  });

  test('its reference page lists the operations in Chromium, without a key', async () => {
    const chromiumMissing = missingChromium();
    if (chromiumMissing) throw chromiumMissing;
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(`${api.url}/v1/docs`);
      await page.getByText("Start a person's downgrade and answer with their consent link").waitFor();
      await page.getByText('The new Free/Busy credentials of a completed downgrade').waitFor();
      await page.screenshot({ path: `${SCREENSHOTS}api-reference.png`, fullPage: true });
    } finally {
      await browser.close();
    }
  });
});
