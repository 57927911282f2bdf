import assert from 'node:assert/strict';
import { createScratchDatabase, testPostgresUrl } from '../harness/postgres.js';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CredentialNotFoundError,
  CredentialStore,
  SecretNotFoundError,
  type NewCredentials,
  type StoredCredentials,
} from '../src/store/credentialStore.js';
import { openDatabase, type Database } from '../src/store/database.js';
import { DecryptionError, InvalidKeySpecError, Keyring } from '../src/store/encryption.js';
import { migrations } from '../src/store/migrations.js';

const K1 = Keyring.generateSpec('k1');
const K2 = Keyring.generateSpec('k2');

function accountCredentials(overrides: Partial<NewCredentials> = {}): NewCredentials {
  const unique = randomBytes(6).toString('hex');
  return {
    kind: 'account',
    sub: `acc_${unique}`,
    accessToken: `access-PLAINTEXT-${unique}`,
    refreshToken: `refresh-PLAINTEXT-${unique}`,
    expiresInSeconds: 3600,
    scope: 'free_busy_write',
    providerName: 'google',
    providerService: 'free_busy',
    profileId: `pro_${unique}`,
    profileName: 'person@example.com',
    label: `downgrade-individual-${unique}`,
    ...overrides,
  };
}

function flipByteIn(envelope: string, part: 2 | 3 | 4): string {
  const parts = envelope.split('.');
  const bytes = Buffer.from(parts[part] ?? '', 'base64url');
  bytes[0] = (bytes[0] ?? 0) ^ 0x01;
  parts[part] = bytes.toString('base64url');
  return parts.join('.');
}

/** A location that survives close/reopen, so persistence and repeated migrations can be observed. */
interface Backend {
  name: string;
  url(): Promise<string>;
  cleanup(): Promise<void>;
}

function pgliteBackend(): Backend {
  let dir: string | undefined;
  return {
    name: 'PGlite (file directory)',
    async url() {
      dir ??= await mkdtemp(join(tmpdir(), 'store-test-'));
      return `file:${join(dir, 'nested', 'store')}`;
    },
    async cleanup() {
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A fresh database on the server for each use, so migrations start from nothing. */

function postgresBackend(serverUrl: string): Backend {
  let scratch: Awaited<ReturnType<typeof createScratchDatabase>> | undefined;
  return {
    name: 'PostgreSQL',
    async url() {
      scratch ??= await createScratchDatabase(serverUrl, 'store_test');
      return scratch.url;
    },
    async cleanup() {
      await scratch?.drop();
    },
  };
}

// Every run checks the PostgreSQL path too: a given server, or a throwaway one started by the project's script.
const postgresUrl = testPostgresUrl();

for (const backend of [pgliteBackend(), postgresBackend(postgresUrl)]) {
  void describe(`credential store on ${backend.name}`, () => {
    let db: Database;
    let store: CredentialStore;

    before(async () => {
      db = await openDatabase(await backend.url());
      store = new CredentialStore(db, Keyring.parse(K1));
    });

    after(async () => {
      await db.close();
      await backend.cleanup();
    });

    async function rawCredentialRow(ref: string) {
      const [row] = await db.query<{ access_token_enc: string; refresh_token_enc: string }>(
        'SELECT access_token_enc, refresh_token_enc FROM credentials WHERE ref = $1',
        [ref],
      );
      assert.ok(row, `row ${ref} exists`);
      return row;
    }

    void test('saved credentials read back decrypted, with metadata', async () => {
      const input = accountCredentials();
      const ref = await store.saveCredentials(input);
      assert.match(ref, /^cred_[A-Za-z0-9_-]{24}$/);

      const { accessTokenExpiresAt, createdAt, ...stored } = await store.getCredentials(ref);
      // Stored credentials carry an absolute expiry instead of the relative one they were saved with.
      const expected: Partial<StoredCredentials> = { ...input, ref };
      delete expected.expiresInSeconds;
      assert.deepEqual(stored, expected);
      assert.ok(createdAt instanceof Date);
      assert.ok(accessTokenExpiresAt instanceof Date);
      const expiresIn = accessTokenExpiresAt.getTime() - createdAt.getTime();
      assert.ok(Math.abs(expiresIn - 3_600_000) < 5_000, `expires ~1h after creation, got ${expiresIn}ms`);

      const described = await store.describeCredentials(ref);
      assert.equal(described.sub, input.sub);
      assert.equal(described.label, input.label);
      assert.equal('accessToken' in described, false);
      assert.equal('refreshToken' in described, false);
    });

    void test('optional fields stay absent and a service account needs no refresh token', async () => {
      const ref = await store.saveCredentials({
        kind: 'service_account',
        sub: 'ser_1',
        accessToken: 'sa-token',
      });
      assert.deepEqual(
        { ...(await store.getCredentials(ref)), createdAt: undefined },
        { ref, kind: 'service_account', sub: 'ser_1', accessToken: 'sa-token', createdAt: undefined },
      );
    });

    void test('updating the access token keeps the refresh token unless a new one is given', async () => {
      const input = accountCredentials({ expiresInSeconds: 60 });
      const ref = await store.saveCredentials(input);
      const before = await store.getCredentials(ref);

      await store.updateAccessToken(ref, 'access-2', 1800);
      const afterFirst = await store.getCredentials(ref);
      assert.equal(afterFirst.accessToken, 'access-2');
      assert.equal(afterFirst.refreshToken, input.refreshToken);
      assert.ok(afterFirst.accessTokenExpiresAt! > before.accessTokenExpiresAt!);

      await store.updateAccessToken(ref, 'access-3', 1800, 'refresh-3');
      const afterSecond = await store.getCredentials(ref);
      assert.equal(afterSecond.accessToken, 'access-3');
      assert.equal(afterSecond.refreshToken, 'refresh-3');
    });

    void test('revocation is recorded once and unknown references are named errors', async () => {
      const ref = await store.saveCredentials(accountCredentials());
      await store.markRevoked(ref);
      const { revokedAt } = await store.describeCredentials(ref);
      assert.ok(revokedAt instanceof Date);
      await store.markRevoked(ref);
      assert.deepEqual((await store.describeCredentials(ref)).revokedAt, revokedAt);

      const missing = 'cred_doesnotexist';
      await assert.rejects(store.getCredentials(missing), CredentialNotFoundError);
      await assert.rejects(store.describeCredentials(missing), CredentialNotFoundError);
      await assert.rejects(store.updateAccessToken(missing, 'a', 60), CredentialNotFoundError);
      await assert.rejects(store.markRevoked(missing), CredentialNotFoundError);
    });

    void test('no row of any table holds a token or code in plaintext', async () => {
      const input = accountCredentials();
      const ref = await store.saveCredentials(input);
      await store.updateAccessToken(ref, `${input.accessToken}-refreshed`, 3600);
      const code = `code-PLAINTEXT-${randomBytes(6).toString('hex')}`;
      await store.putSecret('authorization_code', code, 600);
      const plaintexts = [input.accessToken, `${input.accessToken}-refreshed`, input.refreshToken!, code];

      const columns = await db.query<{ table_name: string; column_name: string }>(
        `SELECT table_name, column_name FROM information_schema.columns
         WHERE table_schema = current_schema()
           AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'bytea')`,
      );
      const scanned = new Set(columns.map((c) => `${c.table_name}.${c.column_name}`));
      for (const expected of [
        'credentials.access_token_enc',
        'credentials.refresh_token_enc',
        'secrets.value_enc',
      ]) {
        assert.ok(scanned.has(expected), `scan covers ${expected}`);
      }

      const find = async (needle: string) => {
        const hits: string[] = [];
        for (const { table_name: table, column_name: column } of columns) {
          const [row] = await db.query<{ hits: number }>(
            `SELECT count(*)::int AS hits FROM "${table}" WHERE strpos("${column}"::text, $1) > 0`,
            [needle],
          );
          if (row && row.hits > 0) hits.push(`${table}.${column}`);
        }
        return hits;
      };
      // The scan finds what is stored in the clear, so an empty result below means something.
      assert.deepEqual(await find(input.sub), ['credentials.sub']);
      for (const plaintext of plaintexts) assert.deepEqual(await find(plaintext), [], plaintext);
    });

    void test('a flipped byte in the ciphertext, tag or IV is detected', async () => {
      const ref = await store.saveCredentials(accountCredentials());
      const original = (await rawCredentialRow(ref)).access_token_enc;
      for (const part of [2, 3, 4] as const) {
        await db.query('UPDATE credentials SET access_token_enc = $2 WHERE ref = $1', [
          ref,
          flipByteIn(original, part),
        ]);
        await assert.rejects(store.getCredentials(ref), DecryptionError);
      }
      await db.query('UPDATE credentials SET access_token_enc = $2 WHERE ref = $1', [ref, original]);
      await store.getCredentials(ref);
    });

    void test('a ciphertext copied to another row or field does not decrypt', async () => {
      const a = await store.saveCredentials(accountCredentials());
      const b = await store.saveCredentials(accountCredentials());
      const rowA = await rawCredentialRow(a);

      await db.query('UPDATE credentials SET access_token_enc = $2 WHERE ref = $1', [
        b,
        rowA.access_token_enc,
      ]);
      await assert.rejects(store.getCredentials(b), DecryptionError);

      await db.query('UPDATE credentials SET refresh_token_enc = $2 WHERE ref = $1', [
        a,
        rowA.access_token_enc,
      ]);
      await assert.rejects(store.getCredentials(a), DecryptionError);

      const secret = await store.putSecret('authorization_code', 'code-1', 600);
      await db.query('UPDATE secrets SET value_enc = $2 WHERE ref = $1', [secret, rowA.access_token_enc]);
      await assert.rejects(store.readSecret(secret), DecryptionError);
    });

    void test('keys rotate: old rows read under "k2,k1", reencryptAll moves them to k2, then k1 can go', async () => {
      await db.query('DELETE FROM credentials');
      await db.query('DELETE FROM secrets');
      const underK1 = new CredentialStore(db, Keyring.parse(K1));
      const input = accountCredentials();
      const ref = await underK1.saveCredentials(input);
      const sa = await underK1.saveCredentials({
        kind: 'service_account',
        sub: 'ser_2',
        accessToken: 'sa-2',
      });
      const secret = await underK1.putSecret('authorization_code', 'code-rotated', 600);
      assert.match((await rawCredentialRow(ref)).access_token_enc, /^v1\.k1\./);

      const rotating = new CredentialStore(db, Keyring.parse(`${K2},${K1}`));
      assert.equal((await rotating.getCredentials(ref)).accessToken, input.accessToken);
      const fresh = await rotating.saveCredentials(accountCredentials());
      assert.match((await rawCredentialRow(fresh)).access_token_enc, /^v1\.k2\./);

      assert.equal(await rotating.reencryptAll(), 3);
      assert.equal(await rotating.reencryptAll(), 0);
      const rewrapped = await rawCredentialRow(ref);
      assert.match(rewrapped.access_token_enc, /^v1\.k2\./);
      assert.match(rewrapped.refresh_token_enc, /^v1\.k2\./);

      const onlyK2 = new CredentialStore(db, Keyring.parse(K2));
      const stored = await onlyK2.getCredentials(ref);
      assert.equal(stored.accessToken, input.accessToken);
      assert.equal(stored.refreshToken, input.refreshToken);
      assert.equal((await onlyK2.getCredentials(sa)).accessToken, 'sa-2');
      assert.equal(await onlyK2.readSecret(secret), 'code-rotated');

      await assert.rejects(underK1.getCredentials(ref), /key "k2" is not configured/);
    });

    void test('a state nonce is consumed once, even by concurrent callbacks, and can be released', async () => {
      const expiresAt = new Date(Date.now() + 600_000);
      const consume = async (nonce: string) => (await store.claimStateNonce(nonce, expiresAt)) !== undefined;
      const nonce = randomBytes(16).toString('base64url');
      assert.equal(await consume(nonce), true);
      assert.equal(await consume(nonce), false);
      assert.equal(await consume(nonce), false);

      await store.releaseStateNonce(nonce);
      assert.equal(await consume(nonce), true);

      const contested = randomBytes(16).toString('base64url');
      const results = await Promise.all(Array.from({ length: 20 }, () => consume(contested)));
      assert.equal(results.filter(Boolean).length, 1);
    });

    void test('a callback claims its nonce and stores its code in one statement, once', async () => {
      const expiresAt = new Date(Date.now() + 600_000);
      const code = { purpose: 'authorization_code', plaintext: 'code-claimed', ttlSeconds: 600 };
      const secretCount = async () =>
        (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM secrets'))[0]!.n;

      const nonce = randomBytes(16).toString('base64url');
      const first = await store.claimStateNonce(nonce, expiresAt, code);
      assert.match(first?.secretRef ?? '', /^sec_[A-Za-z0-9_-]{24}$/);
      assert.equal(await store.readSecret(first!.secretRef!), 'code-claimed');
      const before = await secretCount();
      assert.equal(await store.claimStateNonce(nonce, expiresAt, code), undefined);
      assert.equal(await secretCount(), before, 'a replay stores no second code');

      // No code (an error callback): the nonce is used all the same.
      const errorNonce = randomBytes(16).toString('base64url');
      assert.deepEqual(await store.claimStateNonce(errorNonce, expiresAt), {});
      assert.equal(await store.claimStateNonce(errorNonce, expiresAt, code), undefined);
      assert.equal(await secretCount(), before);

      const contested = randomBytes(16).toString('base64url');
      const claims = await Promise.all(
        Array.from({ length: 20 }, () => store.claimStateNonce(contested, expiresAt, code)),
      );
      assert.equal(claims.filter((claim) => claim !== undefined).length, 1);
      assert.equal(await secretCount(), before + 1, 'exactly one of 20 concurrent claims stored its code');
      await assert.rejects(
        store.claimStateNonce(randomBytes(16).toString('base64url'), expiresAt, { ...code, ttlSeconds: 0 }),
        RangeError,
      );
    });

    void test('one batch of different claims answers each its own; two stores racing on the same nonces agree', async () => {
      const expiresAt = new Date(Date.now() + 600_000);
      const code = (plaintext: string) => ({ purpose: 'authorization_code', plaintext, ttlSeconds: 600 });
      const nonce = () => randomBytes(16).toString('base64url');
      const used = nonce();
      await store.claimStateNonce(used, expiresAt);
      const [a, b, c] = [nonce(), nonce(), nonce()];
      // The first claim leaves alone; the other four share the next statement.
      const [first, withCode, withoutCode, replay, another] = await Promise.all([
        store.claimStateNonce(nonce(), expiresAt),
        store.claimStateNonce(a, expiresAt, code('code-a')),
        store.claimStateNonce(b, expiresAt),
        store.claimStateNonce(used, expiresAt, code('code-replayed')),
        store.claimStateNonce(c, expiresAt, code('code-c')),
      ]);
      assert.deepEqual(first, {});
      assert.equal(await store.readSecret(withCode!.secretRef!), 'code-a');
      assert.deepEqual(withoutCode, {});
      assert.equal(replay, undefined);
      assert.equal(await store.readSecret(another!.secretRef!), 'code-c');

      // Two callback servers: two stores, each batching, claiming the same nonces in opposite orders.
      const other = new CredentialStore(db, Keyring.parse(K1));
      const contested = Array.from({ length: 30 }, nonce);
      const results = await Promise.all([
        ...contested.map((n) => store.claimStateNonce(n, expiresAt, code(`one-${n}`))),
        ...[...contested].reverse().map((n) => other.claimStateNonce(n, expiresAt, code(`two-${n}`))),
      ]);
      assert.equal(results.filter((claim) => claim !== undefined).length, contested.length);
      for (const claim of results.filter((r) => r !== undefined)) {
        assert.match(await store.readSecret(claim.secretRef!), /^(one|two)-/);
      }
    });

    void test('a secret is readable repeatedly until it expires or is deleted', async () => {
      const ref = await store.putSecret('authorization_code', 'code-ttl', 0.5);
      assert.match(ref, /^sec_[A-Za-z0-9_-]{24}$/);
      assert.equal(await store.readSecret(ref), 'code-ttl');
      assert.equal(await store.readSecret(ref), 'code-ttl');
      await sleep(700);
      await assert.rejects(store.readSecret(ref), SecretNotFoundError);

      const kept = await store.putSecret('authorization_code', 'code-kept', 600);
      await store.deleteSecret(kept);
      await store.deleteSecret(kept);
      await assert.rejects(store.readSecret(kept), SecretNotFoundError);
      await assert.rejects(store.putSecret('authorization_code', 'x', 0), RangeError);
    });

    void test('reopening keeps the data and does not reapply migrations', async () => {
      const input = accountCredentials();
      const ref = await store.saveCredentials(input);
      await db.close();

      db = await openDatabase(await backend.url());
      store = new CredentialStore(db, Keyring.parse(K1));
      assert.equal((await store.getCredentials(ref)).accessToken, input.accessToken);
      const applied = await db.query<{ version: number }>(
        'SELECT version FROM schema_migrations ORDER BY version',
      );
      assert.deepEqual(
        applied.map((row) => row.version),
        migrations.map((m) => m.version),
      );
    });
  });
}

void describe('concurrent migrations on PostgreSQL', () => {
  void test('several processes opening an empty database at once all succeed and migrate once', async () => {
    const scratch = await createScratchDatabase(postgresUrl, 'store_test');
    try {
      const opened = await Promise.all(Array.from({ length: 6 }, () => openDatabase(scratch.url)));
      const [first] = opened;
      assert.ok(first);
      const applied = await first.query<{ version: number }>(
        'SELECT version FROM schema_migrations ORDER BY version',
      );
      assert.deepEqual(
        applied.map((row) => row.version),
        migrations.map((m) => m.version),
      );
      const store = new CredentialStore(first, Keyring.parse(K1));
      const ref = await store.saveCredentials(accountCredentials({ accessToken: 'after-race' }));
      assert.equal((await store.getCredentials(ref)).accessToken, 'after-race');
      await Promise.all(opened.map((db) => db.close()));
    } finally {
      await scratch.drop();
    }
  });
});

void describe('keyring', () => {
  void test('encrypts with the active key and decrypts with any configured key', () => {
    const rotating = Keyring.parse(`${K2}, ${K1}`);
    assert.equal(rotating.activeKeyId, 'k2');
    const envelope = Keyring.parse(K1).encrypt('hello', 'here');
    assert.match(envelope, /^v1\.k1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]+$/);
    assert.equal(rotating.decrypt(envelope, 'here'), 'hello');
    assert.throws(() => rotating.decrypt(envelope, 'elsewhere'), DecryptionError);
    assert.notEqual(rotating.encrypt('hello', 'here'), rotating.encrypt('hello', 'here'));
  });

  void test('rejects malformed envelopes', () => {
    const keyring = Keyring.parse(K1);
    const envelope = keyring.encrypt('hello', 'here');
    for (const bad of [
      '',
      'garbage',
      envelope.replace(/^v1/, 'v2'),
      `${envelope}.extra`,
      envelope.slice(0, -40),
    ]) {
      assert.throws(() => keyring.decrypt(bad, 'here'), DecryptionError, bad);
    }
  });

  void test('bad key specs throw errors that name the entry and never print key material', () => {
    const material = randomBytes(32).toString('base64');
    const short = randomBytes(31).toString('base64');
    const long = randomBytes(33).toString('base64');
    const cases: Array<[spec: string, message: RegExp, secret?: string]> = [
      ['', /empty/],
      ['   ', /empty/],
      [material, /entry #1 is not of the form/, material],
      [`k1:${short}`, /entry #1 \("k1"\) decodes to 31 bytes/, short],
      [`k1:${material},k2:${long}`, /entry #2 \("k2"\) decodes to 33 bytes/, long],
      [`k1:${material},k1:${material}`, /entry #2 \("k1"\) repeats a key id/, material],
      [`k1:${material.slice(0, -4)}!!!!`, /entry #1 \("k1"\) is not valid base64/, material.slice(0, -4)],
      [`k.1:${material}`, /entry #1 has an invalid key id/, material],
      [`k1:${material},`, /entry #2 is not of the form/, material],
    ];
    for (const [spec, message, secret] of cases) {
      assert.throws(
        () => Keyring.parse(spec),
        (error: unknown) => {
          assert.ok(error instanceof InvalidKeySpecError);
          assert.match(error.message, message);
          if (secret) assert.equal(error.message.includes(secret), false, 'message leaks key material');
          return true;
        },
      );
    }
  });

  void test('generated specs parse and hold a fresh 32-byte key', () => {
    const spec = Keyring.generateSpec('dev');
    assert.equal(Keyring.parse(spec).activeKeyId, 'dev');
    assert.equal(Buffer.from(spec.slice('dev:'.length), 'base64').length, 32);
    assert.notEqual(Keyring.generateSpec(), Keyring.generateSpec());
    assert.equal(Keyring.parse(Keyring.generateSpec()).activeKeyId, 'k1');
  });
});

void describe('opening by URL', () => {
  void test('memory: opens a migrated in-memory database', async () => {
    const db = await openDatabase('memory:');
    try {
      const store = new CredentialStore(db, Keyring.parse(K1));
      const ref = await store.saveCredentials(accountCredentials({ accessToken: 'in-memory' }));
      assert.equal((await store.getCredentials(ref)).accessToken, 'in-memory');
    } finally {
      await db.close();
    }
  });
});
