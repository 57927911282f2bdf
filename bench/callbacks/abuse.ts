// 2. Abuse: bad callbacks of every kind against both endpoints, while legitimate downgrades wait.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import got from 'got';
import { REDIRECT_PATH, SERVICE_ACCOUNT_CALLBACK_PATH } from '../../src/contracts/callbackPaths.js';
import { StateSigner, type StatePurpose } from '../../src/contracts/stateToken.js';
import { NO_RUN } from '../../harness/stack.js';
import { cpuSnapshot, recordCpu } from '../cpu.js';
import { closedLoop, sendOne, type Answer, type RequestSpec } from '../httpLoad.js';
import { countBy, distribution, log, mapLimit, sleep, type Distribution } from '../support.js';
import { PROMPT_MS, phase, options, METRICS_LAG_MS, PREPARE_CONCURRENCY } from './options.js';
import type { Stack } from './stack.js';
import { type Prepared, prepare, pathOf, DELIVERED } from './prepare.js';
import { signalRequests, serviceCallbackCounts, countsDelta, workflowFacts } from './facts.js';

export interface AbuseResult {
  run: number;
  count: number;
  statuses: Record<string, number>;
  byCategory: Array<{ category: string; expected: number; count: number; got: Record<string, number> }>;
  unexpected: number;
  serverErrors: number;
  answeredPerS: number;
  latency: Distribution;
  signalRequestsDuring: number;
  /** The service's own `downgrade_callbacks` counters over the abuse, by result. */
  serviceResults: Record<string, number>;
  signalsInWaitingHistories: number;
  waitingStillWaiting: string;
  health: number;
  goodCallback: string;
  ok: boolean;
}

function b64url(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

/** A pseudo-random generator with a fixed seed, so every run sends the same mix in the same order. */
function seeded(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

async function badRequests(
  stack: Stack,
  count: number,
  waiting: Prepared[],
  used: URL[],
  usedServiceAccountState: string,
): Promise<RequestSpec[]> {
  const signer = new StateSigner(stack.stateSecret);
  const stranger = new StateSigner(randomBytes(32).toString('base64url'));
  const random = seeded(20261125);
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
  // Every signed state names a downgrade that is really waiting, with a fresh nonce: if the server let one
  // through, that downgrade's history would show the signal.
  const claims = (purpose: StatePurpose) => ({
    ...NO_RUN,
    workflowId: pick(waiting).workflowId,
    purpose,
    prompt: 1,
    nonce: StateSigner.newNonce(),
  });
  const future = () => new Date(Date.now() + PROMPT_MS);
  const real = (purpose: StatePurpose) => signer.sign(claims(purpose), future());
  const expired = (purpose: StatePurpose) => signer.sign(claims(purpose), new Date(Date.now() - 3_600_000));
  const foreign = (purpose: StatePurpose) => stranger.sign(claims(purpose), future());
  const tampered = async () => {
    const [header, payload, signature] = (await real('individual_reauthorization')).split('.');
    const claimsOf = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as object;
    const changed = { ...claimsOf, workflowId: pick(waiting).workflowId, prompt: 2 };
    return `${header}.${b64url(changed)}.${signature}`;
  };
  const algNone = () => {
    const exp = Math.floor(future().getTime() / 1000);
    return `${b64url({ alg: 'none' })}.${b64url({ ...claims('individual_reauthorization'), iss: 'cronofy-downgrade', exp })}.`;
  };
  const code = () => randomBytes(24).toString('base64url');

  type Request = Omit<RequestSpec, 'category' | 'expected'>;
  const json = { 'content-type': 'application/json' };
  const get = (query: string): Request => ({
    method: 'GET',
    path: query ? `${REDIRECT_PATH}?${query}` : REDIRECT_PATH,
  });
  const post = (
    state: string | undefined,
    body: string,
    headers: Record<string, string> = json,
  ): Request => ({
    method: 'POST',
    path:
      state === undefined
        ? SERVICE_ACCOUNT_CALLBACK_PATH
        : `${SERVICE_ACCOUNT_CALLBACK_PATH}?state=${encodeURIComponent(state)}`,
    headers,
    body,
  });
  const codeBody = (state?: string) => JSON.stringify({ authorization: { code: code(), state } });
  /** A code callback whose URL and body carry the same state. */
  const postCode = async (state: Promise<string>) => {
    const resolved = await state;
    return post(resolved, codeBody(resolved));
  };

  const kinds: Array<{
    category: string;
    expected: number;
    variants: Array<() => Request | Promise<Request>>;
  }> = [
    {
      category: 'GET malformed query',
      expected: 400,
      variants: [
        () => get(`code=${code()}&code=${code()}&state=x`),
        () => get('code=&state='),
        () => get('%ZZ=1&code=%E0%A4%A&state=%'),
        () => get(''),
        () => get('&&&==&'),
        () => get(`code=${code()}&error=access_denied&state=abc`),
      ],
    },
    {
      category: 'GET missing state',
      expected: 400,
      variants: [() => get(`code=${code()}`), () => get('error=access_denied')],
    },
    {
      category: 'GET extra parameter (valid state)',
      expected: 400,
      variants: [async () => get(`code=${code()}&state=${await real('individual_reauthorization')}&x=1`)],
    },
    {
      category: 'GET state not a token',
      expected: 400,
      variants: [
        () => get(`code=${code()}&state=${randomBytes(40).toString('base64url')}`),
        () => get(`code=${code()}&state=a.b.c`),
      ],
    },
    {
      category: 'GET forged (other key)',
      expected: 400,
      variants: [
        async () => get(`code=${code()}&state=${await foreign('individual_reauthorization')}`),
        async () => get(`error=access_denied&state=${await foreign('individual_reauthorization')}`),
      ],
    },
    {
      category: 'GET forged (tampered payload)',
      expected: 400,
      variants: [async () => get(`code=${code()}&state=${await tampered()}`)],
    },
    {
      category: 'GET forged (alg none)',
      expected: 400,
      variants: [() => get(`code=${code()}&state=${algNone()}`)],
    },
    {
      category: 'GET expired (real key)',
      expected: 410,
      variants: [async () => get(`code=${code()}&state=${await expired('individual_reauthorization')}`)],
    },
    {
      category: 'GET wrong purpose (real key)',
      expected: 400,
      variants: [async () => get(`code=${code()}&state=${await real('enterprise_user')}`)],
    },
    {
      category: 'GET replayed (already used)',
      expected: 409,
      variants: [() => get(pick(used).search.slice(1))],
    },
    {
      category: 'GET oversized state (> 4096)',
      expected: 400,
      variants: [() => get(`code=${code()}&state=${'A'.repeat(5000)}`)],
    },
    {
      category: 'GET oversized error_description',
      expected: 400,
      variants: [
        async () =>
          get(
            `error=access_denied&error_description=${'x'.repeat(2000)}&state=${await real('individual_reauthorization')}`,
          ),
      ],
    },
    {
      category: 'GET URL over the header limit',
      expected: 431,
      variants: [() => ({ ...get(`code=${code()}&state=${'B'.repeat(20_000)}`), ownConnection: true })],
    },
    {
      category: 'PUT on the redirect path',
      expected: 404,
      variants: [() => ({ ...get(`code=${code()}&state=x`), method: 'PUT' })],
    },
    {
      category: 'POST bad JSON',
      expected: 400,
      variants: [
        async () => post(await real('enterprise_user'), '{"authorization":{"code":'),
        async () => post(await real('enterprise_user'), ''),
        async () => post(await real('enterprise_user'), "{'authorization': nope}"),
      ],
    },
    {
      category: 'POST wrong JSON shape',
      expected: 400,
      variants: [
        async () => post(await real('enterprise_user'), JSON.stringify({ authorization: {} })),
        async () => post(await real('enterprise_user'), '[1,2,3]'),
        async () => post(await real('enterprise_user'), JSON.stringify({ authorization: { code: 7 } })),
      ],
    },
    { category: 'POST missing state', expected: 400, variants: [() => post(undefined, codeBody())] },
    {
      category: 'POST body over bodyLimit (64 KiB)',
      expected: 413,
      variants: [
        async () =>
          post(
            await real('enterprise_user'),
            JSON.stringify({ authorization: { code: code(), pad: 'p'.repeat(70_000) } }),
          ),
      ],
    },
    {
      category: 'POST unsupported content type',
      expected: 415,
      variants: [
        async () =>
          post(await real('enterprise_user'), '<authorization/>', { 'content-type': 'application/xml' }),
      ],
    },
    {
      category: 'POST forged (other key)',
      expected: 400,
      variants: [() => postCode(foreign('enterprise_user'))],
    },
    {
      category: 'POST wrong purpose (real key)',
      expected: 400,
      variants: [() => postCode(real('individual_reauthorization'))],
    },
    {
      category: 'POST expired (real key)',
      expected: 410,
      variants: [() => postCode(expired('enterprise_user'))],
    },
    {
      category: 'POST body state ≠ URL state',
      expected: 400,
      variants: [async () => post(await real('enterprise_user'), codeBody(await real('enterprise_user')))],
    },
    {
      category: 'POST oversized state (> 4096)',
      expected: 400,
      variants: [() => post('C'.repeat(5000), codeBody())],
    },
    // Cronofy resends callbacks; a duplicate is acknowledged (200) so that it stops, and sends no second signal.
    {
      category: 'POST replayed (duplicate, documented 200)',
      expected: 200,
      variants: [() => post(usedServiceAccountState, codeBody(usedServiceAccountState))],
    },
  ];
  const specs: RequestSpec[] = [];
  for (let i = 0; i < count; i += 1) {
    const kind = kinds[i % kinds.length]!;
    const variant = kind.variants[Math.floor(i / kinds.length) % kind.variants.length]!;
    specs.push({ ...(await variant()), category: kind.category, expected: kind.expected });
  }
  // Fisher-Yates with the fixed seed: both endpoints and every kind interleaved.
  for (let i = specs.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [specs[i], specs[j]] = [specs[j]!, specs[i]!];
  }
  return specs;
}

export async function abuse(stack: Stack, run: number, used: URL[]): Promise<AbuseResult> {
  const waiting = await phase(`[abuse] prepare ${options.waiting} waiting downgrades`, (status) =>
    prepare(stack, 'waiting', options.waiting, status),
  );
  const base = new URL(stack.callbackBase);
  const agent = new http.Agent({ keepAlive: true });
  // Priming, before the signal count is read: one legitimate callback (its URL then replays as "already used"),
  // and one service-account callback for a user who is not waiting (410; its state then replays as a duplicate).
  const primed = waiting[0]!;
  const primeAnswer = await sendOne(
    agent,
    base,
    { category: 'prime', method: 'GET', path: pathOf(primed.callback) },
    30_000,
  );
  if (primeAnswer.status !== DELIVERED)
    throw new Error(`the priming callback answered ${primeAnswer.status}`);
  const usedServiceAccountState = await new StateSigner(stack.stateSecret).sign(
    {
      ...NO_RUN,
      workflowId: 'downgrade-enterprise-user-bench-nobody',
      purpose: 'enterprise_user',
      prompt: 1,
      nonce: StateSigner.newNonce(),
    },
    new Date(Date.now() + PROMPT_MS),
  );
  const primePost = await sendOne(
    agent,
    base,
    {
      category: 'prime',
      method: 'POST',
      path: `${SERVICE_ACCOUNT_CALLBACK_PATH}?state=${encodeURIComponent(usedServiceAccountState)}`,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ authorization: { code: 'x'.repeat(32), state: usedServiceAccountState } }),
    },
    30_000,
  );
  if (primePost.status !== 410)
    throw new Error(`the priming service-account callback answered ${primePost.status}`);
  agent.destroy();
  const targets = waiting.slice(1);
  const specs = await badRequests(
    stack,
    options.bad,
    targets,
    [...used, primed.callback],
    usedServiceAccountState,
  );

  // The server's counters reach its metrics page a moment late, before the baseline and after the send alike.
  await sleep(METRICS_LAG_MS);
  const signalsBefore = await signalRequests(stack);
  const resultsBefore = await serviceCallbackCounts(stack);
  const cpuBefore = cpuSnapshot(stack.pids);
  const sent = await phase(`[abuse] send ${specs.length} bad callbacks`, (status) =>
    closedLoop(base, specs, options.concurrency, status),
  );
  recordCpu(run, 'abuse: send', cpuBefore, cpuSnapshot(stack.pids));
  await sleep(METRICS_LAG_MS);
  const signalsAfter = await signalRequests(stack);
  const serviceResults = countsDelta(await serviceCallbackCounts(stack), resultsBefore);

  return phase('[abuse] verify', async (status) => {
    const facts = await workflowFacts(
      stack,
      targets.map((t) => t.workflowId),
      status,
    );
    const health = await got(`${stack.callbackBase}/healthz`, {
      throwHttpErrors: false,
      retry: { limit: 0 },
    });
    const good = targets[0]!;
    const goodAnswer = await got(good.callback.toString(), {
      throwHttpErrors: false,
      followRedirect: false,
      retry: { limit: 0 },
    });
    const result = await Promise.race([
      stack.individual.waitForResult(good.workflowId),
      sleep(60_000).then(() => undefined),
    ]);
    const [goodFacts] = await workflowFacts(stack, [good.workflowId], status);
    // The rest were only there to be targeted: end them, no signal.
    await mapLimit(targets.slice(1), PREPARE_CONCURRENCY, (t) =>
      stack.client.workflow.getHandle(t.workflowId).terminate('benchmark: abuse phase over'),
    );

    const answers = sent.answers;
    const firstSent = Math.min(...answers.map((a) => a.sentAt));
    const lastAnswer = Math.max(...answers.map((a) => a.answeredAt));
    const byCategory = new Map<string, { expected: number; answers: Answer[] }>();
    specs.forEach((spec, i) => {
      const entry = byCategory.get(spec.category) ?? { expected: spec.expected!, answers: [] };
      entry.answers.push(answers[i]!);
      byCategory.set(spec.category, entry);
    });
    const unexpected = specs.filter((spec, i) => answers[i]!.status !== spec.expected).length;
    const serverErrors = answers.filter((a) => a.status >= 500 || a.status === 0).length;
    const signalsInWaiting = facts.reduce((sum, f) => sum + f.signals, 0);
    const stillWaiting = facts.filter(
      (f) => f.status === 'RUNNING' && f.state === 'awaiting_reauthorization',
    ).length;
    const goodCallback =
      goodAnswer.statusCode === DELIVERED && result?.state === 'completed' && goodFacts?.signals === 1
        ? `${DELIVERED}, completed, 1 signal`
        : `FAILED: HTTP ${goodAnswer.statusCode}, ${result?.state ?? 'no result in 60 s'}, ${goodFacts?.signals} signals`;
    const abuseResult: AbuseResult = {
      run,
      count: specs.length,
      statuses: countBy(answers, (a) => String(a.status)),
      byCategory: [...byCategory.entries()].map(([category, entry]) => ({
        category,
        expected: entry.expected,
        count: entry.answers.length,
        got: countBy(entry.answers, (a) =>
          a.error ? `${a.status} (${a.error.slice(0, 40)})` : String(a.status),
        ),
      })),
      unexpected,
      serverErrors,
      answeredPerS: specs.length / ((lastAnswer - firstSent) / 1000),
      latency: distribution(answers.map((a) => a.answeredAt - a.sentAt)),
      signalRequestsDuring: signalsAfter - signalsBefore,
      serviceResults,
      signalsInWaitingHistories: signalsInWaiting,
      waitingStillWaiting: `${stillWaiting}/${facts.length}`,
      health: health.statusCode,
      goodCallback,
      ok:
        unexpected === 0 &&
        serverErrors === 0 &&
        signalsAfter === signalsBefore &&
        !serviceResults.delivered &&
        signalsInWaiting === 0 &&
        stillWaiting === facts.length &&
        health.statusCode === 200 &&
        goodCallback.startsWith(String(DELIVERED)),
    };
    log(`abuse: ${JSON.stringify({ ...abuseResult, byCategory: undefined })}`);
    return abuseResult;
  });
}
