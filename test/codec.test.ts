import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import proto from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { startTemporalServer } from '../harness/temporalServer.js';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import got from 'got';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { z } from 'zod';
import { startCodecServer, type RunningCodecServer } from '../src/codec/codecServer.js';
import { EncryptionCodec, PayloadDecryptionError } from '../src/codec/encryptionCodec.js';
import { InvalidKeySpecError, Keyring } from '../src/store/encryption.js';
import { echo } from './fixtures/codecWorkflow.js';

const { temporal } = proto;
const K1 = Keyring.generateSpec('k1');
const K2 = Keyring.generateSpec('k2');
const TOKEN = randomBytes(24).toString('base64url');
const UI_ORIGIN = 'http://127.0.0.1:8233';

function secretValue(): string {
  return `secret-${randomUUID()}`;
}

function metadataText(payload: Payload, name: string): string | undefined {
  const value = payload.metadata?.[name];
  return value ? Buffer.from(value).toString('utf8') : undefined;
}

type SigningKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
const b64 = (text: string) => Buffer.from(text).toString('base64');
const b64url = (text: string) => Buffer.from(text).toString('base64url');

function serialized(payload: Payload): Buffer {
  return Buffer.from(temporal.api.common.v1.Payload.encode(payload).finish());
}

describe('EncryptionCodec', () => {
  test('payloads round-trip through encode and decode unchanged', async () => {
    const codec = EncryptionCodec.fromSpec(K1);
    const originals = [
      defaultPayloadConverter.toPayload({ token: secretValue() }),
      defaultPayloadConverter.toPayload(null),
    ];
    const decoded = await codec.decode(await codec.encode(originals));
    assert.deepEqual(decoded.map(serialized), originals.map(serialized));
    assert.deepEqual(
      decoded.map((payload) => defaultPayloadConverter.fromPayload(payload)),
      originals.map((payload) => defaultPayloadConverter.fromPayload(payload)),
    );
  });

  test('an encoded payload carries only ciphertext and the key id, never the plaintext or its metadata', async () => {
    const codec = EncryptionCodec.fromSpec(K1);
    const secret = secretValue();
    const [encoded] = await codec.encode([defaultPayloadConverter.toPayload(secret)]);
    assert.ok(encoded);
    assert.deepEqual(Object.keys(encoded.metadata ?? {}).sort(), ['encoding', 'encryption-key-id']);
    assert.equal(metadataText(encoded, 'encoding'), 'binary/encrypted');
    assert.equal(metadataText(encoded, 'encryption-key-id'), 'k1');
    const whole = serialized(encoded);
    assert.equal(whole.includes(Buffer.from(secret)), false);
    assert.equal(whole.includes(Buffer.from('json/plain')), false);
    // iv(12) | ciphertext | tag(16), ciphertext as long as the serialized original
    assert.equal(
      encoded.data?.length,
      12 + serialized(defaultPayloadConverter.toPayload(secret)).length + 16,
    );
  });

  test('the same payload encrypts differently each time (fresh IV)', async () => {
    const codec = EncryptionCodec.fromSpec(K1);
    const payload = defaultPayloadConverter.toPayload('same');
    const [first, second] = await codec.encode([payload, payload]);
    assert.notDeepEqual(Buffer.from(first?.data ?? []), Buffer.from(second?.data ?? []));
  });

  test('a tampered payload fails to decode', async () => {
    const codec = EncryptionCodec.fromSpec(K1);
    const [encoded] = await codec.encode([defaultPayloadConverter.toPayload(secretValue())]);
    assert.ok(encoded?.data);
    for (const index of [0, 20, encoded.data.length - 1]) {
      const data = Buffer.from(encoded.data);
      data[index] = (data[index] ?? 0) ^ 0x01;
      await assert.rejects(codec.decode([{ ...encoded, data }]), (error: unknown) => {
        assert.ok(error instanceof PayloadDecryptionError);
        assert.match(error.message, /failed authentication/);
        return true;
      });
    }
    await assert.rejects(codec.decode([{ ...encoded, data: encoded.data.subarray(0, 20) }]), /too short/);
  });

  test('payloads that were never encrypted pass through decode unchanged', async () => {
    const codec = EncryptionCodec.fromSpec(K1);
    const plain = defaultPayloadConverter.toPayload({ legacy: true });
    const [decoded] = await codec.decode([plain]);
    assert.equal(decoded, plain);
  });

  test('after rotation, old payloads still decode and new ones use the new key', async () => {
    const before = EncryptionCodec.fromSpec(K1);
    const rotated = EncryptionCodec.fromSpec(`${K2},${K1}`);
    const old = await before.encode([defaultPayloadConverter.toPayload('written under k1')]);
    assert.equal(defaultPayloadConverter.fromPayload((await rotated.decode(old))[0]!), 'written under k1');

    const fresh = await rotated.encode([defaultPayloadConverter.toPayload('written under k2')]);
    assert.equal(metadataText(fresh[0]!, 'encryption-key-id'), 'k2');
    assert.equal(defaultPayloadConverter.fromPayload((await rotated.decode(fresh))[0]!), 'written under k2');
  });

  test('a payload under a key that is not configured fails with an error naming the key id', async () => {
    const newer = EncryptionCodec.fromSpec(`${K2},${K1}`);
    const encoded = await newer.encode([defaultPayloadConverter.toPayload('x')]);
    await assert.rejects(EncryptionCodec.fromSpec(K1).decode(encoded), (error: unknown) => {
      assert.ok(error instanceof PayloadDecryptionError);
      assert.match(error.message, /key "k2", which is not configured/);
      return true;
    });
  });

  test('bad key specs are refused with the bad entry named and no key material shown', () => {
    const shortKey = randomBytes(16).toString('base64');
    const cases: Array<[string, RegExp]> = [
      ['', /empty/],
      ['k1', /entry #1 is not of the form/],
      [`${K1},k2:${shortKey}`, /entry #2 \("k2"\) decodes to 16 bytes/],
      [`${K1},k2:not base64!`, /entry #2 \("k2"\) is not valid base64/],
      [`${K1},${K1}`, /entry #2 \("k1"\) repeats a key id/],
      [`bad id!:${randomBytes(32).toString('base64')}`, /entry #1 has an invalid key id/],
    ];
    for (const [spec, message] of cases) {
      assert.throws(
        () => EncryptionCodec.fromSpec(spec),
        (error: unknown) => {
          assert.ok(error instanceof InvalidKeySpecError, spec);
          assert.match(error.message, message);
          assert.equal(error.message.includes(shortKey), false);
          assert.equal(error.message.includes(K1.split(':')[1]!), false);
          return true;
        },
      );
    }
  });
});

const JsonPayloads = z.object({
  payloads: z.array(z.object({ metadata: z.record(z.string(), z.string()), data: z.string() })),
});

function toJson(payload: Payload) {
  return {
    metadata: Object.fromEntries(
      Object.entries(payload.metadata ?? {}).map(([key, value]) => [
        key,
        Buffer.from(value ?? []).toString('base64'),
      ]),
    ),
    data: Buffer.from(payload.data ?? []).toString('base64'),
  };
}

function fromJson(payload: { metadata: Record<string, string>; data: string }): Payload {
  return {
    metadata: Object.fromEntries(
      Object.entries(payload.metadata).map(([key, value]) => [key, Buffer.from(value, 'base64')]),
    ),
    data: Buffer.from(payload.data, 'base64'),
  };
}

describe('codec server', () => {
  const codec = EncryptionCodec.fromSpec(K1);
  let server: RunningCodecServer;

  before(async () => {
    server = await startCodecServer({
      codec,
      token: TOKEN,
      allowedOrigin: UI_ORIGIN,
      host: '127.0.0.1',
      port: 0,
    });
  });
  after(() => server.close());

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    got.post(`${server.url}${path}`, {
      json: body,
      headers: { 'x-namespace': 'default', ...headers },
      throwHttpErrors: false,
      retry: { limit: 0 },
    });

  async function encryptedBody(secret: string) {
    return { payloads: (await codec.encode([defaultPayloadConverter.toPayload(secret)])).map(toJson) };
  }

  test('a request without the token, or with a wrong one, gets 401 and nothing decoded', async () => {
    const secret = secretValue();
    const body = await encryptedBody(secret);
    const attempts: Array<Record<string, string>> = [
      {},
      { authorization: 'Bearer wrong-token-0123456789' },
      { authorization: `Bearer ${TOKEN}x` },
      { authorization: TOKEN },
      { authorization: `Basic ${TOKEN}` },
    ];
    for (const headers of attempts) {
      const response = await post('/decode', body, headers);
      assert.equal(response.statusCode, 401, JSON.stringify(headers));
      assert.equal(response.body.includes(secret), false);
      assert.equal(response.body.includes(Buffer.from(JSON.stringify(secret)).toString('base64')), false);
      assert.equal(response.body.includes('payloads'), false);
    }
  });

  test('with the token, /decode answers the decoded payloads in the remote-codec JSON shape', async () => {
    const secret = secretValue();
    const response = await post('/decode', await encryptedBody(secret), { authorization: `Bearer ${TOKEN}` });
    assert.equal(response.statusCode, 200);
    assert.match(response.headers['content-type'] ?? '', /application\/json/);
    const { payloads } = JsonPayloads.parse(JSON.parse(response.body));
    assert.equal(payloads.length, 1);
    assert.equal(Buffer.from(payloads[0]!.metadata.encoding!, 'base64').toString(), 'json/plain');
    assert.equal(defaultPayloadConverter.fromPayload(fromJson(payloads[0]!)), secret);
  });

  test('/encode encrypts, and a namespace-prefixed endpoint (CLI templating) works the same', async () => {
    const secret = secretValue();
    const encodeResponse = await post(
      '/default/encode',
      { payloads: [toJson(defaultPayloadConverter.toPayload(secret))] },
      { authorization: `Bearer ${TOKEN}` },
    );
    assert.equal(encodeResponse.statusCode, 200);
    const encoded = JsonPayloads.parse(JSON.parse(encodeResponse.body)).payloads.map(fromJson);
    assert.equal(metadataText(encoded[0]!, 'encoding'), 'binary/encrypted');
    assert.equal(encodeResponse.body.includes(secret), false);
    assert.equal(defaultPayloadConverter.fromPayload((await codec.decode(encoded))[0]!), secret);
  });

  test('a malformed body or an undecodable payload gets 400', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    assert.equal((await post('/decode', { payload: [] }, auth)).statusCode, 400);
    assert.equal((await post('/decode', { payloads: [{ data: 'not base64!' }] }, auth)).statusCode, 400);
    const foreign = await EncryptionCodec.fromSpec(K2).encode([defaultPayloadConverter.toPayload('x')]);
    const response = await post('/decode', { payloads: foreign.map(toJson) }, auth);
    assert.equal(response.statusCode, 400);
    assert.match(response.body, /key \\"k2\\"/);
    assert.equal((await post('/elsewhere', { payloads: [] }, auth)).statusCode, 404);
  });

  test('a CORS preflight from the Temporal UI origin is answered without the token', async () => {
    const response = await got(`${server.url}/decode`, {
      method: 'OPTIONS',
      headers: {
        origin: UI_ORIGIN,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,x-namespace,authorization',
      },
      throwHttpErrors: false,
    });
    assert.equal(response.statusCode, 204);
    assert.equal(response.headers['access-control-allow-origin'], UI_ORIGIN);
    assert.equal(response.headers['access-control-allow-credentials'], 'true');
    assert.equal(response.headers['access-control-allow-methods'], 'POST, OPTIONS');
    assert.equal(
      response.headers['access-control-allow-headers'],
      'content-type, x-namespace, authorization',
    );

    const decoded = await post('/decode', await encryptedBody('x'), {
      authorization: `Bearer ${TOKEN}`,
      origin: UI_ORIGIN,
    });
    assert.equal(decoded.headers['access-control-allow-origin'], UI_ORIGIN);
  });

  test('another origin gets no CORS allow headers, on preflight or on an authorized request', async () => {
    const other = 'http://evil.example';
    const preflight = await got(`${server.url}/decode`, {
      method: 'OPTIONS',
      headers: { origin: other, 'access-control-request-method': 'POST' },
      throwHttpErrors: false,
    });
    assert.equal(preflight.headers['access-control-allow-origin'], undefined);
    assert.equal(preflight.headers['access-control-allow-credentials'], undefined);
    assert.equal(preflight.headers['access-control-allow-headers'], undefined);

    const response = await post('/decode', await encryptedBody('x'), {
      authorization: `Bearer ${TOKEN}`,
      origin: other,
    });
    assert.equal(response.headers['access-control-allow-origin'], undefined);
  });

  test('only with trustAllowedOrigin (local development) does the UI origin decode without the token', async () => {
    const secret = secretValue();
    const body = await encryptedBody(secret);
    const refused = await post('/decode', body, { origin: UI_ORIGIN });
    assert.equal(refused.statusCode, 401, 'off by default');

    const dev = await startCodecServer({
      codec,
      token: TOKEN,
      allowedOrigin: UI_ORIGIN,
      trustAllowedOrigin: true,
      host: '127.0.0.1',
      port: 0,
    });
    try {
      const send = (headers: Record<string, string>) =>
        got.post(`${dev.url}/decode`, { json: body, headers, throwHttpErrors: false, retry: { limit: 0 } });
      const fromUi = await send({ origin: UI_ORIGIN });
      assert.equal(fromUi.statusCode, 200);
      assert.ok(fromUi.body.includes(Buffer.from(JSON.stringify(secret)).toString('base64')));
      assert.equal((await send({ origin: 'http://evil.example' })).statusCode, 401);
      assert.equal((await send({})).statusCode, 401);
    } finally {
      await dev.close();
    }
  });

  test('a body over the size limit is refused', async () => {
    const small = await startCodecServer({
      codec,
      token: TOKEN,
      allowedOrigin: UI_ORIGIN,
      host: '127.0.0.1',
      port: 0,
      bodyLimit: 1024,
    });
    try {
      const response = await got.post(`${small.url}/decode`, {
        json: { payloads: [{ data: Buffer.alloc(2048).toString('base64') }] },
        headers: { authorization: `Bearer ${TOKEN}` },
        throwHttpErrors: false,
      });
      assert.equal(response.statusCode, 413);
    } finally {
      await small.close();
    }
  });
});

describe("codec server with the Temporal UI's forwarded OIDC access token", () => {
  const codec = EncryptionCodec.fromSpec(K1);
  const AUDIENCE = 'temporal-ui';
  let issuer: string;
  let idp: Server;
  let server: RunningCodecServer;
  let signingKey: SigningKey;
  let discoveryRequests = 0;

  before(async () => {
    // The identity provider, on a real socket: OIDC discovery and its JWKS.
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    signingKey = privateKey;
    const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'idp-key-1', alg: 'RS256', use: 'sig' }] };
    idp = createServer((request, response) => {
      const json = (body: unknown) =>
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (request.url === '/.well-known/openid-configuration') {
        discoveryRequests += 1;
        json({ issuer, jwks_uri: `${issuer}/jwks.json` });
      } else if (request.url === '/jwks.json') json(jwks);
      else response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => idp.listen(0, '127.0.0.1', resolve));
    issuer = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;
    server = await startCodecServer({
      codec,
      token: TOKEN,
      allowedOrigin: UI_ORIGIN,
      oidc: { issuer, audience: AUDIENCE },
      host: '127.0.0.1',
      port: 0,
    });
  });
  after(async () => {
    await server?.close();
    await new Promise((resolve) => idp?.close(resolve));
  });

  const accessToken = (
    claims: { iss?: string; aud?: string; exp?: string | number } = {},
    key: SigningKey = signingKey,
  ) =>
    new SignJWT({ scope: 'openid email' })
      .setProtectedHeader({ alg: 'RS256', kid: 'idp-key-1' })
      .setSubject('operator@example.org')
      .setIssuer(claims.iss ?? issuer)
      .setAudience(claims.aud ?? AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(claims.exp ?? '5m')
      .sign(key);

  const decodeWith = async (token: string) => {
    const secret = secretValue();
    const response = await got.post(`${server.url}/decode`, {
      json: { payloads: (await codec.encode([defaultPayloadConverter.toPayload(secret)])).map(toJson) },
      headers: { authorization: `Bearer ${token}`, origin: UI_ORIGIN },
      throwHttpErrors: false,
      retry: { limit: 0 },
    });
    return { status: response.statusCode, decoded: response.body.includes(b64(JSON.stringify(secret))) };
  };

  test("an operator's valid access token from the issuer decodes", async () => {
    assert.deepEqual(await decodeWith(await accessToken()), { status: 200, decoded: true });
    assert.deepEqual(await decodeWith(await accessToken()), { status: 200, decoded: true });
    assert.equal(discoveryRequests, 1, 'discovery and keys are fetched once, then cached');
  });

  test('expired, wrong-audience, wrong-issuer, foreign-key and unsigned tokens get 401', async () => {
    const { privateKey: foreignKey } = await generateKeyPair('RS256');
    const unsigned = `${b64url('{"alg":"none"}')}.${b64url(JSON.stringify({ iss: issuer, aud: AUDIENCE, exp: 9e9 }))}.`;
    const refused = [
      await accessToken({ exp: Math.floor(Date.now() / 1000) - 60 }),
      await accessToken({ aud: 'another-api' }),
      await accessToken({ iss: 'http://127.0.0.1:1/other-issuer' }),
      await accessToken({}, foreignKey),
      unsigned,
      'not-a-jwt',
    ];
    for (const token of refused) {
      assert.deepEqual(await decodeWith(token), { status: 401, decoded: false });
    }
  });
});

describe('on a real Temporal server', () => {
  const codec = EncryptionCodec.fromSpec(`${K2},${K1}`);
  const dataConverter = { payloadCodecs: [codec] };
  let env: TestWorkflowEnvironment;

  before(async () => {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    env = await startTemporalServer({ client: { dataConverter } });
  });
  after(() => env?.teardown());

  test('workflow input and result are stored encrypted, and come back decoded to the client and codec server', async () => {
    const taskQueue = `codec-${randomUUID()}`;
    const secret = secretValue();
    const workflowId = `codec-echo-${randomUUID()}`;
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowsPath: fileURLToPath(new URL('./fixtures/codecWorkflow.ts', import.meta.url)),
      dataConverter,
    });
    const result = await worker.runUntil(async () => {
      const handle = await env.client.workflow.start(echo, { args: [secret], taskQueue, workflowId });
      return handle.result();
    });
    assert.equal(result, secret);

    const response = await env.client.workflowService.getWorkflowExecutionHistory({
      namespace: 'default',
      execution: { workflowId },
    });
    const raw = Buffer.from(
      temporal.api.workflowservice.v1.GetWorkflowExecutionHistoryResponse.encode(response).finish(),
    );
    assert.ok(raw.includes(Buffer.from('binary/encrypted')), 'history holds encrypted payloads');
    assert.equal(raw.includes(Buffer.from(secret)), false, 'the input appears in history in plaintext');
    assert.equal(raw.includes(Buffer.from(secret).toString('base64')), false);

    const started = response.history?.events?.[0]?.workflowExecutionStartedEventAttributes;
    const input = started?.input?.payloads ?? [];
    assert.equal(input.length, 1);
    const server = await startCodecServer({
      codec,
      token: TOKEN,
      allowedOrigin: UI_ORIGIN,
      host: '127.0.0.1',
      port: 0,
    });
    try {
      const decoded = await got
        .post(`${server.url}/decode`, {
          json: { payloads: input.map(toJson) },
          headers: { authorization: `Bearer ${TOKEN}`, 'x-namespace': 'default' },
        })
        .json();
      const { payloads } = JsonPayloads.parse(decoded);
      assert.equal(defaultPayloadConverter.fromPayload(fromJson(payloads[0]!)), secret);
    } finally {
      await server.close();
    }
  });
});
