/**
 * The application's webhook endpoint, as an application would write it: each event verified with the
 * `standardwebhooks` library against the secret the receiver holds (and the older Downgrade-HMAC-SHA256 header);
 * an event that does not verify is refused with 401 and counted in `refused`.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

/** Generated for tests: `whsec_` and base64 of 32 bytes. */
export function testSigningSecret(fill: number): string {
  return `whsec_${Buffer.alloc(32, fill).toString('base64')}`;
}

export interface ReceivedEvent {
  /** The Standard Webhooks `webhook-id`. */
  id: string;
  type: string;
  status: { workflowId?: string; domain?: string; state?: string; phase?: string } & Record<string, unknown>;
}

export interface WebhookReceiver {
  url: string;
  /** Accepted events, in the order they arrived (a redelivered one again). */
  events: ReceivedEvent[];
  /** Every answer given, in order, with the event's id. */
  answers: Array<{ id: string; workflowId?: string; status: number }>;
  refused: number;
  /** What the endpoint answers from now on to every event: 204 to accept, or a failure status. */
  answer(status: number): void;
  /** Answers `status` to the next `count` events of `workflowId` only. */
  failFor(workflowId: string, count: number, status?: number): void;
  close(): Promise<void>;
}

export async function startWebhookReceiver(options: {
  /**
   * The secrets receivers were given: an event is accepted only when a receiver holding any one of them alone
   * would verify it (while a secret rotates, receivers of the old and of the new one both keep working).
   */
  signingSecrets: readonly string[];
  legacySecret?: string;
}): Promise<WebhookReceiver> {
  const verifiers = options.signingSecrets.map((secret) => new Webhook(secret));
  const events: ReceivedEvent[] = [];
  const answers: WebhookReceiver['answers'] = [];
  const failures = new Map<string, { count: number; status: number }>();
  let standing = 204;
  let refused = 0;

  const verify = (body: string, headers: IncomingHttpHeaders): ReceivedEvent | undefined => {
    try {
      const verified = verifiers.map((verifier) => verifier.verify(body, headers as Record<string, string>));
      const event = verified[0] as Omit<ReceivedEvent, 'id'>;
      if (options.legacySecret) {
        const legacy = createHmac('sha256', options.legacySecret).update(body).digest('base64');
        if (headers['downgrade-hmac-sha256'] !== legacy) return undefined;
      }
      return { ...event, id: String(headers['webhook-id']) };
    } catch {
      return undefined;
    }
  };

  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const event = verify(Buffer.concat(chunks).toString('utf8'), request.headers);
      if (!event) {
        refused += 1;
        response.writeHead(401).end();
        return;
      }
      const workflowId = event.status.workflowId;
      const failing = workflowId ? failures.get(workflowId) : undefined;
      let status = standing;
      if (failing && failing.count > 0) {
        failing.count -= 1;
        status = failing.status;
      }
      if (status >= 200 && status < 300) events.push(event);
      answers.push({ id: event.id, workflowId, status });
      response.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/downgrades`,
    events,
    answers,
    get refused() {
      return refused;
    },
    answer: (status) => {
      standing = status;
    },
    failFor: (workflowId, count, status = 503) => failures.set(workflowId, { count, status }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
