/**
 * HTTP load for the callback benchmark: a small sender over keep-alive sockets, open loop at a rate or closed loop at
 * a concurrency, timing every answer.
 */
import http from 'node:http';
import { now } from './support.js';

export interface RequestSpec {
  category: string;
  method: 'GET' | 'POST' | 'PUT';
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /**
   * On a connection of its own, closed afterwards: for requests the server answers by closing the connection
   * (431), which Node's keep-alive agent would otherwise hand to the next request ("socket hang up").
   */
  ownConnection?: boolean;
  /** The status the server must answer (abuse). */
  expected?: number;
}

export interface Answer {
  status: number;
  scheduledAt: number;
  sentAt: number;
  answeredAt: number;
  error?: string;
}

export function sendOne(agent: http.Agent, base: URL, spec: RequestSpec, timeoutMs: number): Promise<Answer> {
  const sentAt = now();
  return new Promise((resolve) => {
    let done = false;
    const finish = (status: number, error?: string) => {
      if (done) return;
      done = true;
      resolve({ status, scheduledAt: sentAt, sentAt, answeredAt: now(), error });
    };
    const request = http.request(
      {
        host: base.hostname,
        port: base.port,
        method: spec.method,
        path: spec.path,
        agent: spec.ownConnection ? false : agent,
        headers: {
          ...spec.headers,
          ...(spec.body !== undefined ? { 'content-length': String(Buffer.byteLength(spec.body)) } : {}),
        },
      },
      (response) => {
        response.on('data', () => {});
        response.on('end', () => finish(response.statusCode ?? 0));
        response.on('error', (error) => finish(response.statusCode ?? 0, error.message));
      },
    );
    request.setTimeout(timeoutMs, () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on('error', (error) => finish(0, error.message));
    request.end(spec.body);
  });
}

export interface SendResult {
  answers: Answer[];
  maxInFlight: number;
  /** Open loop: how late the last request left compared with its schedule (the sender or the in-flight cap). */
  maxLagMs: number;
  capped: number;
}

/** Keep-alive connections to the callback server, at most `sockets` of them, all kept open between requests. */
const keepAliveAgent = (sockets: number) =>
  new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });

/** Sends every request at `ratePerS` (open loop), holding at most `maxInFlight` unanswered. */
export function openLoop(
  base: URL,
  specs: RequestSpec[],
  ratePerS: number,
  maxInFlight: number,
  status: { text: string },
) {
  const agent = keepAliveAgent(maxInFlight);
  const answers: Answer[] = new Array(specs.length);
  let next = 0;
  let inFlight = 0;
  let answered = 0;
  let maxSeen = 0;
  let maxLagMs = 0;
  let capped = 0;
  const start = now() + 20;
  return new Promise<SendResult>((resolve) => {
    const tick = () => {
      const t = now();
      while (next < specs.length && start + (next * 1000) / ratePerS <= t) {
        if (inFlight >= maxInFlight) {
          capped += 1;
          break;
        }
        const index = next++;
        const scheduledAt = start + (index * 1000) / ratePerS;
        maxLagMs = Math.max(maxLagMs, t - scheduledAt);
        inFlight += 1;
        maxSeen = Math.max(maxSeen, inFlight);
        void sendOne(agent, base, specs[index]!, 120_000).then((answer) => {
          answers[index] = { ...answer, scheduledAt };
          inFlight -= 1;
          answered += 1;
          if (answered === specs.length) {
            agent.destroy();
            resolve({ answers, maxInFlight: maxSeen, maxLagMs, capped });
          }
        });
      }
      status.text = `sent ${next}/${specs.length}, answered ${answered}, in flight ${inFlight}`;
      if (next < specs.length) {
        const wait = start + (next * 1000) / ratePerS - now();
        setTimeout(tick, Math.max(0, Math.min(wait, 10)));
      }
    };
    setTimeout(tick, 20);
  });
}

/** Sends every request as fast as `concurrency` connections allow (closed loop). */
export async function closedLoop(
  base: URL,
  specs: RequestSpec[],
  concurrency: number,
  status: { text: string },
) {
  const agent = keepAliveAgent(concurrency);
  const answers: Answer[] = new Array(specs.length);
  let next = 0;
  let answered = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, specs.length) }, async () => {
      while (next < specs.length) {
        const index = next++;
        answers[index] = await sendOne(agent, base, specs[index]!, 120_000);
        answered += 1;
        status.text = `answered ${answered}/${specs.length}`;
      }
    }),
  );
  agent.destroy();
  return {
    answers,
    maxInFlight: Math.min(concurrency, specs.length),
    maxLagMs: 0,
    capped: 0,
  } satisfies SendResult;
}
