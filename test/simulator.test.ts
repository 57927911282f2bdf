import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConsentFormBase, unescapeHtml } from '../harness/consentForm.js';
import { after, before, beforeEach, describe, test } from 'node:test';
import { FaultQueue } from '../simulator/faults.js';
import { startSimulator, type RunningSimulator } from '../simulator/server.js';

const app = { clientId: 'app_client', clientSecret: 'app_secret' };
const other = { clientId: 'other_client', clientSecret: 'other_secret' };
// A registered redirect_uri with its own query string, which the simulator must keep.
const redirectUri = 'https://app.example/cronofy/callback?tenant=acme';
const otherRedirectUri = 'https://app.example/other';
const downgradeScope = 'read_account read_free_busy free_busy_write';

let simulator: RunningSimulator;

before(async () => {
  simulator = await startSimulator({
    clients: [
      { ...app, redirectUris: [redirectUri, otherRedirectUri] },
      { ...other, redirectUris: [otherRedirectUri] },
    ],
    rateLimit: { perSecond: 1000, perMinute: 10_000 },
  });
});

after(async () => {
  await simulator.close();
});

beforeEach(async () => {
  await post('/_sim/reset', {});
});

// HTTP helpers

type Fields = Record<string, string>;

function post(path: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(`${simulator.url}${path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    ...init,
  });
}

function postForm(path: string, fields: Fields): Promise<Response> {
  return fetch(`${simulator.url}${path}`, {
    method: 'POST',
    redirect: 'manual',
    body: new URLSearchParams(fields),
  });
}

function get(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${simulator.url}${path}`, { redirect: 'manual', headers });
}

async function json<T = Record<string, unknown>>(response: Response): Promise<T> {
  return (await response.json()) as T;
}

// The consent page, read the way a browser would

interface ConsentForm {
  action: string;
  hidden: Fields;
  accountOptions: { email: string; selected: boolean }[];
  decisions: string[];
}

function parseConsentForm(html: string): ConsentForm {
  const accountOptions = [...html.matchAll(/<option value="([^"]+)"( selected)?>/g)].map((match) => ({
    email: unescapeHtml(match[1] ?? ''),
    selected: match[2] !== undefined,
  }));
  return { ...parseConsentFormBase(html), accountOptions };
}

function authorizePath(params: Fields): string {
  return `/oauth/authorize?${new URLSearchParams(params).toString()}`;
}

function authorizeParams(overrides: Fields = {}): Fields {
  return {
    response_type: 'code',
    client_id: app.clientId,
    redirect_uri: redirectUri,
    scope: downgradeScope,
    state: 'opaque-state-123',
    ...overrides,
  };
}

async function openConsentPage(overrides: Fields = {}): Promise<ConsentForm> {
  const response = await get(authorizePath(authorizeParams(overrides)));
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/html/);
  return parseConsentForm(await response.text());
}

/** Shows the consent page, submits it with a decision and returns where the browser is sent. */
async function consent(decision: string, choice: Fields = {}, overrides: Fields = {}): Promise<URL> {
  const form = await openConsentPage(overrides);
  const response = await postForm(form.action, { ...form.hidden, ...choice, decision });
  assert.equal(response.status, 302);
  return new URL(response.headers.get('location') ?? '');
}

async function codeFor(decision: string, email = 'user@example.com'): Promise<string> {
  const location = await consent(decision, { new_email: email });
  const code = location.searchParams.get('code');
  assert.ok(code);
  return code;
}

function exchange(code: string, overrides: Fields = {}): Promise<Response> {
  return postForm('/oauth/token', {
    client_id: app.clientId,
    client_secret: app.clientSecret,
    grant_type: 'authorization_code',
    code,
    redirect_uri: redirectUri,
    ...overrides,
  });
}

interface TokenResponse {
  access_token: string;
  refresh_token: string;
  sub: string;
  scope: string;
}

interface SimAccount {
  sub: string;
  access_token: string;
  refresh_token: string;
}

async function createAccount(email: string, clientId = app.clientId): Promise<SimAccount> {
  const response = await post('/_sim/accounts', { email, client_id: clientId });
  assert.equal(response.status, 201);
  return json<SimAccount>(response);
}

function revoke(fields: Fields, client = app): Promise<Response> {
  return postForm('/oauth/token/revoke', {
    client_id: client.clientId,
    client_secret: client.clientSecret,
    ...fields,
  });
}

function userinfo(accessToken: string): Promise<Response> {
  return get('/v1/userinfo', { authorization: `Bearer ${accessToken}` });
}

async function authorizationsOf(sub: string): Promise<{ client_id: string; revoked: boolean }[]> {
  const state = await json<{
    accounts: { sub: string; authorizations: { client_id: string; revoked: boolean }[] }[];
  }>(await get('/_sim/state'));
  return state.accounts.find((account) => account.sub === sub)?.authorizations ?? [];
}

void describe('consent page', () => {
  void test('offers the access-mode choice only when the scope includes free_busy_write', async () => {
    const downgrade = await openConsentPage();
    assert.deepEqual(downgrade.decisions, [
      'free_busy_google',
      'free_busy_microsoft',
      'read_write_google',
      'read_write_microsoft',
      'no_access',
      'deny',
    ]);
    const plain = await openConsentPage({ scope: 'read_events create_event' });
    assert.deepEqual(plain.decisions, ['read_write_google', 'read_write_microsoft', 'deny']);
  });

  void test("a Free/Busy provider_name goes straight to that provider's Free/Busy grant", async () => {
    const form = await openConsentPage({ provider_name: 'ms_graph_free_busy' });
    assert.deepEqual(form.decisions, ['free_busy_microsoft', 'deny']);
    const google = await openConsentPage({ provider_name: 'google_free_busy' });
    assert.deepEqual(google.decisions, ['free_busy_google', 'deny']);
  });

  void test('a Read/Write provider_name skips the provider picker but keeps the access-mode choice', async () => {
    const form = await openConsentPage({ provider_name: 'ms_graph' });
    assert.deepEqual(form.decisions, ['free_busy_microsoft', 'read_write_microsoft', 'no_access', 'deny']);
  });

  void test('carries every original parameter back as hidden fields', async () => {
    const form = await openConsentPage({
      provider_name: 'google_free_busy',
      avoid_linking: 'true',
      state: 'a"<b>',
    });
    assert.deepEqual(
      form.hidden,
      authorizeParams({ provider_name: 'google_free_busy', avoid_linking: 'true', state: 'a"<b>' }),
    );
  });

  void test('preselects the account whose authorization was revoked most recently', async () => {
    const first = await createAccount('first@example.com');
    const second = await createAccount('second@example.com');
    await createAccount('elsewhere@example.com', other.clientId);
    assert.deepEqual((await openConsentPage()).accountOptions, [
      { email: 'first@example.com', selected: true },
      { email: 'second@example.com', selected: false },
    ]);

    assert.equal((await revoke({ token: second.refresh_token })).status, 200);
    await post('/_sim/clock/advance', { seconds: 1 });
    assert.equal((await revoke({ token: first.refresh_token })).status, 200);
    await post('/_sim/clock/advance', { seconds: 1 });
    assert.equal(
      (await revoke({ token: second.refresh_token })).status,
      200,
      'already revoked: changes nothing',
    );
    assert.deepEqual((await openConsentPage()).accountOptions, [
      { email: 'first@example.com', selected: true },
      { email: 'second@example.com', selected: false },
    ]);

    await createAccount('second@example.com');
    await revoke({ sub: second.sub });
    assert.deepEqual((await openConsentPage()).accountOptions, [
      { email: 'first@example.com', selected: false },
      { email: 'second@example.com', selected: true },
    ]);
  });

  void test('an unknown client or an unregistered redirect_uri gets a 400 page and no redirect', async () => {
    const badRequests = [
      authorizeParams({ client_id: 'nobody' }),
      authorizeParams({ redirect_uri: 'https://evil.example/callback' }),
      authorizeParams({ redirect_uri: 'https://app.example/cronofy/callback' }), // the query string differs
      authorizeParams({ client_id: other.clientId }), // registered for app_client only
    ];
    for (const params of badRequests) {
      const response = await get(authorizePath(params));
      assert.equal(response.status, 400, JSON.stringify(params));
      assert.equal(response.headers.get('location'), null);
      assert.match(await response.text(), /Authorization error/);
    }
    const form = await openConsentPage();
    const forged = await postForm(form.action, {
      ...form.hidden,
      redirect_uri: 'https://evil.example/',
      decision: 'deny',
    });
    assert.equal(forged.status, 400);
    assert.equal(forged.headers.get('location'), null);
  });

  void test('a response_type other than code redirects with unsupported_response_type', async () => {
    const response = await get(authorizePath(authorizeParams({ response_type: 'token' })));
    assert.equal(response.status, 302);
    const location = new URL(response.headers.get('location') ?? '');
    assert.equal(location.searchParams.get('error'), 'unsupported_response_type');
    assert.equal(location.searchParams.get('state'), 'opaque-state-123');
    assert.equal(location.searchParams.get('tenant'), 'acme');
  });

  void test('a missing or unknown scope redirects with invalid_scope', async () => {
    const withoutScope = authorizeParams();
    delete withoutScope.scope;
    for (const params of [withoutScope, authorizeParams({ scope: 'read_events launch_rockets' })]) {
      const response = await get(authorizePath(params));
      assert.equal(response.status, 302);
      const location = new URL(response.headers.get('location') ?? '');
      assert.equal(location.searchParams.get('error'), 'invalid_scope');
      assert.equal(location.searchParams.get('state'), 'opaque-state-123');
    }
  });

  void test('every scope Cronofy documents or its clients send opens the consent page', async () => {
    const scope =
      'read_account list_calendars read_events create_event delete_event read_free_busy create_calendar ' +
      'event_reminders change_participation_status free_busy_write read_only write_only read_write free_busy';
    const form = await openConsentPage({ scope });
    assert.equal(form.hidden.scope, scope);
    for (const name of ['write_only', 'event_reminders', 'change_participation_status']) {
      const single = await get(authorizePath(authorizeParams({ scope: name })));
      assert.equal(single.status, 200, name);
    }
  });

  void test('deny redirects with access_denied and creates nothing', async () => {
    const location = await consent('deny', { new_email: 'user@example.com' });
    assert.equal(`${location.origin}${location.pathname}`, 'https://app.example/cronofy/callback');
    assert.equal(location.searchParams.get('error'), 'access_denied');
    assert.equal(location.searchParams.get('state'), 'opaque-state-123');
    assert.equal(location.searchParams.get('code'), null);
    const state = await json<{ accounts: unknown[]; codes: unknown[] }>(await get('/_sim/state'));
    assert.deepEqual(state, { accounts: [], codes: [] });
  });

  void test('a decision the page did not offer is refused', async () => {
    const form = await openConsentPage({ scope: 'read_events' });
    const response = await postForm(form.action, {
      ...form.hidden,
      new_email: 'a@example.com',
      decision: 'free_busy_google',
    });
    assert.equal(response.status, 400);
    assert.equal(response.headers.get('location'), null);
  });
});

void describe('authorization code exchange', () => {
  void test('the full flow: consent, redirect with code and state, token response with linking_profile', async () => {
    const location = await consent('free_busy_google', { new_email: 'Someone@example.com' });
    assert.equal(`${location.origin}${location.pathname}`, 'https://app.example/cronofy/callback');
    assert.equal(location.searchParams.get('tenant'), 'acme');
    assert.equal(location.searchParams.get('state'), 'opaque-state-123');
    const code = location.searchParams.get('code') ?? '';
    assert.match(code, /^[A-Za-z0-9]{32}$/);

    const response = await exchange(code);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    assert.equal(response.headers.get('pragma'), 'no-cache');
    const body = await json<TokenResponse & Record<string, unknown>>(response);
    assert.deepEqual(Object.keys(body), [
      'token_type',
      'access_token',
      'expires_in',
      'refresh_token',
      'scope',
      'account_id',
      'sub',
      'linking_profile',
    ]);
    assert.equal(body.token_type, 'bearer');
    assert.equal(body.expires_in, 3600);
    assert.equal(body.scope, downgradeScope);
    assert.match(body.access_token, /^[A-Za-z0-9]{40,}$/);
    assert.match(body.refresh_token, /^[A-Za-z0-9]{40,}$/);
    assert.notEqual(body.access_token, body.refresh_token);
    assert.match(body.sub, /^acc_[a-z0-9]+$/);
    assert.equal(body.account_id, body.sub);
    const profile = body.linking_profile as Record<string, unknown>;
    assert.equal(profile.provider_name, 'google_free_busy');
    assert.equal(profile.provider_service, 'google_free_busy');
    assert.match(String(profile.profile_id), /^pro_/);
    assert.equal(profile.profile_name, 'Someone@example.com');
  });

  void test('each decision yields its provider', async () => {
    const expected = {
      free_busy_google: 'google_free_busy',
      free_busy_microsoft: 'ms_graph_free_busy',
      read_write_google: 'google',
      read_write_microsoft: 'ms_graph',
      no_access: 'cronofy',
    };
    for (const [decision, provider] of Object.entries(expected)) {
      const body = await json<{ linking_profile: { provider_name: string; provider_service: string } }>(
        await exchange(await codeFor(decision)),
      );
      assert.deepEqual(body.linking_profile.provider_name, provider, decision);
      assert.deepEqual(body.linking_profile.provider_service, provider, decision);
    }
  });

  void test('choosing a known account from the list reuses its sub', async () => {
    const existing = await createAccount('known@example.com');
    const form = await openConsentPage();
    assert.deepEqual(form.accountOptions, [{ email: 'known@example.com', selected: true }]);
    const response = await postForm(form.action, {
      ...form.hidden,
      email: 'known@example.com',
      new_email: '',
      decision: 'free_busy_microsoft',
    });
    const code = new URL(response.headers.get('location') ?? '').searchParams.get('code') ?? '';
    const body = await json<TokenResponse>(await exchange(code));
    assert.equal(body.sub, existing.sub);
  });

  void test('accepts a JSON body as well as a form-encoded one', async () => {
    const response = await post('/oauth/token', {
      client_id: app.clientId,
      client_secret: app.clientSecret,
      grant_type: 'authorization_code',
      code: await codeFor('free_busy_microsoft'),
      redirect_uri: redirectUri,
    });
    assert.equal(response.status, 200);
    assert.equal((await json<{ scope: string }>(response)).scope, downgradeScope);
  });

  void test('a code is single use', async () => {
    const code = await codeFor('free_busy_google');
    assert.equal((await exchange(code)).status, 200);
    const again = await exchange(code);
    assert.equal(again.status, 400);
    assert.deepEqual(await json(again), { error: 'invalid_grant' });
  });

  void test('a redirect_uri mismatch, another client, an unknown or an expired code give invalid_grant', async () => {
    const code = await codeFor('free_busy_google');
    const mismatches = [
      await exchange(code, { redirect_uri: 'https://app.example/cronofy/callback' }),
      await exchange(code, { redirect_uri: otherRedirectUri }),
      await exchange(code, { client_id: other.clientId, client_secret: other.clientSecret }),
      await exchange('A'.repeat(32)),
    ];
    for (const response of mismatches) {
      assert.equal(response.status, 400);
      assert.deepEqual(await json(response), { error: 'invalid_grant' });
    }
    // The failed attempts did not use the code up.
    assert.equal((await exchange(code)).status, 200);

    const expiring = await codeFor('free_busy_google');
    await post('/_sim/clock/advance', { seconds: 601 });
    assert.deepEqual(await json(await exchange(expiring)), { error: 'invalid_grant' });
  });

  void test('bad client credentials give invalid_client', async () => {
    const code = await codeFor('free_busy_google');
    const badCredentials: Fields[] = [
      { client_id: 'nobody' },
      { client_secret: 'wrong' },
      { client_secret: '' },
      { client_id: other.clientId },
    ];
    for (const credentials of badCredentials) {
      const response = await exchange(code, credentials);
      assert.equal(response.status, 400);
      assert.deepEqual(await json(response), { error: 'invalid_client' });
    }
    assert.equal((await exchange(code)).status, 200);
  });

  void test('a missing field or grant type is invalid_request; an unknown grant type is unsupported', async () => {
    const credentials = { client_id: app.clientId, client_secret: app.clientSecret };
    const cases: [Fields, string][] = [
      [credentials, 'invalid_request'],
      [{ ...credentials, grant_type: 'authorization_code', redirect_uri: redirectUri }, 'invalid_request'],
      [{ ...credentials, grant_type: 'refresh_token' }, 'invalid_request'],
      [{ ...credentials, grant_type: 'password' }, 'unsupported_grant_type'],
    ];
    for (const [fields, error] of cases) {
      const response = await postForm('/oauth/token', fields);
      assert.equal(response.status, 400);
      assert.deepEqual(await json(response), { error });
    }
    const unreadable = await post('/oauth/token', undefined, { body: '{not json' });
    assert.equal(unreadable.status, 400);
    assert.deepEqual(await json(unreadable), { error: 'invalid_request' });
  });

  void test('the Authorization header is ignored on token endpoints', async () => {
    const response = await fetch(`${simulator.url}/oauth/token`, {
      method: 'POST',
      headers: { authorization: 'Bearer undefined' },
      body: new URLSearchParams({
        client_id: app.clientId,
        client_secret: app.clientSecret,
        grant_type: 'authorization_code',
        code: await codeFor('free_busy_google'),
        redirect_uri: redirectUri,
      }),
    });
    assert.equal(response.status, 200);
  });
});

void describe('refresh', () => {
  void test('gives a new access token with the same refresh token and scope', async () => {
    const tokens = await json<TokenResponse>(await exchange(await codeFor('free_busy_google')));
    const response = await postForm('/oauth/token', {
      client_id: app.clientId,
      client_secret: app.clientSecret,
      grant_type: 'refresh_token',
      refresh_token: tokens.refresh_token,
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    const body = await json<Record<string, unknown>>(response);
    assert.deepEqual(Object.keys(body), [
      'token_type',
      'access_token',
      'expires_in',
      'refresh_token',
      'scope',
    ]);
    assert.notEqual(body.access_token, tokens.access_token);
    assert.equal(body.refresh_token, tokens.refresh_token);
    assert.equal(body.scope, downgradeScope);
    assert.equal((await userinfo(String(body.access_token))).status, 200);
  });

  void test('a revoked, unknown or foreign refresh token gives invalid_grant', async () => {
    const account = await createAccount('user@example.com');
    const refresh = (refreshToken: string, client = app) =>
      post('/oauth/token', {
        client_id: client.clientId,
        client_secret: client.clientSecret,
        grant_type: 'refresh_token',
        refresh_token: refreshToken,
      });
    assert.equal((await refresh(account.refresh_token, other)).status, 400);
    assert.equal((await refresh('unknown-token')).status, 400);
    assert.equal((await refresh(account.refresh_token)).status, 200);
    await revoke({ token: account.refresh_token });
    const response = await refresh(account.refresh_token);
    assert.equal(response.status, 400);
    assert.deepEqual(await json(response), { error: 'invalid_grant' });
  });
});

void describe('revoke', () => {
  void test('by refresh token ends the authorization; repeating it or sending an unknown token still answers 200', async () => {
    const account = await createAccount('user@example.com');
    for (const token of [account.refresh_token, account.refresh_token, 'never-issued']) {
      const response = await revoke({ token });
      assert.equal(response.status, 200);
      assert.equal(await response.text(), '');
    }
    assert.equal((await userinfo(account.access_token)).status, 401);
    const authorizations = await authorizationsOf(account.sub);
    assert.deepEqual(
      authorizations.map(({ client_id, revoked }) => ({ client_id, revoked })),
      [{ client_id: app.clientId, revoked: true }],
    );
  });

  void test('by access token, sent as JSON', async () => {
    const account = await createAccount('user@example.com');
    const response = await post('/oauth/token/revoke', {
      client_id: app.clientId,
      client_secret: app.clientSecret,
      token: account.access_token,
    });
    assert.equal(response.status, 200);
    assert.equal((await userinfo(account.access_token)).status, 401);
  });

  void test("by sub ends every authorization of that account for that client, and only that client's", async () => {
    const first = await createAccount('user@example.com');
    const second = await createAccount('user@example.com');
    const elsewhere = await createAccount('user@example.com', other.clientId);
    const bystander = await createAccount('bystander@example.com');
    assert.equal(first.sub, second.sub);

    for (let attempt = 0; attempt < 2; attempt += 1) {
      const response = await revoke({ sub: first.sub });
      assert.equal(response.status, 200);
      assert.equal(await response.text(), '');
    }
    assert.equal((await userinfo(first.access_token)).status, 401);
    assert.equal((await userinfo(second.access_token)).status, 401);
    assert.equal((await userinfo(elsewhere.access_token)).status, 200);
    assert.equal((await userinfo(bystander.access_token)).status, 200);
  });

  void test('a token wins over a sub', async () => {
    const target = await createAccount('target@example.com');
    const bystander = await createAccount('bystander@example.com');
    assert.equal((await revoke({ token: target.refresh_token, sub: bystander.sub })).status, 200);
    assert.equal((await userinfo(target.access_token)).status, 401);
    assert.equal((await userinfo(bystander.access_token)).status, 200);
  });

  void test("a profile alone, with the account's bearer token: 202, the profile leaves userinfo, the tokens live on", async () => {
    const account = await createAccount('user@example.com');
    const bystander = await createAccount('bystander@example.com');
    const profiles = async (token: string) =>
      (await json<{ 'cronofy.data': { profiles: { profile_id: string }[] } }>(await userinfo(token)))[
        'cronofy.data'
      ].profiles;
    const [profile] = await profiles(account.access_token);
    assert.ok(profile);
    const revokeProfile = (profileId: string, headers: Record<string, string>) =>
      fetch(`${simulator.url}/v1/profiles/${profileId}/revoke`, { method: 'POST', headers });

    assert.equal((await revokeProfile(profile.profile_id, {})).status, 401);
    assert.equal(
      (await revokeProfile(profile.profile_id, { authorization: `Bearer ${bystander.access_token}` })).status,
      404,
      "another account's token does not reach this profile",
    );
    const response = await revokeProfile(profile.profile_id, {
      authorization: `Bearer ${account.access_token}`,
    });
    assert.equal(response.status, 202);
    assert.equal(await response.text(), '');
    assert.equal((await userinfo(account.access_token)).status, 200, 'the authorization lives on');
    assert.deepEqual(await profiles(account.access_token), []);
    assert.equal((await profiles(bystander.access_token)).length, 1);
  });

  void test("a client cannot revoke another client's authorization", async () => {
    const account = await createAccount('user@example.com');
    assert.equal((await revoke({ token: account.refresh_token }, other)).status, 200);
    assert.equal((await revoke({ sub: account.sub }, other)).status, 200);
    assert.equal((await userinfo(account.access_token)).status, 200);
  });

  void test('bad credentials give invalid_client; neither token nor sub gives invalid_request', async () => {
    const account = await createAccount('user@example.com');
    const forged = await revoke({ client_secret: 'wrong', token: account.refresh_token });
    assert.equal(forged.status, 400);
    assert.deepEqual(await json(forged), { error: 'invalid_client' });
    assert.equal((await userinfo(account.access_token)).status, 200);

    const empty = await revoke({});
    assert.equal(empty.status, 400);
    assert.deepEqual(await json(empty), { error: 'invalid_request' });
  });
});

void describe('userinfo', () => {
  void test('describes the account and its profile for a live token', async () => {
    const tokens = await json<TokenResponse>(
      await exchange(await codeFor('free_busy_microsoft', 'ms@example.com')),
    );
    const response = await userinfo(tokens.access_token);
    assert.equal(response.status, 200);
    const body = await json<Record<string, unknown>>(response);
    const profileId = (body['cronofy.data'] as { profiles: { profile_id: string }[] }).profiles[0]
      ?.profile_id;
    assert.match(profileId ?? '', /^pro_/);
    assert.deepEqual(body, {
      sub: tokens.sub,
      email: 'ms@example.com',
      'cronofy.type': 'account',
      'cronofy.data': {
        authorization: { scope: downgradeScope, status: 'active' },
        profiles: [
          {
            provider_name: 'ms_graph_free_busy',
            provider_service: 'ms_graph_free_busy',
            profile_id: profileId,
            profile_name: 'ms@example.com',
            profile_connected: true,
            profile_calendars: [],
          },
        ],
      },
    });
  });

  void test('a missing, unknown or expired token gets 401 with WWW-Authenticate and an empty body', async () => {
    const account = await createAccount('user@example.com');
    assert.equal((await userinfo(account.access_token)).status, 200);
    await post('/_sim/clock/advance', { seconds: 3600 });
    for (const response of [
      await get('/v1/userinfo'),
      await userinfo('unknown'),
      await userinfo(account.access_token),
    ]) {
      assert.equal(response.status, 401);
      assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer/);
      assert.equal(await response.text(), '');
    }
  });
});

void describe('faults', () => {
  void test('a 500 fault fails the request without side effects, then normal handling resumes', async () => {
    const code = await codeFor('free_busy_google');
    assert.equal((await post('/_sim/faults', { endpoint: 'token', status: 500, count: 1 })).status, 201);
    assert.equal((await exchange(code)).status, 500);
    assert.equal((await exchange(code)).status, 200);
  });

  void test('a 429 fault sets Retry-After and consumes its count', async () => {
    const account = await createAccount('user@example.com');
    await post('/_sim/faults', [{ endpoint: 'userinfo', status: 429, retryAfterSeconds: 7, count: 2 }]);
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const response = await userinfo(account.access_token);
      assert.equal(response.status, 429);
      assert.equal(response.headers.get('retry-after'), '7');
    }
    assert.equal((await userinfo(account.access_token)).status, 200);
  });

  void test('a delay fault slows the response, which is then handled normally', async () => {
    const account = await createAccount('user@example.com');
    await post('/_sim/faults', { endpoint: 'revoke', delayMs: 300, count: 1 });
    const started = performance.now();
    const response = await revoke({ token: account.refresh_token });
    assert.ok(performance.now() - started >= 290, 'the response was delayed');
    assert.equal(response.status, 200);
    assert.equal((await userinfo(account.access_token)).status, 401);
  });

  void test('a fault with a probability faults that share of its requests and lets the others through', () => {
    const draws = [0.05, 0.5, 0.09, 0.95, 0.01];
    const faults = new FaultQueue(() => draws.shift()!);
    faults.add([{ endpoint: '*', status: 503, probability: 0.1, count: 100 }]);
    const faulted = Array.from({ length: 5 }, () => faults.take('token')?.status);
    assert.deepEqual(faulted, [503, undefined, 503, undefined, 503]);
    assert.equal(faults.list()[0]?.count, 97, 'only the faulted requests consume its count');
  });

  void test('a fault for one endpoint leaves others alone; "*" matches any; DELETE clears the queue', async () => {
    const account = await createAccount('user@example.com');
    await post('/_sim/faults', [
      { endpoint: 'token', status: 503, count: 1 },
      { endpoint: '*', status: 502, count: 5 },
    ]);
    assert.equal((await get(authorizePath(authorizeParams()))).status, 502);
    assert.equal((await userinfo(account.access_token)).status, 502);
    const deleted = await fetch(`${simulator.url}/_sim/faults`, { method: 'DELETE' });
    assert.equal(deleted.status, 204);
    assert.equal((await userinfo(account.access_token)).status, 200);
  });

  void test('an invalid fault is refused', async () => {
    assert.equal((await post('/_sim/faults', { endpoint: 'token', count: 1 })).status, 400);
    assert.equal((await post('/_sim/faults', { endpoint: 'nowhere', status: 500, count: 1 })).status, 400);
  });
});

void describe('rate limits', () => {
  void test('over the per-second limit a client gets 429 while other clients are unaffected', async () => {
    assert.equal(
      (
        await fetch(`${simulator.url}/_sim/rate-limit`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ perSecond: 2, perMinute: 100 }),
        })
      ).status,
      200,
    );
    const account = await createAccount('user@example.com');
    const elsewhere = await createAccount('user@example.com', other.clientId);
    const statuses = [];
    for (let request = 0; request < 3; request += 1)
      statuses.push((await userinfo(account.access_token)).status);
    assert.deepEqual(statuses, [200, 200, 429]);
    assert.equal((await revoke({ token: account.refresh_token })).status, 429, 'counted by client_id too');
    assert.equal((await userinfo(account.access_token)).status, 429, 'the rate-limited revoke did nothing');
    assert.equal((await userinfo(elsewhere.access_token)).status, 200);
    // Pages and the control API are not rate limited.
    assert.equal((await get(authorizePath(authorizeParams()))).status, 200);
  });

  void test('the per-minute window slides', async () => {
    await fetch(`${simulator.url}/_sim/rate-limit`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ perSecond: 100, perMinute: 2 }),
    });
    const account = await createAccount('user@example.com');
    await userinfo(account.access_token);
    await post('/_sim/clock/advance', { seconds: 30 });
    await userinfo(account.access_token);
    assert.equal((await userinfo(account.access_token)).status, 429);
    await post('/_sim/clock/advance', { seconds: 31 });
    assert.equal((await userinfo(account.access_token)).status, 200, 'the first request left the window');
    assert.equal((await userinfo(account.access_token)).status, 429, 'the second is still in it');
  });
});

void describe('control API', () => {
  void test('the request log records API calls without secrets, not pages or controls', async () => {
    const location = await consent('free_busy_google', { new_email: 'user@example.com' });
    const tokens = await json<TokenResponse>(await exchange(location.searchParams.get('code') ?? ''));
    await userinfo(tokens.access_token);
    await revoke({ token: tokens.refresh_token });
    const log = await json<{ method: string; path: string; endpoint: string; status: number; at: string }[]>(
      await get('/_sim/requests'),
    );
    assert.deepEqual(
      log.map(({ method, path, endpoint, status }) => ({ method, path, endpoint, status })),
      [
        { method: 'POST', path: '/oauth/token', endpoint: 'token', status: 200 },
        { method: 'GET', path: '/v1/userinfo', endpoint: 'userinfo', status: 200 },
        { method: 'POST', path: '/oauth/token/revoke', endpoint: 'revoke', status: 200 },
      ],
    );
    assert.ok(log.every((entry) => !Number.isNaN(Date.parse(entry.at))));
  });

  void test('issued-secrets lists every secret, and the state view shows none of them', async () => {
    const code = await codeFor('free_busy_google');
    const tokens = await json<TokenResponse>(await exchange(code));
    const account = await createAccount('other@example.com');
    const secrets = await json<{ codes: string[]; access_tokens: string[]; refresh_tokens: string[] }>(
      await get('/_sim/issued-secrets'),
    );
    assert.deepEqual(secrets, {
      codes: [code],
      access_tokens: [tokens.access_token, account.access_token],
      refresh_tokens: [tokens.refresh_token, account.refresh_token],
    });

    const state = await (await get('/_sim/state')).text();
    for (const secret of [
      code,
      tokens.access_token,
      tokens.refresh_token,
      account.access_token,
      account.refresh_token,
    ]) {
      assert.ok(!state.includes(secret));
    }
    const parsed = JSON.parse(state) as {
      accounts: { email: string }[];
      codes: { used: boolean; expired: boolean }[];
    };
    assert.deepEqual(
      parsed.accounts.map((entry) => entry.email),
      ['user@example.com', 'other@example.com'],
    );
    assert.deepEqual(
      parsed.codes.map(({ used, expired }) => ({ used, expired })),
      [{ used: true, expired: false }],
    );
  });

  void test('creating an account for an unknown client is refused', async () => {
    const response = await post('/_sim/accounts', { email: 'user@example.com', client_id: 'nobody' });
    assert.equal(response.status, 400);
  });

  void test('reset forgets accounts and tokens', async () => {
    const account = await createAccount('user@example.com');
    assert.equal((await post('/_sim/reset', {})).status, 204);
    assert.equal((await userinfo(account.access_token)).status, 401);
    assert.deepEqual(await json(await get('/_sim/state')), { accounts: [], codes: [] });
  });

  void test('unknown routes are 404', async () => {
    assert.equal((await get('/v1/nothing-here')).status, 404);
    assert.equal((await get('/oauth/token')).status, 404);
  });
});

void describe('state file', () => {
  const clients = [{ ...app, redirectUris: [redirectUri] }];

  void test('accounts, authorizations and an unused code survive a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'simulator-state-'));
    const stateFile = join(dir, 'simulator.json');
    const shared = simulator;
    try {
      simulator = await startSimulator({ clients, stateFile });
      const account = await createAccount('kept@example.com');
      const code = await codeFor('free_busy_google', 'kept@example.com');
      await simulator.close();

      simulator = await startSimulator({ clients, stateFile });
      const exchanged = await exchange(code);
      assert.equal(exchanged.status, 200);
      const token = await json<{ sub: string; linking_profile: { provider_name: string } }>(exchanged);
      assert.equal(token.sub, account.sub, 'the same account, not a new one');
      assert.equal(token.linking_profile.provider_name, 'google_free_busy');
      const refreshed = await postForm('/oauth/token', {
        client_id: app.clientId,
        client_secret: app.clientSecret,
        grant_type: 'refresh_token',
        refresh_token: account.refresh_token,
      });
      assert.equal(refreshed.status, 200, 'the refresh token issued before the restart still works');
      assert.equal((await exchange(code)).status, 400, 'the code is used up, and that is kept too');
    } finally {
      await simulator.close();
      simulator = shared;
      await rm(dir, { recursive: true, force: true });
    }
  });

  void test('an unreadable state file stops it with an error that names the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'simulator-state-'));
    const stateFile = join(dir, 'simulator.json');
    try {
      await writeFile(stateFile, '{ not json');
      await assert.rejects(startSimulator({ clients, stateFile }), new RegExp(`${stateFile}`));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
