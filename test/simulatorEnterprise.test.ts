import assert from 'node:assert/strict';
import { parseConsentFormBase } from '../harness/consentForm.js';
import { waitUntil } from '../harness/waitUntil.js';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSimulator, type RunningSimulator } from '../simulator/server.js';

const app = { clientId: 'app_client', clientSecret: 'app_secret' };
const other = { clientId: 'other_client', clientSecret: 'other_secret' };
// A registered redirect_uri with its own query string, which the simulator must keep.
const adminRedirectUri = 'https://app.example/enterprise/callback?tenant=acme';
const accountsScope = 'service_account/accounts/manage';
const delegatedScope = 'read_account read_free_busy free_busy_write';

let simulator: RunningSimulator;

// The application's callback receiver: records every callback and answers with the planned statuses, then 200.

interface ReceivedCallback {
  /** Path and query string, as the simulator called them. */
  path: string;
  contentType: string | undefined;
  body: CallbackBody;
  at: number;
}

interface CallbackBody {
  authorization: {
    code?: string;
    state?: string;
    error?: string;
    error_key?: string;
    error_description?: string;
  };
}

let receiver: Server;
let receiverUrl: string;
let received: ReceivedCallback[] = [];
let plannedStatuses: number[] = [];

before(async () => {
  simulator = await startSimulator({
    clients: [
      { ...app, redirectUris: [adminRedirectUri] },
      { ...other, redirectUris: [adminRedirectUri] },
    ],
    rateLimit: { perSecond: 1000, perMinute: 10_000 },
  });
  receiver = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({
        path: request.url ?? '',
        contentType: request.headers['content-type'],
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as CallbackBody,
        at: performance.now(),
      });
      response.statusCode = plannedStatuses.shift() ?? 200;
      response.end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});

after(async () => {
  await simulator.close();
  receiver.closeAllConnections();
  await new Promise((resolve) => receiver.close(resolve));
});

beforeEach(async () => {
  await post('/_sim/reset', {});
  received = [];
  plannedStatuses = [];
});

// HTTP helpers

type Fields = Record<string, string>;

function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${simulator.url}${path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

function put(path: string, body: unknown): Promise<Response> {
  return fetch(`${simulator.url}${path}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
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

// The administrator's consent page, read the way a browser would

interface EnterpriseConsentForm {
  action: string;
  hidden: Fields;
  domain: string | undefined;
  decisions: string[];
}

function parseConsentForm(html: string): EnterpriseConsentForm {
  const domainInput = /<input id="domain" name="domain"[^>]* value="([^"]*)" data-testid="domain">/.exec(
    html,
  );
  assert.ok(domainInput, 'the consent page has a domain field');
  return { ...parseConsentFormBase(html), domain: domainInput[1] || undefined };
}

function enterpriseAuthorizeParams(overrides: Fields = {}): Fields {
  return {
    response_type: 'code',
    client_id: app.clientId,
    redirect_uri: adminRedirectUri,
    scope: accountsScope,
    delegated_scope: delegatedScope,
    state: 'admin-state-42',
    ...overrides,
  };
}

function enterpriseAuthorizePath(params: Fields): string {
  return `/enterprise_connect/oauth/authorize?${new URLSearchParams(params).toString()}`;
}

async function openEnterpriseConsentPage(overrides: Fields = {}): Promise<EnterpriseConsentForm> {
  const response = await get(enterpriseAuthorizePath(enterpriseAuthorizeParams(overrides)));
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/html/);
  return parseConsentForm(await response.text());
}

/** Shows the administrator's consent page, submits it and returns where the browser is sent. */
async function adminConsent(decision: string, domain = 'example.org', overrides: Fields = {}): Promise<URL> {
  const form = await openEnterpriseConsentPage(overrides);
  const response = await postForm(form.action, { ...form.hidden, domain, decision });
  assert.equal(response.status, 302);
  return new URL(response.headers.get('location') ?? '');
}

function exchange(code: string, redirectUri: string, client = app): Promise<Response> {
  return postForm('/oauth/token', {
    client_id: client.clientId,
    client_secret: client.clientSecret,
    grant_type: 'authorization_code',
    code,
    redirect_uri: redirectUri,
  });
}

function refresh(refreshToken: string): Promise<Response> {
  return post('/oauth/token', {
    client_id: app.clientId,
    client_secret: app.clientSecret,
    grant_type: 'refresh_token',
    refresh_token: refreshToken,
  });
}

function revoke(fields: Fields): Promise<Response> {
  return postForm('/oauth/token/revoke', {
    client_id: app.clientId,
    client_secret: app.clientSecret,
    ...fields,
  });
}

function userinfo(accessToken: string): Promise<Response> {
  return get('/v1/userinfo', { authorization: `Bearer ${accessToken}` });
}

interface ServiceAccountTokens {
  token_type: string;
  access_token: string;
  expires_in: number;
  refresh_token: string;
  scope: string;
  sub: string;
  service_account_id: string;
}

async function serviceAccountFor(
  decision = 'free_busy_google',
  domain = 'example.org',
): Promise<ServiceAccountTokens> {
  const code = (await adminConsent(decision, domain)).searchParams.get('code');
  assert.ok(code);
  const response = await exchange(code, adminRedirectUri);
  assert.equal(response.status, 200);
  return json<ServiceAccountTokens>(response);
}

// Request User Access and its callbacks

function callbackUrlFor(email: string): string {
  return `${receiverUrl}/cronofy/enterprise?user=${encodeURIComponent(email)}`;
}

function accessRequest(email: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    email,
    callback_url: callbackUrlFor(email),
    scope: 'read_free_busy free_busy_write',
    state: `state-for-${email}`,
    ...overrides,
  };
}

function requestUserAccess(accessToken: string, body: unknown): Promise<Response> {
  return post('/v1/service_account_authorizations', body, { authorization: `Bearer ${accessToken}` });
}

interface CallbackCounts {
  pending: number;
  delivered: number;
  failed: number;
  withheld: number;
}

async function callbackCounts(): Promise<CallbackCounts> {
  return (await json<{ callbacks: CallbackCounts }>(await get('/_sim/enterprise/state?summary=1'))).callbacks;
}

async function waitUntilCallbacksSettle(): Promise<CallbackCounts> {
  await waitUntil('callbacks to settle', async () => (await callbackCounts()).pending === 0);
  return callbackCounts();
}

function callbacksFor(email: string): ReceivedCallback[] {
  const url = new URL(callbackUrlFor(email));
  return received.filter((callback) => callback.path === `${url.pathname}${url.search}`);
}

async function codeFromCallback(email: string): Promise<string> {
  await waitUntil(`the callback for ${email}`, () => callbacksFor(email).length > 0);
  const code = callbacksFor(email)[0]?.body.authorization.code;
  assert.ok(code, 'the callback carries a code');
  return code;
}

interface UserTokens {
  access_token: string;
  refresh_token: string;
  sub: string;
  account_id: string;
  scope: string;
  linking_profile: { provider_name: string; provider_service: string; profile_name: string };
}

async function assertUnprocessable(response: Response, field: string, key: string): Promise<void> {
  assert.equal(response.status, 422);
  const body = await json<{ errors: Record<string, { key: string; description: string }[]> }>(response);
  assert.ok(body.errors[field], `an error for ${field} in ${JSON.stringify(body)}`);
  assert.equal(body.errors[field][0]?.key, key);
  assert.equal(typeof body.errors[field][0]?.description, 'string');
}

interface EnterpriseState {
  service_accounts: {
    id: string;
    domain: string;
    provider_name: string;
    revoked: boolean;
    users: { total: number; active: number; revoked: number };
  }[];
  users: {
    total: number;
    items: {
      email: string;
      sub: string;
      provider_name: string;
      revoked: boolean;
      service_account_id: string;
    }[];
  };
}

async function enterpriseState(query = ''): Promise<EnterpriseState> {
  return json<EnterpriseState>(await get(`/_sim/enterprise/state${query}`));
}

void describe('administrator consent', () => {
  void test('offers Free/Busy only when free_busy_write is delegated, and provider_name skips the picker', async () => {
    assert.deepEqual((await openEnterpriseConsentPage()).decisions, [
      'free_busy_google',
      'free_busy_microsoft',
      'read_write_google',
      'read_write_microsoft',
      'deny',
    ]);
    const readWriteOnly = await openEnterpriseConsentPage({ delegated_scope: 'read_events create_event' });
    assert.deepEqual(readWriteOnly.decisions, ['read_write_google', 'read_write_microsoft', 'deny']);
    const microsoft = await openEnterpriseConsentPage({ provider_name: 'ms_graph' });
    assert.deepEqual(microsoft.decisions, ['free_busy_microsoft', 'read_write_microsoft', 'deny']);
    assert.deepEqual(microsoft.hidden, enterpriseAuthorizeParams({ provider_name: 'ms_graph' }));
  });

  void test('the full flow: consent, redirect with code and state, a service account token valid 1800 seconds', async () => {
    const location = await adminConsent('free_busy_google', 'admin@Example.org');
    assert.equal(`${location.origin}${location.pathname}`, 'https://app.example/enterprise/callback');
    assert.equal(location.searchParams.get('tenant'), 'acme');
    assert.equal(location.searchParams.get('state'), 'admin-state-42');
    const code = location.searchParams.get('code') ?? '';
    assert.match(code, /^[A-Za-z0-9]{32}$/);

    const response = await exchange(code, adminRedirectUri);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    const body = await json<ServiceAccountTokens & Record<string, unknown>>(response);
    assert.deepEqual(Object.keys(body), [
      'token_type',
      'access_token',
      'expires_in',
      'refresh_token',
      'scope',
      'sub',
      'service_account_id',
    ]);
    assert.equal(body.token_type, 'bearer');
    assert.equal(body.expires_in, 1800);
    assert.equal(body.scope, accountsScope);
    assert.match(body.sub, /^ser_[a-z0-9]+$/);
    assert.equal(body.service_account_id, body.sub);
    assert.match(body.access_token, /^[A-Za-z0-9]{40,}$/);
    assert.notEqual(body.access_token, body.refresh_token);

    const again = await exchange(code, adminRedirectUri);
    assert.equal(again.status, 400);
    assert.deepEqual(await json(again), { error: 'invalid_grant' }, 'the code is single use');

    const [serviceAccount] = (await enterpriseState()).service_accounts;
    assert.equal(serviceAccount?.domain, 'example.org', 'the domain of the administrator email');
    assert.equal(serviceAccount?.provider_name, 'google_free_busy');
  });

  void test('each decision yields its provider in the userinfo', async () => {
    const expected = {
      free_busy_google: 'google_free_busy',
      free_busy_microsoft: 'ms_graph_free_busy',
      read_write_google: 'google',
      read_write_microsoft: 'ms_graph',
    };
    for (const [decision, provider] of Object.entries(expected)) {
      const tokens = await serviceAccountFor(decision);
      const body = await json<{ 'cronofy.data': { service_account: { provider_name: string } } }>(
        await userinfo(tokens.access_token),
      );
      assert.equal(body['cronofy.data'].service_account.provider_name, provider, decision);
    }
  });

  void test('bad requests redirect with an error; an unregistered redirect_uri gets a 400 page', async () => {
    const withoutDelegated = enterpriseAuthorizeParams();
    delete withoutDelegated.delegated_scope;
    const cases: [Fields, string][] = [
      [enterpriseAuthorizeParams({ scope: 'read_events' }), 'invalid_scope'],
      [enterpriseAuthorizeParams({ delegated_scope: 'launch_rockets' }), 'invalid_scope'],
      [withoutDelegated, 'invalid_request'],
      [enterpriseAuthorizeParams({ response_type: 'token' }), 'unsupported_response_type'],
    ];
    for (const [params, error] of cases) {
      const response = await get(enterpriseAuthorizePath(params));
      assert.equal(response.status, 302, JSON.stringify(params));
      const location = new URL(response.headers.get('location') ?? '');
      assert.equal(location.searchParams.get('error'), error);
      assert.equal(location.searchParams.get('state'), 'admin-state-42');
    }
    const unregistered = await get(
      enterpriseAuthorizePath(enterpriseAuthorizeParams({ redirect_uri: 'https://evil.example/' })),
    );
    assert.equal(unregistered.status, 400);
    assert.equal(unregistered.headers.get('location'), null);
  });

  void test('deny redirects with access_denied and creates no service account', async () => {
    const location = await adminConsent('deny');
    assert.equal(location.searchParams.get('error'), 'access_denied');
    assert.equal(location.searchParams.get('state'), 'admin-state-42');
    assert.equal(location.searchParams.get('code'), null);
    assert.deepEqual((await enterpriseState()).service_accounts, []);
  });

  void test('a missing domain or a decision the page did not offer is refused with a page', async () => {
    const form = await openEnterpriseConsentPage({ delegated_scope: 'read_events' });
    for (const fields of [
      { domain: 'example.org', decision: 'free_busy_google' },
      { domain: '', decision: 'read_write_google' },
      { domain: 'not a domain', decision: 'read_write_google' },
    ]) {
      const response = await postForm(form.action, { ...form.hidden, ...fields });
      assert.equal(response.status, 400, JSON.stringify(fields));
      assert.equal(response.headers.get('location'), null);
    }
  });

  void test('prefills the domain of the service account revoked most recently', async () => {
    assert.equal((await openEnterpriseConsentPage()).domain, undefined);
    const first = await serviceAccountFor('read_write_google', 'first.example');
    const second = await serviceAccountFor('read_write_google', 'second.example');
    const third = await serviceAccountFor('read_write_google', 'third.example');
    await revoke({ token: second.refresh_token });
    await post('/_sim/clock/advance', { seconds: 1 });
    await revoke({ token: first.refresh_token });
    assert.equal((await openEnterpriseConsentPage()).domain, 'first.example');
    await post('/_sim/clock/advance', { seconds: 1 });
    await revoke({ sub: third.sub });
    assert.equal((await openEnterpriseConsentPage()).domain, 'third.example');
  });
});

void describe('service account tokens', () => {
  void test('userinfo describes the service account, its domain and delegated scope', async () => {
    const tokens = await serviceAccountFor('free_busy_microsoft', 'contoso.example');
    const response = await userinfo(tokens.access_token);
    assert.equal(response.status, 200);
    assert.deepEqual(await json(response), {
      sub: tokens.sub,
      'cronofy.type': 'service_account',
      'cronofy.data': {
        service_account: { provider_name: 'ms_graph_free_busy', domain: 'contoso.example' },
        authorization: { scope: accountsScope, status: 'active', delegated_scope: delegatedScope },
      },
    });
  });

  void test('refresh gives a new access token with the same lifetime and refresh token', async () => {
    const tokens = await serviceAccountFor();
    const response = await refresh(tokens.refresh_token);
    assert.equal(response.status, 200);
    const body = await json<ServiceAccountTokens>(response);
    assert.notEqual(body.access_token, tokens.access_token);
    assert.equal(body.refresh_token, tokens.refresh_token);
    assert.equal(body.expires_in, 1800);
    assert.equal(body.scope, accountsScope);
    assert.equal((await userinfo(body.access_token)).status, 200);
  });

  void test('the lifetime is settable at runtime and by option, and reset restores it', async () => {
    assert.equal(
      (await put('/_sim/enterprise/settings', { serviceAccountTokenTtlSeconds: 120 })).status,
      200,
    );
    const tokens = await serviceAccountFor();
    assert.equal(tokens.expires_in, 120);
    assert.equal((await json<ServiceAccountTokens>(await refresh(tokens.refresh_token))).expires_in, 120);
    await post('/_sim/clock/advance', { seconds: 120 });
    assert.equal((await userinfo(tokens.access_token)).status, 401);
    assert.equal((await put('/_sim/enterprise/settings', { serviceAccountTokenTtlSeconds: 0 })).status, 400);

    await post('/_sim/reset', {});
    assert.equal((await serviceAccountFor()).expires_in, 1800);

    const configured = await startSimulator({
      clients: [{ ...app, redirectUris: [adminRedirectUri] }],
      serviceAccountTokenTtlSeconds: 900,
    });
    try {
      const control = await fetch(`${configured.url}/_sim/enterprise/domains`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ domain: 'example.org', client_id: app.clientId, users: [] }),
      });
      assert.equal((await json<{ expires_in: number }>(control)).expires_in, 900);
    } finally {
      await configured.close();
    }
  });

  void test('an expired token gets 401 on service_account_authorizations; a refreshed one is accepted', async () => {
    const tokens = await serviceAccountFor();
    await post('/_sim/clock/advance', { seconds: 1800 });
    const expired = await requestUserAccess(tokens.access_token, accessRequest('user@example.org'));
    assert.equal(expired.status, 401);
    assert.match(
      expired.headers.get('www-authenticate') ?? '',
      /^Bearer realm="Cronofy", error="invalid_token"/,
    );
    assert.equal(await expired.text(), '');

    const refreshed = await json<ServiceAccountTokens>(await refresh(tokens.refresh_token));
    assert.equal(
      (await requestUserAccess(refreshed.access_token, accessRequest('user@example.org'))).status,
      202,
    );
  });

  void test('no token or an unknown token is 401; an account token is 403', async () => {
    const missing = await post('/v1/service_account_authorizations', accessRequest('user@example.org'));
    assert.equal(missing.status, 401);
    assert.equal(missing.headers.get('www-authenticate'), 'Bearer realm="Cronofy"');
    assert.equal((await requestUserAccess('unknown', accessRequest('user@example.org'))).status, 401);
    // The token is judged before the body: an unreadable body with no valid token is still 401, not 422.
    const unreadable = await fetch(`${simulator.url}/v1/service_account_authorizations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer unknown' },
      body: '{not json',
    });
    assert.equal(unreadable.status, 401);
    const account = await json<{ access_token: string }>(
      await post('/_sim/accounts', { email: 'someone@example.org', client_id: app.clientId }),
    );
    assert.equal(
      (await requestUserAccess(account.access_token, accessRequest('user@example.org'))).status,
      403,
    );
    assert.equal((await waitUntilCallbacksSettle()).delivered, 0);
  });
});

void describe('request user access', () => {
  void test('one user: 202, then a callback whose code works only with that exact callback_url', async () => {
    const serviceAccount = await serviceAccountFor('free_busy_google');
    const email = 'Alice@example.org';
    const response = await requestUserAccess(serviceAccount.access_token, accessRequest(email));
    assert.equal(response.status, 202);
    assert.equal(await response.text(), '');

    const code = await codeFromCallback(email);
    const [callback] = callbacksFor(email);
    assert.match(callback?.contentType ?? '', /^application\/json/);
    assert.deepEqual(callback?.body, { authorization: { code, state: `state-for-${email}` } });
    assert.match(code, /^[A-Za-z0-9]{32}$/);

    const callbackUrl = callbackUrlFor(email);
    for (const wrongUri of [`${receiverUrl}/cronofy/enterprise`, adminRedirectUri, `${callbackUrl}&x=1`]) {
      const wrong = await exchange(code, wrongUri);
      assert.equal(wrong.status, 400, wrongUri);
      assert.deepEqual(await json(wrong), { error: 'invalid_grant' });
    }
    const exchanged = await exchange(code, callbackUrl);
    assert.equal(exchanged.status, 200);
    const tokens = await json<UserTokens>(exchanged);
    assert.match(tokens.sub, /^acc_/);
    assert.equal(tokens.account_id, tokens.sub);
    assert.equal(tokens.scope, 'read_free_busy free_busy_write');
    assert.equal(tokens.linking_profile.provider_name, 'google_free_busy');
    assert.equal(tokens.linking_profile.provider_service, 'google_free_busy');
    assert.equal(tokens.linking_profile.profile_name, email);
    assert.equal((await exchange(code, callbackUrl)).status, 400, 'the code is single use');

    const info = await json<{ sub: string; 'cronofy.data': { profiles: { provider_name: string }[] } }>(
      await userinfo(tokens.access_token),
    );
    assert.equal(info.sub, tokens.sub);
    assert.equal(info['cronofy.data'].profiles[0]?.provider_name, 'google_free_busy');

    const { users } = await enterpriseState(`?email=${encodeURIComponent('alice@example.org')}`);
    assert.deepEqual(users.items, [
      {
        email,
        sub: tokens.sub,
        provider_name: 'google_free_busy',
        scope: 'read_free_busy free_busy_write',
        revoked: false,
        service_account_id: serviceAccount.service_account_id,
      },
    ]);
  });

  void test('a batch of 50: every user gets a callback with its own state; existing accounts keep their sub', async () => {
    const domain = await json<{ access_token: string; users: { email: string; sub: string }[] }>(
      await post('/_sim/enterprise/domains', {
        domain: 'example.org',
        client_id: app.clientId,
        users: ['user7@example.org'],
      }),
    );
    const existingSub = domain.users[0]?.sub;
    await revoke({ token: domain.access_token });
    const serviceAccount = await serviceAccountFor('free_busy_microsoft');
    const emails = Array.from({ length: 50 }, (_, index) => `user${index}@example.org`);
    const response = await requestUserAccess(serviceAccount.access_token, {
      service_account_authorizations: emails.map((email) => accessRequest(email)),
    });
    assert.equal(response.status, 202);

    await waitUntil('50 callbacks', () => received.length >= 50);
    const counts = await waitUntilCallbacksSettle();
    assert.deepEqual(counts, { pending: 0, delivered: 50, failed: 0, withheld: 0 });
    assert.equal(received.length, 50);

    const subs = new Set<string>();
    for (const email of emails) {
      const [callback] = callbacksFor(email);
      assert.equal(callback?.body.authorization.state, `state-for-${email}`);
      const code = callback?.body.authorization.code ?? '';
      const otherUsersUrl = callbackUrlFor(
        email === 'user0@example.org' ? 'user1@example.org' : 'user0@example.org',
      );
      assert.equal((await exchange(code, otherUsersUrl)).status, 400);
      const tokens = await json<UserTokens>(await exchange(code, callbackUrlFor(email)));
      assert.equal(tokens.linking_profile.provider_name, 'ms_graph_free_busy');
      if (email === 'user7@example.org') assert.equal(tokens.sub, existingSub);
      subs.add(tokens.sub);
    }
    assert.equal(subs.size, 50);
  });

  void test('a batch of 51 or of none is refused with 422 and sends nothing', async () => {
    const serviceAccount = await serviceAccountFor();
    const tooMany = Array.from({ length: 51 }, (_, index) => accessRequest(`user${index}@example.org`));
    await assertUnprocessable(
      await requestUserAccess(serviceAccount.access_token, { service_account_authorizations: tooMany }),
      'service_account_authorizations',
      'errors.too_long',
    );
    await assertUnprocessable(
      await requestUserAccess(serviceAccount.access_token, { service_account_authorizations: [] }),
      'service_account_authorizations',
      'errors.too_short',
    );
    assert.deepEqual(await waitUntilCallbacksSettle(), { pending: 0, delivered: 0, failed: 0, withheld: 0 });
    await sleep(50);
    assert.equal(received.length, 0);
  });

  void test('a body mixing one user and a batch is refused', async () => {
    const serviceAccount = await serviceAccountFor();
    await assertUnprocessable(
      await requestUserAccess(serviceAccount.access_token, {
        ...accessRequest('single@example.org'),
        service_account_authorizations: [accessRequest('batched@example.org')],
      }),
      'service_account_authorizations',
      'errors.invalid',
    );
  });

  void test('missing or malformed fields are 422 with Cronofy-style errors, and one bad entry fails the batch', async () => {
    const serviceAccount = await serviceAccountFor();
    const missing = await requestUserAccess(serviceAccount.access_token, { state: 'only state' });
    assert.equal(missing.status, 422);
    assert.deepEqual(await json(missing), {
      errors: {
        email: [{ key: 'errors.required', description: 'required' }],
        callback_url: [{ key: 'errors.required', description: 'required' }],
        scope: [{ key: 'errors.required', description: 'required' }],
      },
    });
    await assertUnprocessable(
      await requestUserAccess(
        serviceAccount.access_token,
        accessRequest('user@example.org', { callback_url: 'ftp://example.org/callback' }),
      ),
      'callback_url',
      'errors.invalid',
    );
    await assertUnprocessable(
      await requestUserAccess(serviceAccount.access_token, accessRequest('user@example.org', { scope: ' ' })),
      'scope',
      'errors.required',
    );
    await assertUnprocessable(
      await requestUserAccess(serviceAccount.access_token, {
        service_account_authorizations: [accessRequest('good@example.org'), accessRequest('not-an-email')],
      }),
      'service_account_authorizations[1].email',
      'errors.invalid',
    );
    const unreadable = await fetch(`${simulator.url}/v1/service_account_authorizations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${serviceAccount.access_token}`, 'content-type': 'application/json' },
      body: '{not json',
    });
    assert.equal(unreadable.status, 422);
    await sleep(50);
    assert.equal(received.length, 0);
  });

  void test('a scope outside the delegated scope is refused', async () => {
    const serviceAccount = await serviceAccountFor();
    await assertUnprocessable(
      await requestUserAccess(
        serviceAccount.access_token,
        accessRequest('user@example.org', { scope: 'read_free_busy read_events' }),
      ),
      'scope',
      'errors.invalid',
    );
    await assertUnprocessable(
      await requestUserAccess(serviceAccount.access_token, {
        service_account_authorizations: [accessRequest('user@example.org', { scope: 'create_event' })],
      }),
      'service_account_authorizations[0].scope',
      'errors.invalid',
    );
  });

  void test('a receiver answering 500 is retried until it accepts', async () => {
    plannedStatuses = [500, 503];
    const serviceAccount = await serviceAccountFor();
    assert.equal(
      (await requestUserAccess(serviceAccount.access_token, accessRequest('user@example.org'))).status,
      202,
    );
    await waitUntil('three attempts', () => received.length >= 3);
    assert.deepEqual((await waitUntilCallbacksSettle()).delivered, 1);
    assert.equal(received.length, 3);
    const codes = new Set(received.map((callback) => callback.body.authorization.code));
    assert.equal(codes.size, 1, 'every attempt carries the same code');
  });
});

void describe('scripted outcomes', () => {
  void test('error: the callback carries the error and no code', async () => {
    const script = {
      byEmail: { 'refused@example.org': { kind: 'error', error: 'unable_to_grant_scope' } },
    };
    assert.equal((await put('/_sim/enterprise/outcomes', script)).status, 200);
    const serviceAccount = await serviceAccountFor();
    await requestUserAccess(serviceAccount.access_token, {
      service_account_authorizations: [
        accessRequest('refused@example.org'),
        accessRequest('granted@example.org'),
      ],
    });
    await waitUntil('two callbacks', () => received.length >= 2);
    const [refused] = callbacksFor('refused@example.org');
    assert.equal(refused?.body.authorization.code, undefined);
    assert.equal(refused?.body.authorization.error, 'unable_to_grant_scope');
    assert.equal(refused?.body.authorization.error_key, 'unable_to_grant_scope');
    assert.equal(typeof refused?.body.authorization.error_description, 'string');
    assert.ok(callbacksFor('granted@example.org')[0]?.body.authorization.code);
    assert.equal((await enterpriseState('?email=refused@example.org')).users.total, 0, 'no access granted');
  });

  void test('no_callback: nothing is ever sent for that user', async () => {
    await put('/_sim/enterprise/outcomes', { default: { kind: 'no_callback' } });
    const serviceAccount = await serviceAccountFor();
    await requestUserAccess(serviceAccount.access_token, accessRequest('silent@example.org'));
    assert.deepEqual(await waitUntilCallbacksSettle(), { pending: 0, delivered: 0, failed: 0, withheld: 1 });
    await sleep(50);
    assert.equal(received.length, 0);
  });

  void test('late: the callback arrives only after the delay', async () => {
    await put('/_sim/enterprise/outcomes', {
      byEmail: { 'slow@example.org': { kind: 'late', delayMs: 400 } },
    });
    const serviceAccount = await serviceAccountFor();
    const started = performance.now();
    await requestUserAccess(serviceAccount.access_token, {
      service_account_authorizations: [accessRequest('slow@example.org'), accessRequest('fast@example.org')],
    });
    await codeFromCallback('fast@example.org');
    assert.equal(callbacksFor('slow@example.org').length, 0);
    const code = await codeFromCallback('slow@example.org');
    assert.ok((callbacksFor('slow@example.org')[0]?.at ?? 0) - started >= 390, 'the callback was late');
    assert.equal((await exchange(code, callbackUrlFor('slow@example.org'))).status, 200);
  });

  void test('duplicate: the same success callback twice, whose code still works once', async () => {
    await put('/_sim/enterprise/outcomes', { default: { kind: 'duplicate' } });
    const serviceAccount = await serviceAccountFor();
    await requestUserAccess(serviceAccount.access_token, accessRequest('twice@example.org'));
    await waitUntil('two callbacks', () => received.length >= 2);
    const [first, second] = received;
    assert.deepEqual(first?.body, second?.body);
    const code = first?.body.authorization.code ?? '';
    assert.equal((await exchange(code, callbackUrlFor('twice@example.org'))).status, 200);
    assert.equal((await exchange(code, callbackUrlFor('twice@example.org'))).status, 400);
  });

  void test('an invalid script is refused', async () => {
    assert.equal((await put('/_sim/enterprise/outcomes', { default: { kind: 'maybe' } })).status, 400);
    assert.equal((await put('/_sim/enterprise/outcomes', { default: { kind: 'late' } })).status, 400);
  });
});

void describe('revoking a service account', () => {
  void test('revokes every user authorization granted through it, idempotently', async () => {
    const serviceAccount = await serviceAccountFor();
    const bystander = await json<{ access_token: string }>(
      await post('/_sim/accounts', { email: 'bystander@example.org', client_id: app.clientId }),
    );
    await requestUserAccess(serviceAccount.access_token, {
      service_account_authorizations: [accessRequest('a@example.org'), accessRequest('b@example.org')],
    });
    const userTokens = [];
    for (const email of ['a@example.org', 'b@example.org']) {
      const code = await codeFromCallback(email);
      userTokens.push(await json<UserTokens>(await exchange(code, callbackUrlFor(email))));
    }
    for (const tokens of userTokens) assert.equal((await userinfo(tokens.access_token)).status, 200);

    for (const token of [serviceAccount.refresh_token, serviceAccount.refresh_token]) {
      const response = await revoke({ token });
      assert.equal(response.status, 200);
      assert.equal(await response.text(), '');
    }
    for (const tokens of userTokens) assert.equal((await userinfo(tokens.access_token)).status, 401);
    assert.equal((await userinfo(serviceAccount.access_token)).status, 401);
    assert.equal((await refresh(serviceAccount.refresh_token)).status, 400);
    assert.equal(
      (await requestUserAccess(serviceAccount.access_token, accessRequest('c@example.org'))).status,
      401,
    );
    assert.equal((await userinfo(bystander.access_token)).status, 200, 'an individual account is untouched');

    const state = await enterpriseState();
    assert.equal(state.service_accounts[0]?.revoked, true);
    assert.deepEqual(state.service_accounts[0]?.users, { total: 2, active: 0, revoked: 2 });
    assert.ok(state.users.items.every((user) => user.revoked));
  });

  void test('by sub (ser_…) and only for the client that owns it', async () => {
    const domain = await json<{ service_account_id: string; access_token: string }>(
      await post('/_sim/enterprise/domains', {
        domain: 'example.org',
        client_id: app.clientId,
        users: ['a@example.org', 'b@example.org'],
      }),
    );
    const otherClientRevoke = await postForm('/oauth/token/revoke', {
      client_id: other.clientId,
      client_secret: other.clientSecret,
      sub: domain.service_account_id,
    });
    assert.equal(otherClientRevoke.status, 200);
    assert.equal((await userinfo(domain.access_token)).status, 200);

    assert.equal((await revoke({ sub: domain.service_account_id })).status, 200);
    assert.equal((await userinfo(domain.access_token)).status, 401);
    const summary = await json<{ users: { revoked: number; active: number } }>(
      await get('/_sim/enterprise/state?summary=1'),
    );
    assert.deepEqual([summary.users.active, summary.users.revoked], [0, 2]);
  });

  void test('a callback not yet sent when the service account is revoked is never sent', async () => {
    await put('/_sim/enterprise/outcomes', { default: { kind: 'late', delayMs: 200 } });
    const serviceAccount = await serviceAccountFor();
    await requestUserAccess(serviceAccount.access_token, accessRequest('late@example.org'));
    await revoke({ token: serviceAccount.refresh_token });
    assert.deepEqual(await waitUntilCallbacksSettle(), { pending: 0, delivered: 0, failed: 0, withheld: 1 });
    assert.equal(received.length, 0);
  });
});

void describe('rate limits, faults and the request log', () => {
  void test('service_account_authorizations counts against the application rate limit', async () => {
    const serviceAccount = await serviceAccountFor();
    assert.equal((await put('/_sim/rate-limit', { perSecond: 2, perMinute: 100 })).status, 200);
    await post('/_sim/clock/advance', { seconds: 1 }); // the token exchange above has left the window
    const statuses = [];
    for (let request = 0; request < 3; request += 1) {
      const response = await requestUserAccess(
        serviceAccount.access_token,
        accessRequest(`u${request}@example.org`),
      );
      statuses.push(response.status);
    }
    assert.deepEqual(statuses, [202, 202, 429]);
    assert.equal((await userinfo(serviceAccount.access_token)).status, 429, 'userinfo shares the limit');
    assert.equal((await waitUntilCallbacksSettle()).delivered, 2, 'the rejected request sent nothing');

    const log = await json<{ endpoint: string; status: number; path: string }[]>(await get('/_sim/requests'));
    assert.deepEqual(
      log
        .filter((entry) => entry.endpoint === 'service_account_authorizations')
        .map(({ path, status }) => ({ path, status })),
      [
        { path: '/v1/service_account_authorizations', status: 202 },
        { path: '/v1/service_account_authorizations', status: 202 },
        { path: '/v1/service_account_authorizations', status: 429 },
      ],
    );
  });

  void test('a fault on service_account_authorizations fails the request without scheduling callbacks', async () => {
    const serviceAccount = await serviceAccountFor();
    await post('/_sim/faults', { endpoint: 'service_account_authorizations', status: 503, count: 1 });
    assert.equal(
      (await requestUserAccess(serviceAccount.access_token, accessRequest('u@example.org'))).status,
      503,
    );
    assert.equal((await waitUntilCallbacksSettle()).delivered, 0);
    assert.equal(
      (await requestUserAccess(serviceAccount.access_token, accessRequest('u@example.org'))).status,
      202,
    );
    assert.equal((await waitUntilCallbacksSettle()).delivered, 1);
  });

  void test('a fault on enterprise_authorize fails the consent page', async () => {
    await post('/_sim/faults', { endpoint: 'enterprise_authorize', status: 502, count: 1 });
    assert.equal((await get(enterpriseAuthorizePath(enterpriseAuthorizeParams()))).status, 502);
    assert.equal((await get(enterpriseAuthorizePath(enterpriseAuthorizeParams()))).status, 200);
  });
});

void describe('enterprise control API', () => {
  void test('creates a 50,000-user Read/Write domain quickly; the state is summarised and paged', async (t) => {
    const existing = await json<{ sub: string }>(
      await post('/_sim/accounts', { email: 'user0@big.example', client_id: app.clientId }),
    );
    const users = Array.from({ length: 50_000 }, (_, index) => `user${index}@big.example`);
    const started = performance.now();
    const response = await post('/_sim/enterprise/domains', {
      domain: 'big.example',
      client_id: app.clientId,
      provider: 'ms_graph',
      users,
    });
    const elapsedMs = performance.now() - started;
    t.diagnostic(`creating a 50,000-user domain took ${Math.round(elapsedMs)} ms`);
    assert.equal(response.status, 201);
    assert.ok(elapsedMs < 15_000, `took ${elapsedMs} ms`);
    const domain = await json<{
      service_account_id: string;
      access_token: string;
      refresh_token: string;
      users: { email: string; sub: string }[];
    }>(response);
    assert.match(domain.service_account_id, /^ser_/);
    assert.equal(domain.users.length, 50_000);
    assert.equal(domain.users[0]?.sub, existing.sub, 'an existing account keeps its sub');
    assert.equal(new Set(domain.users.map((user) => user.sub)).size, 50_000);

    const info = await json<{
      'cronofy.data': { service_account: { provider_name: string; domain: string } };
    }>(await userinfo(domain.access_token));
    assert.deepEqual(info['cronofy.data'].service_account, {
      provider_name: 'ms_graph',
      domain: 'big.example',
    });

    const summary = await json<{ users: unknown; service_accounts: { users: unknown }[] }>(
      await get('/_sim/enterprise/state?summary=1'),
    );
    assert.deepEqual(summary.users, {
      total: 50_000,
      active: 50_000,
      revoked: 0,
      by_provider: { ms_graph: { active: 50_000, revoked: 0 } },
    });
    assert.deepEqual(summary.service_accounts[0]?.users, { total: 50_000, active: 50_000, revoked: 0 });

    const page = await enterpriseState('?offset=49990&limit=20');
    assert.equal(page.users.total, 50_000);
    assert.deepEqual(
      page.users.items.map((user) => user.email),
      users.slice(49_990),
    );
    assert.ok(page.users.items.every((user) => user.service_account_id === domain.service_account_id));
  });

  void test('refuses an unknown client or an invalid user list', async () => {
    const unknown = await post('/_sim/enterprise/domains', {
      domain: 'example.org',
      client_id: 'nobody',
      users: [],
    });
    assert.equal(unknown.status, 400);
    const invalid = await post('/_sim/enterprise/domains', {
      domain: 'example.org',
      client_id: app.clientId,
      users: ['not-an-email'],
    });
    assert.equal(invalid.status, 400);
  });

  void test('issued-secrets includes service account tokens and enterprise codes; the state view has none', async () => {
    const code = (await adminConsent('free_busy_google')).searchParams.get('code') ?? '';
    const tokens = await json<ServiceAccountTokens>(await exchange(code, adminRedirectUri));
    await requestUserAccess(tokens.access_token, accessRequest('user@example.org'));
    const userCode = await codeFromCallback('user@example.org');
    const secrets = await json<{ codes: string[]; access_tokens: string[]; refresh_tokens: string[] }>(
      await get('/_sim/issued-secrets'),
    );
    assert.deepEqual(secrets, {
      codes: [code, userCode],
      access_tokens: [tokens.access_token],
      refresh_tokens: [tokens.refresh_token],
    });
    const views =
      (await (await get('/_sim/enterprise/state')).text()) + (await (await get('/_sim/state')).text());
    for (const secret of [code, userCode, tokens.access_token, tokens.refresh_token]) {
      assert.ok(!views.includes(secret));
    }
  });

  void test('reset forgets service accounts, users, outcomes and settings', async () => {
    const tokens = await serviceAccountFor();
    await put('/_sim/enterprise/outcomes', { default: { kind: 'no_callback' } });
    await put('/_sim/enterprise/settings', { serviceAccountTokenTtlSeconds: 60 });
    assert.equal((await post('/_sim/reset', {})).status, 204);
    assert.equal((await userinfo(tokens.access_token)).status, 401);
    const state = await json<{ service_accounts: unknown[]; users: unknown; settings: unknown }>(
      await get('/_sim/enterprise/state?summary=1'),
    );
    assert.deepEqual(state.service_accounts, []);
    assert.deepEqual(state.users, { total: 0, active: 0, revoked: 0, by_provider: {} });
    assert.deepEqual(state.settings, { serviceAccountTokenTtlSeconds: 1800 });
    assert.deepEqual(await json(await get('/_sim/enterprise/outcomes')), {
      default: { kind: 'free_busy' },
      byEmail: {},
    });
  });
});
