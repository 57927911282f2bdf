/**
 * The service's Temporal connection options against a TLS endpoint that requires a client certificate, as Temporal
 * Cloud's mTLS namespaces do: a TLS terminator on loopback (our own CA, `requestCert`) in front of a real dev
 * server. The client and a worker connected through `connectTemporal` run a workflow; without a client
 * certificate, or with one from another CA, the connection is refused.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { startTemporalServer } from '../harness/temporalServer.js';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { parseConfig, type Config } from '../src/config.js';
import { connectTemporal } from '../src/services.js';
import { temporalConnectionOptions } from '../src/temporalConnection.js';
import { echo } from './fixtures/codecWorkflow.js';
import { TEST_PAYLOAD_ENCRYPTION_KEYS, testPayloadEncryption } from '../harness/stack.js';
import { assertHistoryHoldsNoSecrets } from '../harness/histories.js';

const SERVER_NAME = 'temporal.test';

let directory: string;
let env: TestWorkflowEnvironment;
let terminator: Server;
let tlsAddress: string;
const file = (name: string) => join(directory, name);

before(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  directory = mkdtempSync(join(tmpdir(), 'temporal-tls-'));
  makeCertificates();
  env = await startTemporalServer();
  const [host, port] = env.address.split(':') as [string, string];
  // Terminates TLS (client certificate required) and passes the HTTP/2 stream on to the dev server.
  terminator = createServer(
    {
      key: readFileSync(file('server.key')),
      cert: readFileSync(file('server.crt')),
      ca: readFileSync(file('ca.crt')),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    },
    (socket) => {
      const upstream = connect(Number(port), host);
      socket.pipe(upstream).pipe(socket);
      const close = () => {
        socket.destroy();
        upstream.destroy();
      };
      socket.on('error', close);
      upstream.on('error', close);
    },
  );
  terminator.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => terminator.listen(0, '127.0.0.1', resolve));
  tlsAddress = `127.0.0.1:${(terminator.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise((resolve) => terminator?.close(resolve));
  await env?.teardown();
  if (directory) rmSync(directory, { recursive: true, force: true });
});

function config(overrides: Record<string, string>): Config {
  return parseConfig({
    STATE_SIGNING_SECRET: 'x'.repeat(32),
    CREDENTIAL_KEYS: TEST_PAYLOAD_ENCRYPTION_KEYS,
    PAYLOAD_ENCRYPTION_KEYS: TEST_PAYLOAD_ENCRYPTION_KEYS,
    CODEC_SERVER_TOKEN: 't'.repeat(16),
    TEMPORAL_ADDRESS: tlsAddress,
    TEMPORAL_TLS_CA_PATH: file('ca.crt'),
    TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
    ...overrides,
  });
}

test('with a client certificate from the trusted CA, the client and a worker run a workflow over mTLS', async () => {
  const { dataConverter } = testPayloadEncryption();
  const temporal = await connectTemporal(
    config({ TEMPORAL_TLS_CERT_PATH: file('client.crt'), TEMPORAL_TLS_KEY_PATH: file('client.key') }),
    dataConverter,
  );
  try {
    const taskQueue = `tls-${randomUUID()}`;
    const workflowId = `tls-${randomUUID()}`;
    const worker = await Worker.create({
      connection: temporal.connection,
      taskQueue,
      workflowsPath: fileURLToPath(new URL('./fixtures/codecWorkflow.ts', import.meta.url)),
      dataConverter,
    });
    const result = await worker.runUntil(
      temporal.client.workflow.execute(echo, {
        args: ['over mTLS'],
        taskQueue,
        workflowId,
      }),
    );
    assert.equal(result, 'over mTLS');
    await assertHistoryHoldsNoSecrets({ env }, [workflowId], { plaintexts: ['over mTLS'] });
  } finally {
    await temporal.close();
  }
});

test('without a client certificate, or with one from another CA, the connection is refused', async () => {
  const { dataConverter } = testPayloadEncryption();
  const attempts = [
    config({ TEMPORAL_TLS: 'true' }),
    config({ TEMPORAL_TLS_CERT_PATH: file('rogue.crt'), TEMPORAL_TLS_KEY_PATH: file('rogue.key') }),
  ];
  for (const attempt of attempts) {
    await assert.rejects(
      withTimeout(
        connectTemporal(attempt, dataConverter).then((temporal) =>
          temporal.client.workflowService.getSystemInfo({}).finally(() => temporal.close()),
        ),
        20_000,
      ),
      (error: Error) => !error.message.startsWith('no answer in'),
      'refused by the TLS handshake, not timed out',
    );
  }
});

test('an API key turns TLS on and travels with the namespace header; unreadable files name their variable', () => {
  const withKey = temporalConnectionOptions(
    config({ TEMPORAL_API_KEY: 'cloud-api-key', TEMPORAL_NAMESPACE: 'downgrades.a1b2c' }),
  );
  assert.equal(withKey.apiKey, 'cloud-api-key');
  assert.deepEqual(withKey.metadata, { 'temporal-namespace': 'downgrades.a1b2c' });
  assert.ok(withKey.tls && withKey.tls.serverNameOverride === SERVER_NAME);

  const plain = temporalConnectionOptions(config({ TEMPORAL_TLS_CA_PATH: '', TEMPORAL_TLS_SERVER_NAME: '' }));
  assert.equal(plain.tls, false, 'no TLS unless asked for');

  assert.throws(
    () =>
      temporalConnectionOptions(config({ TEMPORAL_TLS_CA_PATH: file('missing.crt'), TEMPORAL_TLS: 'true' })),
    /TEMPORAL_TLS_CA_PATH: cannot read .*missing\.crt \(ENOENT\)/,
  );
  assert.throws(
    () => config({ TEMPORAL_TLS_CERT_PATH: file('client.crt') }),
    /TEMPORAL_TLS_KEY_PATH: required/,
  );
  assert.throws(
    () => config({ TEMPORAL_TLS: 'false', TEMPORAL_API_KEY: 'cloud-api-key' }),
    /TEMPORAL_TLS: false cannot be combined/,
  );
});

/** A CA, the server's certificate for SERVER_NAME, a client certificate it signed, and a rogue self-signed one. */
function makeCertificates() {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: directory, stdio: 'pipe' });
  const key = (name: string) =>
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', name);
  key('ca.key');
  openssl('req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=Test CA', '-days', '2', '-out', 'ca.crt');
  const signed = (name: string, subject: string, extensions: string) => {
    key(`${name}.key`);
    openssl('req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`);
    writeFileSync(file(`${name}.ext`), extensions);
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.crt`,
    );
  };
  signed('server', `/CN=${SERVER_NAME}`, `subjectAltName=DNS:${SERVER_NAME}\nextendedKeyUsage=serverAuth\n`);
  signed('client', '/CN=downgrade-worker', 'extendedKeyUsage=clientAuth\n');
  key('rogue.key');
  openssl(
    'req',
    '-x509',
    '-new',
    '-key',
    'rogue.key',
    '-subj',
    '/CN=rogue',
    '-days',
    '2',
    '-out',
    'rogue.crt',
  );
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms).unref(),
    ),
  ]);
}
