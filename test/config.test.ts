import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, localDevelopmentSecrets, parseConfig } from '../src/config.js';
import { Keyring } from '../src/store/encryption.js';

const valid = {
  STATE_SIGNING_SECRET: 'x'.repeat(32),
  CREDENTIAL_KEYS: Keyring.generateSpec('k1'),
  PAYLOAD_ENCRYPTION_KEYS: Keyring.generateSpec('p1'),
  CODEC_SERVER_TOKEN: 't'.repeat(16),
};

test('the embedded defaults need only the secrets and use the simulator', () => {
  const config = parseConfig(valid);
  assert.equal(config.useSimulator, true);
  assert.equal(config.TEMPORAL_ADDRESS, '127.0.0.1:7233');
  assert.equal(config.embeddedTemporal, true);
  assert.equal(parseConfig({ ...valid, TEMPORAL_ADDRESS: '' }).embeddedTemporal, true);
  assert.equal(parseConfig({ ...valid, TEMPORAL_ADDRESS: 'temporal:7233' }).embeddedTemporal, false);
  assert.equal(config.DOWNGRADE_DEADLINE, 7 * 24 * 3600 * 1000);
  assert.equal(config.callbackBaseUrl, 'http://127.0.0.1:8080');
});

test('real Cronofy credentials switch the simulator off', () => {
  const config = parseConfig({
    ...valid,
    CRONOFY_CLIENT_ID: 'id',
    CRONOFY_CLIENT_SECRET: 'secret',
    CRONOFY_DATA_CENTER: 'uk',
  });
  assert.equal(config.useSimulator, false);
  assert.equal(config.CRONOFY_DATA_CENTER, 'uk');
});

test('every bad variable is named in one error, and no secret value is echoed', () => {
  const secretLookingKey = `k1:${Buffer.alloc(16, 7).toString('base64')}`;
  assert.throws(
    () =>
      parseConfig({
        STATE_SIGNING_SECRET: 'short',
        CREDENTIAL_KEYS: secretLookingKey,
        CALLBACK_PORT: '99999',
        CRONOFY_DATA_CENTER: 'mars',
        CRONOFY_CLIENT_ID: 'id-without-secret',
        DOWNGRADE_DEADLINE: 'soon',
        API_ADMIN_KEY: 'cdk_not-a-whole-key',
      }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      for (const name of [
        'STATE_SIGNING_SECRET',
        'CREDENTIAL_KEYS',
        'CALLBACK_PORT',
        'CRONOFY_DATA_CENTER',
        'CRONOFY_CLIENT_SECRET',
        'DOWNGRADE_DEADLINE',
        'API_ADMIN_KEY',
      ]) {
        assert.match(error.message, new RegExp(`\\b${name}:`), `names ${name}`);
      }
      assert.ok(
        !error.message.includes(Buffer.alloc(16, 7).toString('base64')) &&
          !error.message.includes('cdk_not-a-whole-key'),
        'key material is not echoed',
      );
      return true;
    },
  );
});

test('the codec server listens on loopback and answers the embedded Temporal UI by default', () => {
  const config = parseConfig(valid);
  assert.equal(config.CODEC_SERVER_HOST, '127.0.0.1');
  assert.equal(config.CODEC_SERVER_PORT, 8234);
  assert.equal(config.CODEC_ALLOWED_ORIGIN, 'http://127.0.0.1:8233');
  assert.equal(
    parseConfig({ ...valid, TEMPORAL_UI_PORT: '9233' }).CODEC_ALLOWED_ORIGIN,
    'http://127.0.0.1:9233',
  );
  const configured = parseConfig({
    ...valid,
    CODEC_SERVER_HOST: '0.0.0.0',
    CODEC_SERVER_PORT: '9000',
    CODEC_ALLOWED_ORIGIN: 'https://temporal.example.com/',
  });
  assert.equal(configured.CODEC_SERVER_PORT, 9000);
  assert.equal(
    configured.CODEC_ALLOWED_ORIGIN,
    'https://temporal.example.com',
    'an origin, without the path',
  );
});

test('payload encryption keys and the codec token are required, checked and never echoed', () => {
  const shortKey = Buffer.alloc(16, 9).toString('base64');
  assert.throws(
    () =>
      parseConfig({
        ...valid,
        PAYLOAD_ENCRYPTION_KEYS: `p1:${shortKey}`,
        CODEC_SERVER_TOKEN: 'too-short',
        CODEC_SERVER_PORT: '70000',
        CODEC_ALLOWED_ORIGIN: 'not a url',
      }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      for (const name of [
        'PAYLOAD_ENCRYPTION_KEYS',
        'CODEC_SERVER_TOKEN',
        'CODEC_SERVER_PORT',
        'CODEC_ALLOWED_ORIGIN',
      ]) {
        assert.match(error.message, new RegExp(`\\b${name}:`), `names ${name}`);
      }
      assert.match(error.message, /PAYLOAD_ENCRYPTION_KEYS: .*16 bytes/);
      assert.ok(!error.message.includes(shortKey), 'key material is not echoed');
      assert.ok(!error.message.includes('too-short'), 'the token is not echoed');
      return true;
    },
  );
  const { PAYLOAD_ENCRYPTION_KEYS: _keys, CODEC_SERVER_TOKEN: _token, ...withoutThem } = valid;
  assert.throws(
    () => parseConfig(withoutThem),
    (error: unknown) =>
      error instanceof ConfigError &&
      /\bPAYLOAD_ENCRYPTION_KEYS:/.test(error.message) &&
      /\bCODEC_SERVER_TOKEN:/.test(error.message),
  );
});

test('a short payload encryption key stops start-up with a message naming the variable', () => {
  const shortKey = Buffer.alloc(16, 3).toString('base64');
  const run = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--eval', "import('./src/config.ts').then((m) => m.loadConfig())"],
    {
      encoding: 'utf8',
      env: { ...process.env, ...valid, NODE_ENV: 'production', PAYLOAD_ENCRYPTION_KEYS: `p1:${shortKey}` },
    },
  );
  assert.equal(run.status, 1, run.stderr);
  assert.match(run.stderr, /PAYLOAD_ENCRYPTION_KEYS: .*AES-256 needs 32/);
  assert.ok(!run.stderr.includes(shortKey), 'key material is not echoed');
});

test('local secrets are generated once; a file from an earlier version gains the ones it lacks', () => {
  const directory = mkdtempSync(join(tmpdir(), 'local-secrets-'));
  try {
    const fresh = join(directory, 'fresh', 'local-secrets.json');
    const generated = localDevelopmentSecrets(fresh);
    assert.deepEqual(Object.keys(generated).sort(), [
      'API_ADMIN_KEY',
      'CODEC_SERVER_TOKEN',
      'CREDENTIAL_KEYS',
      'PAYLOAD_ENCRYPTION_KEYS',
      'STATE_SIGNING_SECRET',
    ]);
    assert.doesNotThrow(() => parseConfig(generated));
    assert.equal(statSync(fresh).mode & 0o777, 0o600);
    assert.deepEqual(localDevelopmentSecrets(fresh), generated, 'generated once');

    const older = join(directory, 'older.json');
    const earlier = { STATE_SIGNING_SECRET: 's'.repeat(40), CREDENTIAL_KEYS: Keyring.generateSpec('local1') };
    writeFileSync(older, JSON.stringify(earlier));
    const merged = localDevelopmentSecrets(older);
    assert.equal(merged.STATE_SIGNING_SECRET, earlier.STATE_SIGNING_SECRET);
    assert.equal(merged.CREDENTIAL_KEYS, earlier.CREDENTIAL_KEYS, 'existing keys are kept');
    assert.notEqual(merged.PAYLOAD_ENCRYPTION_KEYS, merged.CREDENTIAL_KEYS);
    assert.doesNotThrow(() => parseConfig(merged));
    assert.deepEqual(JSON.parse(readFileSync(older, 'utf8')), merged, 'the file keeps the added secrets');
    assert.deepEqual(localDevelopmentSecrets(older), merged);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('a variable set to the empty string counts as unset (Compose `${VAR:-}`, `VAR=` in env files)', () => {
  const config = parseConfig({
    ...valid,
    CODEC_OIDC_ISSUER: '',
    CODEC_OIDC_AUDIENCE: '',
    TEMPORAL_ADDRESS: '',
  });
  assert.equal(config.CODEC_OIDC_ISSUER, undefined);
  assert.equal(config.TEMPORAL_ADDRESS, '127.0.0.1:7233');
  assert.throws(
    () => parseConfig({ ...valid, CODEC_OIDC_ISSUER: 'https://idp.example.org', CODEC_OIDC_AUDIENCE: '' }),
    /CODEC_OIDC_AUDIENCE: required with CODEC_OIDC_ISSUER/,
  );
});

test('SERVICE_ROLES picks what a process runs: all four by default, any subset, nothing unknown', () => {
  const split = { DATABASE_URL: 'postgres://downgrade@db/credentials', TEMPORAL_ADDRESS: 'temporal:7233' };
  assert.deepEqual([...parseConfig(valid).SERVICE_ROLES], ['worker', 'callbacks', 'codec', 'api']);
  assert.deepEqual(
    [...parseConfig({ ...valid, ...split, SERVICE_ROLES: 'callbacks, codec' }).SERVICE_ROLES],
    ['callbacks', 'codec'],
  );
  assert.deepEqual(
    [...parseConfig({ ...valid, ...split, SERVICE_ROLES: 'worker' }).SERVICE_ROLES],
    ['worker'],
  );
  // Split across processes, the callback server, the API and the worker must share PostgreSQL, not an embedded store.
  for (const roles of ['worker', 'api', 'callbacks,codec,api']) {
    assert.throws(
      () => parseConfig({ ...valid, SERVICE_ROLES: roles }),
      /SERVICE_ROLES: a worker, a callback server and an API in separate processes must share a PostgreSQL DATABASE_URL/,
    );
  }
  // ... and one Temporal server: without TEMPORAL_ADDRESS each process would start a dev server of its own.
  assert.throws(
    () => parseConfig({ ...valid, ...split, TEMPORAL_ADDRESS: undefined, SERVICE_ROLES: 'callbacks,codec' }),
    (error: Error) =>
      /must share a Temporal server; set TEMPORAL_ADDRESS/.test(error.message) &&
      !/PostgreSQL DATABASE_URL/.test(error.message),
  );
  assert.throws(
    () => parseConfig({ ...valid, ...split, TEMPORAL_ADDRESS: '', SERVICE_ROLES: 'worker' }),
    /must share a Temporal server; set TEMPORAL_ADDRESS/,
  );
  assert.equal(parseConfig({ ...valid, SERVICE_ROLES: 'codec' }).SERVICE_ROLES.has('codec'), true);
  assert.throws(
    () => parseConfig({ ...valid, SERVICE_ROLES: 'worker,queue' }),
    (error: Error) =>
      error instanceof ConfigError &&
      /SERVICE_ROLES: "worker,queue": roles are worker, callbacks, codec, api/.test(error.message),
  );
});

test('the webhook: a URL needs Standard Webhooks secrets (or the older one), each whsec_ secret is checked, the schedule parsed', () => {
  const secret = `whsec_${Buffer.alloc(32, 9).toString('base64')}`;
  const url = 'https://app.example.com/hooks/downgrades';
  const config = parseConfig({
    ...valid,
    APP_WEBHOOK_URL: url,
    APP_WEBHOOK_SIGNING_SECRETS: `${secret}, ${secret.replace('CQkJ', 'AAAA')}`,
    NOTIFICATION_RETRY_SCHEDULE: '5s, 5m,2h',
  });
  assert.equal(config.APP_WEBHOOK_SIGNING_SECRETS?.length, 2);
  assert.deepEqual(config.NOTIFICATION_RETRY_SCHEDULE, [5_000, 300_000, 7_200_000]);
  assert.equal(
    parseConfig({ ...valid, APP_WEBHOOK_URL: url, APP_WEBHOOK_SECRET: 'l'.repeat(16) }).APP_WEBHOOK_URL,
    url,
  );
  assert.throws(
    () => parseConfig({ ...valid, APP_WEBHOOK_URL: url }),
    /APP_WEBHOOK_SIGNING_SECRETS: required with APP_WEBHOOK_URL/,
  );
  assert.throws(
    () => parseConfig({ ...valid, APP_WEBHOOK_SIGNING_SECRETS: secret }),
    /APP_WEBHOOK_URL: required with/,
  );
  const bad = (() => {
    try {
      parseConfig({
        ...valid,
        APP_WEBHOOK_URL: url,
        APP_WEBHOOK_SIGNING_SECRETS: 'whsec_short',
        NOTIFICATION_RETRY_SCHEDULE: '5s,soon',
      });
    } catch (error) {
      return (error as ConfigError).message;
    }
    return '';
  })();
  assert.match(bad, /APP_WEBHOOK_SIGNING_SECRETS: each secret is whsec_/);
  assert.match(bad, /NOTIFICATION_RETRY_SCHEDULE: "5s,soon" is not a list of durations/);
  assert.doesNotMatch(bad, /whsec_short/);
});

test('WORKFLOW_BUNDLE_PATH: a bundle built for the other tracing choice is refused, naming the fix', async () => {
  const { prebuiltWorkflowBundle } = await import('../src/worker.js');
  const directory = mkdtempSync(join(tmpdir(), 'bundle-'));
  try {
    const untraced = join(directory, 'untraced.js');
    const traced = join(directory, 'traced.js');
    writeFileSync(untraced, 'var workflows = {};');
    writeFileSync(traced, 'require("@temporalio/interceptors-opentelemetry/lib/workflow-interceptors.js");');
    assert.equal(prebuiltWorkflowBundle(untraced, { tracing: false }).code, 'var workflows = {};');
    assert.ok(prebuiltWorkflowBundle(traced, { tracing: true }).code.includes('workflow-interceptors'));
    assert.throws(
      () => prebuiltWorkflowBundle(untraced, { tracing: true }),
      /bundled without tracing.*--tracing/,
    );
    assert.throws(
      () => prebuiltWorkflowBundle(traced, { tracing: false }),
      /bundled with tracing, but tracing is off/,
    );
    assert.equal(parseConfig({ ...valid, WORKFLOW_BUNDLE_PATH: traced }).WORKFLOW_BUNDLE_PATH, traced);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});
