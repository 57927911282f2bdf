import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import got from 'got';
import { CronofyClient } from '../src/cronofy/client.js';
import {
  CronofyClientCredentialsError,
  CronofyGrantError,
  CronofyRateLimitedError,
  CronofyUnauthorizedError,
  CronofyUnavailableError,
} from '../src/cronofy/errors.js';
import { cronofyHosts } from '../src/cronofy/hosts.js';
import { startSimulator, type RunningSimulator } from '../simulator/server.js';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { AUTHORIZATION_CODE_LOST, exchangeCodeOnce } from '../src/activities/exchangeCode.js';
import { CredentialStore } from '../src/store/credentialStore.js';
import { openDatabase } from '../src/store/database.js';
import { Keyring } from '../src/store/encryption.js';

const CLIENT = { clientId: 'client-test', clientSecret: 'client-test-secret-000000' };
let simulator: RunningSimulator;
let cronofy: CronofyClient;

before(async () => {
  simulator = await startSimulator({ clients: [{ ...CLIENT, redirectUris: ['http://127.0.0.1:1/cb'] }] });
  cronofy = new CronofyClient({
    ...CLIENT,
    hosts: { api: simulator.url, app: simulator.url },
    timeoutMs: 1_000,
  });
});
after(() => simulator.close());

const fault = (body: object) => got.post(`${simulator.url}/_sim/faults`, { json: body });

test('hosts follow the data centre', () => {
  assert.deepEqual(cronofyHosts('us'), { api: 'https://api.cronofy.com', app: 'https://app.cronofy.com' });
  assert.deepEqual(cronofyHosts('de'), {
    api: 'https://api-de.cronofy.com',
    app: 'https://app-de.cronofy.com',
  });
  const url = new URL(
    new CronofyClient({ ...CLIENT, dataCentre: 'uk' }).authorizationUrl({
      redirectUri: 'https://example.org/cb?x=1',
      scope: ['free_busy_write'],
      state: 's',
      providerName: 'google_free_busy',
    }),
  );
  assert.equal(url.origin + url.pathname, 'https://app-uk.cronofy.com/oauth/authorize');
  assert.equal(url.searchParams.get('response_type'), 'code');
  assert.equal(url.searchParams.get('redirect_uri'), 'https://example.org/cb?x=1');
  assert.equal(url.searchParams.get('provider_name'), 'google_free_busy');
});

test('an unknown code is a non-retryable grant error carrying invalid_grant', async () => {
  const error = await cronofy
    .requestAccessToken('x'.repeat(32), 'http://127.0.0.1:1/cb')
    .catch((e: unknown) => e);
  assert.ok(error instanceof CronofyGrantError);
  assert.equal(error.status, 400);
  assert.equal(error.errorKey, 'invalid_grant');
  assert.equal(error.retryable, false);
});

test('429 is retryable and carries Retry-After', async () => {
  await fault({ endpoint: 'revoke', status: 429, retryAfterSeconds: 3, count: 1 });
  const error = await cronofy.revokeAuthorization({ sub: 'acc_x' }).catch((e: unknown) => e);
  assert.ok(error instanceof CronofyRateLimitedError);
  assert.equal(error.retryAfterMs, 3_000);
  assert.equal(error.retryable, true);
  await cronofy.revokeAuthorization({ sub: 'acc_x' });
});

test('5xx, timeouts and refused connections are retryable unavailability', async () => {
  await fault({ endpoint: 'token', status: 503, count: 1 });
  const serverError = await cronofy.refreshAccessToken('r'.repeat(40)).catch((e: unknown) => e);
  assert.ok(serverError instanceof CronofyUnavailableError);
  assert.equal(serverError.status, 503);

  await fault({ endpoint: 'revoke', delayMs: 2_000, count: 1 });
  const slow = await cronofy.revokeAuthorization({ sub: 'acc_x' }).catch((e: unknown) => e);
  assert.ok(slow instanceof CronofyUnavailableError);
  assert.equal(slow.retryable, true);

  const nowhere = new CronofyClient({
    ...CLIENT,
    hosts: { api: 'http://127.0.0.1:1', app: 'http://127.0.0.1:1' },
  });
  const refused = await nowhere.userInfo('t').catch((e: unknown) => e);
  assert.ok(refused instanceof CronofyUnavailableError);
});

test('an unrecognised access token is a 401 to refresh on', async () => {
  const error = await cronofy.userInfo('not-a-token').catch((e: unknown) => e);
  assert.ok(error instanceof CronofyUnauthorizedError);
  assert.equal(error.status, 401);
});

test('a 401 from the token endpoints refuses the client credentials and is not retryable', async () => {
  await fault({ endpoint: 'token', status: 401, count: 1 });
  const exchange = await cronofy
    .requestAccessToken('x'.repeat(32), 'http://127.0.0.1:1/cb')
    .catch((e: unknown) => e);
  assert.ok(exchange instanceof CronofyClientCredentialsError, String(exchange));
  assert.equal(exchange.retryable, false);
  assert.match(exchange.message, /client credentials/);

  await fault({ endpoint: 'revoke', status: 401, count: 1 });
  const revoke = await cronofy.revokeAuthorization({ sub: 'acc_x' }).catch((e: unknown) => e);
  assert.ok(revoke instanceof CronofyClientCredentialsError, String(revoke));
  assert.equal(revoke.retryable, false);
});

test('a user created on the simulator can be refreshed, read and revoked through the client', async () => {
  const account = await got
    .post(`${simulator.url}/_sim/accounts`, {
      json: { email: 'client@example.com', client_id: CLIENT.clientId },
    })
    .json<{ sub: string; refresh_token: string }>();
  const refreshed = await cronofy.refreshAccessToken(account.refresh_token);
  const info = await cronofy.userInfo(refreshed.access_token);
  assert.equal(info.sub, account.sub);
  await cronofy.revokeAuthorization({ token: account.refresh_token });
  await assert.rejects(cronofy.refreshAccessToken(account.refresh_token), CronofyGrantError);
  await assert.rejects(cronofy.userInfo(refreshed.access_token), CronofyUnauthorizedError);
});

test('an exchange refused on a retried attempt is a lost code (the human is asked again); on the first, a refused grant', async () => {
  const database = await openDatabase('memory:');
  try {
    const store = new CredentialStore(database, Keyring.parse(Keyring.generateSpec('lost1')));
    // A code Cronofy no longer knows: what a crash between its answer and the tokens' record leaves behind.
    const exchange = async (attempt: number) => {
      const codeRef = await store.putSecret('authorization_code', 'c'.repeat(32), 60);
      const request = {
        codeRef,
        redirectUri: 'http://127.0.0.1:1/cb',
        kind: 'account' as const,
        label: 'lost',
      };
      return new MockActivityEnvironment({ attempt })
        .run(() => exchangeCodeOnce({ cronofy, store }, request))
        .then(
          () => 'exchanged',
          (error: unknown) => (error instanceof ApplicationFailure ? error.type : String(error)),
        );
    };
    assert.equal(await exchange(1), 'CronofyGrantError');
    assert.equal(await exchange(2), AUTHORIZATION_CODE_LOST);
  } finally {
    await database.close();
  }
});
