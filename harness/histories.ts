import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import proto from '@temporalio/proto';
import type { DataConverter } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { z } from 'zod';
import { workflowSinks } from '../src/worker.js';
import { testWorkflowBundle } from './workflowBundle.js';
import { ENCRYPTED_ENCODING } from '../src/codec/encryptionCodec.js';
import { simulatorGet, testPayloadEncryption, type Stack } from './stack.js';

/** What the checks read: the Temporal server (through `env.client`) and, if one ran, the simulator. */
export type HistorySource = Pick<Stack, 'env'> & { simulator?: Stack['simulator'] };

const { temporal } = proto;
type History = proto.temporal.api.history.v1.IHistory;

/** The simulator's `/_sim/issued-secrets`: every code and token it ever handed out. */
export const IssuedSecrets = z.object({
  codes: z.array(z.string()),
  access_tokens: z.array(z.string()),
  refresh_tokens: z.array(z.string()),
});

/** A workflow's latest run, or one run of it. */
export type Execution = string | { workflowId: string; runId?: string };

/**
 * The payloads Temporal itself must read, so no codec touches them: search attributes (the server indexes them),
 * the OpenTelemetry trace context the SDK's interceptors put in headers, and the SDK's own bookkeeping in the two
 * markers it records: a patch's id (`core_patch`'s `patch-data`) and a local activity's sequence number, type and
 * times (`core_local_activity`'s `data`). A local activity's result is its marker's `result`, encrypted like any
 * other; any other marker's payloads are too.
 */
const PLAINTEXT_BY_DESIGN = new RegExp(
  [
    String.raw`\.searchAttributes\.indexedFields\.[A-Za-z0-9_]+$`,
    String.raw`\.header\.fields\._tracer-data$`,
    String.raw`\.markerRecordedEventAttributes\[core_patch\]\.details\.patch-data\.payloads$`,
    String.raw`\.markerRecordedEventAttributes\[core_local_activity\]\.details\.data\.payloads$`,
  ].join('|'),
);

/**
 * Reads each run's history as the server stores it (the raw protobuf, payloads included) and checks that its
 * payloads are encrypted: every payload is `binary/encrypted` except those Temporal must read (PLAINTEXT_BY_DESIGN),
 * and the bytes hold none of the codes and tokens the simulator ever issued (when a simulator ran), none of
 * `plaintexts` (the test's emails, say) and no JSON naming a `"sub"` or a `"userId"`.
 */
export async function assertHistoryHoldsNoSecrets(
  source: HistorySource,
  executions: Execution[],
  options: { plaintexts?: string[] } = {},
): Promise<void> {
  const secrets: string[] = [];
  if (source.simulator) {
    const issued = await simulatorGet({ simulator: source.simulator }, '/_sim/issued-secrets', IssuedSecrets);
    assert.ok(
      issued.codes.length > 0 && issued.refresh_tokens.length > 0,
      'the runs issued codes and tokens',
    );
    secrets.push(...issued.codes, ...issued.access_tokens, ...issued.refresh_tokens);
  }
  assert.ok(executions.length > 0, 'there are histories to check');
  for (const execution of executions) {
    const { workflowId, runId } = typeof execution === 'string' ? { workflowId: execution } : execution;
    const { bytes: raw, pages } = await rawHistoryPages(source, workflowId, runId);
    assert.ok(raw.length > 0);
    const payloads = [...payloadsIn(pages)];
    assert.deepEqual(
      payloads.filter(isStoredInPlaintext).map(describePayload),
      [],
      `${workflowId}'s payloads are all encrypted`,
    );
    assert.ok(
      payloads.some(({ encoding }) => encoding === ENCRYPTED_ENCODING),
      `${workflowId}'s history holds encrypted payloads`,
    );
    for (const secret of secrets) {
      assert.equal(
        raw.includes(Buffer.from(secret)),
        false,
        `${workflowId}'s history holds an issued secret`,
      );
    }
    for (const plaintext of [...(options.plaintexts ?? []), '"sub":', '"userId":']) {
      assert.equal(
        raw.includes(Buffer.from(plaintext)),
        false,
        `${workflowId}'s history holds ${plaintext} in plaintext`,
      );
    }
  }
}

const SimulatorAccounts = z.object({ accounts: z.array(z.object({ email: z.string() })) });

/**
 * Every run the server holds (every run of every workflow, as visibility lists them) checked as
 * assertHistoryHoldsNoSecrets does, with the e-mail address of each simulator account among the plaintexts.
 * Returns the number of runs checked; at least `atLeast`, or it fails.
 */
export async function assertEveryHistoryHoldsNoSecrets(
  source: HistorySource,
  options: { plaintexts?: string[]; atLeast: number },
): Promise<number> {
  const executions: Execution[] = [];
  for await (const { workflowId, runId } of source.env.client.workflow.list()) {
    executions.push({ workflowId, runId });
  }
  assert.ok(
    executions.length >= options.atLeast,
    `visibility lists ${executions.length} runs, expected at least ${options.atLeast}`,
  );
  const emails = source.simulator
    ? (await simulatorGet({ simulator: source.simulator }, '/_sim/state', SimulatorAccounts)).accounts.map(
        ({ email }) => email,
      )
    : [];
  await assertHistoryHoldsNoSecrets(source, executions, {
    plaintexts: [...emails, ...(options.plaintexts ?? [])],
  });
  return executions.length;
}

/** The history exactly as the server returns it, payloads not decoded. */
export async function rawHistory(source: HistorySource, workflowId: string, runId?: string): Promise<Buffer> {
  return (await rawHistoryPages(source, workflowId, runId)).bytes;
}

async function rawHistoryPages(source: HistorySource, workflowId: string, runId?: string) {
  const chunks: Uint8Array[] = [];
  const pages: object[] = [];
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await source.env.client.workflowService.getWorkflowExecutionHistory({
      namespace: 'default',
      execution: { workflowId, runId },
      nextPageToken,
    });
    pages.push(page);
    chunks.push(temporal.api.workflowservice.v1.GetWorkflowExecutionHistoryResponse.encode(page).finish());
    nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
  } while (nextPageToken);
  return { bytes: Buffer.concat(chunks), pages };
}

/** Where `message` holds a payload that is neither encrypted nor one Temporal must read, as `path (encoding)`. */
export function payloadsStoredInPlaintext(message: unknown): string[] {
  return [...payloadsIn(message)].filter(isStoredInPlaintext).map(describePayload);
}

type FoundPayload = { path: string; encoding: string };
const isStoredInPlaintext = ({ path, encoding }: FoundPayload) =>
  encoding !== ENCRYPTED_ENCODING && !PLAINTEXT_BY_DESIGN.test(path);
const describePayload = ({ path, encoding }: FoundPayload) => `${path} (${encoding})`;

const PAYLOAD_TYPE = '.temporal.api.common.v1.Payload';

/**
 * Every payload in a protobuf message decoded by the SDK (as the server's pages are), with the field path that
 * leads to it; a marker's name is part of its path (`markerRecordedEventAttributes[core_patch]`). Plain objects
 * (`toObject`) name no types and are not read.
 */
export function* payloadsIn(message: unknown, path = ''): Generator<FoundPayload> {
  if (message === null || typeof message !== 'object' || message instanceof Uint8Array) return;
  // Decoded protobuf messages name their type; a map that happens to hold `metadata` and `data` keys is no Payload.
  if ((message as { $type?: { fullName?: string } }).$type?.fullName === PAYLOAD_TYPE) {
    const { metadata } = message as { metadata?: Record<string, Uint8Array | undefined> };
    const encoding = metadata?.encoding;
    yield { path, encoding: encoding ? Buffer.from(encoding).toString() : '(none)' };
    return;
  }
  const { markerName } = message as { markerName?: unknown };
  const here = typeof markerName === 'string' && markerName ? `${path}[${markerName}]` : path;
  for (const [key, value] of Object.entries(message)) {
    yield* payloadsIn(value, Array.isArray(message) ? here : here ? `${here}.${key}` : key);
  }
}

/**
 * Fetches the histories and, with RECORD_HISTORIES=dir, writes them as JSON fixtures for future replay tests. Their
 * payloads stay encrypted, under TEST_PAYLOAD_ENCRYPTION_KEYS, which replayHistories decodes by default.
 */
export async function recordHistories(stack: Stack, workflowIds: string[]) {
  const histories = await Promise.all(
    workflowIds.map(async (workflowId) => ({
      workflowId,
      history: await stack.env.client.workflow.getHandle(workflowId).fetchHistory(),
    })),
  );
  const directory = process.env.RECORD_HISTORIES;
  if (directory) {
    mkdirSync(directory, { recursive: true });
    for (const { workflowId, history } of histories) {
      writeFileSync(join(directory, `${workflowId}.json`), historyToJson(history));
    }
  }
  return histories;
}

/**
 * Replays histories against the current workflow code, bundled as a worker without tracing runs it and as one with
 * tracing does: a non-deterministic change fails here, and so would a history that replays only with the tracing
 * choice it was recorded with. Payloads are decoded through `dataConverter` (the tests' payload encryption);
 * payloads that were never encrypted pass through it.
 */
export async function replayHistories(
  histories: Array<{ workflowId: string; history: History }>,
  dataConverter: DataConverter = testPayloadEncryption().dataConverter,
): Promise<void> {
  assert.ok(histories.length > 0, 'there are histories to replay');
  for (const tracing of [false, true]) {
    let replayed = 0;
    for await (const result of Worker.runReplayHistories(
      {
        workflowBundle: await testWorkflowBundle({ tracing }),
        dataConverter,
        ...(tracing ? { sinks: workflowSinks() } : {}),
      },
      histories,
    )) {
      assert.equal(
        result.error,
        undefined,
        `${result.workflowId} does not replay ${tracing ? 'with' : 'without'} tracing: ${String(result.error)}`,
      );
      replayed += 1;
    }
    assert.equal(replayed, histories.length);
  }
}

// @temporalio/common's historyToJSON trips over the SDK's two nested protobufjs copies under npm; protobufjs's own
// object form round-trips through the same generated classes the replayer uses.
const HistoryMessage = temporal.api.history.v1.History;
const JSON_OPTIONS = { longs: String, enums: String, bytes: String, defaults: false } as const;

export function historyToJson(history: History): string {
  return JSON.stringify(HistoryMessage.toObject(HistoryMessage.fromObject(history), JSON_OPTIONS));
}

export function historyFromJson(json: string): History {
  return HistoryMessage.fromObject(JSON.parse(json));
}
