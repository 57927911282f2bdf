import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, parseConfig } from '../src/config.js';
import { Keyring } from '../src/store/encryption.js';

const valid = {
  STATE_SIGNING_SECRET: 'x'.repeat(32),
  CREDENTIAL_KEYS: Keyring.generateSpec('k1'),
};

test('the embedded defaults need only the two secrets and use the simulator', () => {
  const config = parseConfig(valid);
  assert.equal(config.useSimulator, true);
  assert.equal(config.TEMPORAL_ADDRESS, '127.0.0.1:7233');
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
      ]) {
        assert.match(error.message, new RegExp(`\\b${name}:`), `names ${name}`);
      }
      assert.ok(
        !error.message.includes(Buffer.alloc(16, 7).toString('base64')),
        'key material is not echoed',
      );
      return true;
    },
  );
});
