/**
 * The CLI's way to the service: its HTTP API (src/api/), with an API key. Where the API is and which key to send
 * come from the environment, or from what `npm start` left in the working directory's .data/; errors come back as
 * the messages and exit codes the CLI prints.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import got, { RequestError, type Got, type Response } from 'got';
import { DowngradeUsageError } from './client/errors.js';
import { DEFAULT_API_PORT } from './config.js';

export const API_URL_VARIABLE = 'CRONOFY_DOWNGRADE_API_URL';
export const API_KEY_VARIABLE = 'CRONOFY_DOWNGRADE_API_KEY';
/** Where `npm start` keeps the secrets it generated outside production, API_ADMIN_KEY among them (src/config.ts). */
export const LOCAL_SECRETS_FILE = join('.data', 'local-secrets.json');

/** Problem codes that mean the command line asked for what cannot be (exit code 2), not a refusal. */
const USAGE_PROBLEMS = new Set(['invalid_request', 'webhook_not_configured']);

/** Where the API is and the key the CLI sends, with where that key came from (never the key in a message). */
export interface ApiTarget {
  url: string;
  key: string;
  keySource: string;
}

/**
 * The API the CLI speaks to: CRONOFY_DOWNGRADE_API_URL, else `http://127.0.0.1:$API_PORT` (8090 by default), as
 * `npm start` serves it. The key: CRONOFY_DOWNGRADE_API_KEY, else API_ADMIN_KEY, which outside production
 * (NODE_ENV not `production`) `npm start` keeps in .data/local-secrets.json of the directory it runs in (`cwd`).
 * That file is only read here: a missing one is not generated, as a key the service does not know is no use.
 */
export function apiTarget(env: Record<string, string | undefined>, cwd: string): ApiTarget {
  const set = (name: string) => (env[name] ? env[name] : undefined);
  const url = (set(API_URL_VARIABLE) ?? `http://127.0.0.1:${apiPort(set('API_PORT'))}`).replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]/.test(url)) {
    throw new DowngradeUsageError(`${API_URL_VARIABLE}: "${url}" is not an http(s) URL`);
  }
  const explicit = set(API_KEY_VARIABLE) ?? set('API_ADMIN_KEY');
  if (explicit) {
    return { url, key: explicit, keySource: set(API_KEY_VARIABLE) ? API_KEY_VARIABLE : 'API_ADMIN_KEY' };
  }
  const secretsFile = join(cwd, LOCAL_SECRETS_FILE);
  const local = env.NODE_ENV === 'production' ? undefined : localAdminKey(secretsFile);
  if (local) return { url, key: local, keySource: `API_ADMIN_KEY in ${secretsFile}` };
  throw new DowngradeUsageError(
    `no API key: set ${API_KEY_VARIABLE} to a key of the service` +
      (env.NODE_ENV === 'production'
        ? ' (the first comes from `cronofy-downgrade api-keys create --database` where its database is reachable)'
        : ` (or run the CLI where \`npm start\` runs, whose admin key is in ${LOCAL_SECRETS_FILE}; ${secretsFile} has none)`),
  );
}

function apiPort(value: string | undefined): number {
  if (value === undefined) return DEFAULT_API_PORT;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new DowngradeUsageError(`API_PORT: "${value}" is not a port; or set ${API_URL_VARIABLE}`);
  }
  return port;
}

function localAdminKey(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const secrets = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    return typeof secrets.API_ADMIN_KEY === 'string' ? secrets.API_ADMIN_KEY : undefined;
  } catch (error) {
    throw new DowngradeUsageError(`cannot read ${file}: ${(error as Error).message}`);
  }
}

/** An answer's body, parsed when it is JSON. */
interface Answer<T> {
  body: T;
  headers: Response['headers'];
}

type Query = Record<string, string | number | undefined>;

/**
 * The API's requests for one run of the CLI. Every POST carries an Idempotency-Key made of this invocation's UUID
 * and the request's number in it, so that a POST retried after a lost connection (got retries it, as it does a GET)
 * is answered once; requests a client may repeat (network errors, 429 after Retry-After, 502 to 504) are retried
 * twice. A service that does not answer at all is said so at once.
 */
export class ApiClient {
  private readonly http: Got;
  private readonly invocation = randomUUID();
  private posts = 0;

  constructor(private readonly target: ApiTarget) {
    this.http = got.extend({
      prefixUrl: target.url,
      headers: { authorization: `Bearer ${target.key}`, 'user-agent': 'cronofy-downgrade-cli' },
      throwHttpErrors: false,
      responseType: 'text',
      timeout: { connect: 10_000 },
      retry: {
        limit: 2,
        methods: ['GET', 'POST'],
        statusCodes: [429, 502, 503, 504],
        errorCodes: ['ETIMEDOUT', 'ECONNRESET', 'EPIPE', 'ENETUNREACH', 'EAI_AGAIN'],
        maxRetryAfter: 120_000,
      },
    });
  }

  async get<T>(path: string, query: Query = {}, accept = 'application/json'): Promise<Answer<T>> {
    return this.send<T>('GET', path, { searchParams: defined(query), headers: { accept } });
  }

  async post<T>(path: string, body: unknown = undefined): Promise<T> {
    this.posts += 1;
    const answer = await this.send<T>('POST', path, {
      headers: { 'idempotency-key': `${this.invocation}-${this.posts}` },
      ...(body === undefined ? {} : { json: body }),
    });
    return answer.body;
  }

  private async send<T>(
    method: 'GET' | 'POST',
    path: string,
    options: { searchParams?: Record<string, string>; headers: Record<string, string>; json?: unknown },
  ): Promise<Answer<T>> {
    let response: Response<string>;
    try {
      response = await this.http(path.replace(/^\//, ''), { method, ...options });
    } catch (error) {
      if (error instanceof RequestError && !error.response) {
        throw new Error(
          `cannot reach the service's API at ${this.target.url} (${error.code}): is the service running? ` +
            `\`npm start\` runs it (on API_PORT, 8090 by default); ${API_URL_VARIABLE} names another`,
        );
      }
      throw error;
    }
    const type = String(response.headers['content-type'] ?? '');
    const json = /^application\/(problem\+)?json/.test(type);
    if (response.statusCode >= 400) throw this.failure(method, path, response, json);
    return { body: (json ? JSON.parse(response.body) : response.body) as T, headers: response.headers };
  }

  private failure(method: string, path: string, response: Response<string>, json: boolean): Error {
    const problem = (json ? parseOr(response.body, {}) : {}) as Partial<Problem>;
    const status = response.statusCode;
    if (typeof problem.code !== 'string') {
      return new Error(
        `${this.target.url} answered ${method} /${path.replace(/^\//, '')} with ${status}: is it this service's API? ` +
          `${API_URL_VARIABLE} names it`,
      );
    }
    const detail = [
      problem.detail ?? problem.title ?? problem.code,
      ...(problem.errors ?? []).map((error) => `${error.path}: ${error.message}`),
    ].join('; ');
    if (status === 401) {
      return new ApiError(
        problem.code,
        `the service refused the API key (${problem.code}): the key from ${this.target.keySource} is not a valid ` +
          `key of this service; set ${API_KEY_VARIABLE} to one`,
      );
    }
    if (status === 403) {
      return new ApiError(
        problem.code,
        `${detail} (the API key from ${this.target.keySource}; ${API_KEY_VARIABLE} sets another)`,
      );
    }
    if (status === 429) {
      return new ApiError(problem.code, `${detail}: the API key has used its requests for now; try again`);
    }
    if (USAGE_PROBLEMS.has(problem.code)) return new DowngradeUsageError(detail);
    return new ApiError(problem.code, detail);
  }
}

/** What the API answers an error with (application/problem+json, src/api/problems.ts). */
interface Problem {
  code: string;
  title: string;
  detail: string;
  errors: Array<{ path: string; message: string }>;
}

/** A refusal or a failure the API answered with, by its problem code: the CLI exits 1. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function parseOr(text: string, otherwise: unknown): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return otherwise;
  }
}

function defined(query: Query): Record<string, string> {
  return Object.fromEntries(
    Object.entries(query)
      .filter(([, value]) => value !== undefined)
      .map(([name, value]) => [name, String(value)]),
  );
}

/** A name in a path: a domain or a campaign's name, a key's id. */
export const segment = (value: string) => encodeURIComponent(value);
