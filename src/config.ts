import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { msToNumber } from '@temporalio/common/lib/time.js';
import { z } from 'zod';
import { DataCentre } from './cronofy/hosts.js';
import { Keyring } from './store/encryption.js';
import { API_KEY_PATTERN, generateApiKey } from './contracts/apiKeyFormat.js';

const duration = z.string().transform((value, ctx) => {
  try {
    const ms = msToNumber(value as Parameters<typeof msToNumber>[0]);
    if (ms > 0) return ms;
  } catch {
    // reported below
  }
  ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration like 90s, 15m, 7d` });
  return z.NEVER;
});
const port = z.coerce.number().int().min(0).max(65535);
const url = z.url({ protocol: /^https?$/ });
const keyringSpec = z.string().superRefine((spec, ctx) => {
  try {
    Keyring.parse(spec);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
  }
});

/** A PostgreSQL server's URL, shared by every process that opens it; anything else is an embedded PGlite store. */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//.test(url);
}

/** Where the HTTP API listens unless API_PORT says otherwise (the CLI looks for it there too). */
export const DEFAULT_API_PORT = 8090;
export const SERVICE_ROLES = ['worker', 'callbacks', 'codec', 'api'] as const;
export type ServiceRole = (typeof SERVICE_ROLES)[number];

const Environment = z.object({
  /**
   * What this process runs: `worker` (workflows and activities), `callbacks` (the callback server), `codec` (the
   * codec server), `api` (the HTTP API), comma-separated; all four by default. Deployments scale them apart.
   */
  SERVICE_ROLES: z
    .string()
    .default(SERVICE_ROLES.join(','))
    .transform((value, ctx) => {
      const roles = value.split(',').map((role) => role.trim());
      const unknown = roles.filter((role) => !(SERVICE_ROLES as readonly string[]).includes(role));
      if (unknown.length > 0) {
        ctx.addIssue({
          code: 'custom',
          message: `"${value}": roles are ${SERVICE_ROLES.join(', ')}, comma-separated`,
        });
        return z.NEVER;
      }
      return new Set(roles as ServiceRole[]);
    }),
  TEMPORAL_ADDRESS: z.string().default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().default('default'),
  TEMPORAL_TASK_QUEUE: z.string().default('cronofy-downgrade'),
  /**
   * Temporal Cloud or any TLS-fronted cluster. An API key (Temporal Cloud) or a client certificate (mTLS) turns
   * TLS on; TEMPORAL_TLS=true turns it on without either (server authentication only).
   */
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  TEMPORAL_TLS: z.enum(['true', 'false']).optional(),
  TEMPORAL_TLS_CERT_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_KEY_PATH: z.string().min(1).optional(),
  /** A private CA for the server's certificate; by default the system's roots. */
  TEMPORAL_TLS_CA_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().min(1).optional(),
  /**
   * Server-enforced cap on Cronofy calls per second across every worker. Cronofy allows 50/s and 500/min per
   * application; a task-queue rate limit is per second, so the default stays under the per-minute limit.
   */
  CRONOFY_CALLS_PER_SECOND: z.coerce.number().positive().default(8),
  /** Workflow runs the worker keeps in memory between their tasks; unset, DEFAULT_CACHED_WORKFLOWS (src/worker.ts). */
  WORKER_CACHED_WORKFLOWS: z.coerce.number().int().min(2).optional(),
  /**
   * A workflow bundle built ahead (`npm run bundle-workflows`, with `-- --tracing` when tracing is on), so that a
   * worker starts without bundling. Unset, a worker from `dist/` starts on the one `npm run build` wrote there, and
   * one from source bundles as it starts.
   */
  WORKFLOW_BUNDLE_PATH: z.string().min(1).optional(),

  CRONOFY_CLIENT_ID: z.string().min(1).optional(),
  CRONOFY_CLIENT_SECRET: z.string().min(1).optional(),
  CRONOFY_DATA_CENTER: DataCentre.default('us'),
  /** Point the client at another Cronofy (the simulator, a proxy); both or neither. */
  CRONOFY_API_URL: url.optional(),
  CRONOFY_APP_URL: url.optional(),

  CALLBACK_HOST: z.string().default('127.0.0.1'),
  CALLBACK_PORT: port.default(8080),
  /** The public base URL of the callback server; its /oauth/callback must be registered with Cronofy. */
  CALLBACK_BASE_URL: url.optional(),
  STATE_SIGNING_SECRET: z.string().min(32, 'must be at least 32 characters'),

  DATABASE_URL: z.string().default('file:.data/credentials'),
  CREDENTIAL_KEYS: keyringSpec,
  /** Encrypts every Temporal payload (inputs, results, signals, queries…) before it leaves the process. */
  PAYLOAD_ENCRYPTION_KEYS: keyringSpec,
  /** Bearer token the codec server requires (`Authorization: Bearer <token>`). */
  CODEC_SERVER_TOKEN: z.string().min(16, 'must be at least 16 characters'),
  CODEC_SERVER_HOST: z.string().default('127.0.0.1'),
  CODEC_SERVER_PORT: port.default(8234),

  API_HOST: z.string().default('127.0.0.1'),
  API_PORT: port.default(DEFAULT_API_PORT),
  /**
   * A key of the HTTP API that the api role registers at start with every scope. `npm start` generates one into
   * .data/local-secrets.json for the CLI; in production the first key comes from `cronofy-downgrade api-keys create`.
   */
  API_ADMIN_KEY: z
    .string()
    .regex(API_KEY_PATTERN, 'must be an API key of this service (cdk_<id>_<secret>)')
    .optional(),
  /** Each API key's requests a minute (its burst too), across every API process; 0 turns the limit off. */
  API_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(0).default(600),
  /** The one browser origin the codec server answers (CORS): the Temporal UI. Defaults to the embedded UI's. */
  CODEC_ALLOWED_ORIGIN: url.transform((value) => new URL(value).origin).optional(),
  /**
   * Operators signed in to the Temporal UI through OIDC: the UI forwards their access token
   * (TEMPORAL_CODEC_PASS_ACCESS_TOKEN=true) and the codec server accepts JWTs from this issuer for this audience.
   */
  CODEC_OIDC_ISSUER: url.optional(),
  CODEC_OIDC_AUDIENCE: z.string().min(1).optional(),
  /** The issuer's JWKS, when it is not published through OIDC discovery. */
  CODEC_OIDC_JWKS_URL: url.optional(),

  /** The application's endpoint for downgrade events (docs/notifications.md). */
  APP_WEBHOOK_URL: url.optional(),
  /**
   * Standard Webhooks signing secrets (`whsec_…`), separated by spaces or commas: every event is signed with each,
   * so a receiver keeps verifying while the secret rotates.
   */
  APP_WEBHOOK_SIGNING_SECRETS: z
    .string()
    .transform((value) => value.split(/[\s,]+/).filter(Boolean))
    .superRefine((secrets, ctx) => {
      for (const secret of secrets) {
        if (!/^whsec_[A-Za-z0-9+/]{32,}={0,2}$/.test(secret)) {
          ctx.addIssue({
            code: 'custom',
            message: 'each secret is whsec_ followed by base64 of 24 bytes or more',
          });
          return;
        }
      }
    })
    .optional(),
  /** The HMAC of the body in `Downgrade-HMAC-SHA256`, for receivers written before Standard Webhooks. */
  APP_WEBHOOK_SECRET: z.string().min(16).optional(),
  /** The waits after each failed delivery, comma-separated; after the last the event waits for an operator. */
  NOTIFICATION_RETRY_SCHEDULE: z
    .string()
    .transform((value, ctx) => {
      const waits = value.split(',').map((part) => duration.safeParse(part.trim()));
      if (waits.every((wait) => wait.success)) return waits.map((wait) => wait.data);
      ctx.addIssue({ code: 'custom', message: `"${value}" is not a list of durations like 5s,5m,30m,2h` });
      return z.NEVER;
    })
    .optional(),

  /**
   * Email to the person and to a domain's administrator, when a start gives their address: an SMTP server as
   * smtp://user:password@host:587 (STARTTLS when offered) or smtps://…:465. Unset, no email is sent.
   */
  SMTP_URL: z.url({ protocol: /^smtps?$/ }).optional(),
  /** The messages' sender, e.g. `Example Calendar <calendar@example.com>`. */
  EMAIL_FROM: z.string().min(3).optional(),
  /** How the messages name the application, and where people can write with questions. */
  APP_NAME: z.string().min(1).default('Your calendar application'),
  APP_SUPPORT_EMAIL: z.email().optional(),
  /** A folder of `<template>.subject`, `.txt` and `.html` files that replace the built-in wording. */
  EMAIL_TEMPLATES_DIR: z.string().min(1).optional(),

  DOWNGRADE_DEADLINE: duration.default(msToNumber('7d')),
  DOWNGRADE_REMINDER_INTERVAL: duration.default(msToNumber('1d')),
  /**
   * How long one consent request (Cronofy's URL) works; unset, as long as its prompt waits. The service's link
   * outlives it and asks afresh (docs/notifications.md).
   */
  DOWNGRADE_CONSENT_REQUEST_LIFETIME: duration.optional(),
  DOWNGRADE_MAX_PROMPTS: z.coerce.number().int().min(1).max(10).default(3),

  SIMULATOR_PORT: port.default(7070),
  /** Where the embedded simulator keeps its accounts and authorizations across restarts. */
  SIMULATOR_STATE_FILE: z.string().min(1).default('.data/simulator.json'),
  TEMPORAL_UI_PORT: port.default(8233),
  /** The Temporal UI operators use, for the links between a domain's run and its users' runs; the embedded one by default. */
  TEMPORAL_UI_URL: url.transform((value) => value.replace(/\/$/, '')).optional(),
  /** Where `npm start`'s own Temporal dev server listens when TEMPORAL_ADDRESS is not set. */
  TEMPORAL_DEV_SERVER_PORT: port.default(7233),
  TEMPORAL_DB_FILE: z.string().default('.data/temporal.db'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
  /**
   * The Prometheus endpoint (`GET /metrics`: the SDK's worker metrics and the service's), as ip:port; `off`
   * disables metrics. Loopback by default; 0.0.0.0:9464 to be scraped from elsewhere.
   */
  METRICS_BIND_ADDRESS: z
    .string()
    .regex(
      /^(off|(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\]):\d{1,5})$/,
      'must be ip:port (e.g. 0.0.0.0:9464) or off',
    )
    .default('127.0.0.1:9464')
    .transform((value) => (value === 'off' ? undefined : value)),
  /** OTLP/HTTP collector (e.g. http://otel-collector:4318): spans are exported there; unset, tracing is off. */
  OTEL_EXPORTER_OTLP_ENDPOINT: url.optional(),
  /** The service name on exported spans. */
  OTEL_SERVICE_NAME: z.string().min(1).default('cronofy-downgrade'),
});

/** Variables that only make sense together. */
const PAIRS = [
  ['CRONOFY_CLIENT_ID', 'CRONOFY_CLIENT_SECRET'],
  ['CRONOFY_API_URL', 'CRONOFY_APP_URL'],
  ['CODEC_OIDC_ISSUER', 'CODEC_OIDC_AUDIENCE'],
  ['SMTP_URL', 'EMAIL_FROM'],
  ['TEMPORAL_TLS_CERT_PATH', 'TEMPORAL_TLS_KEY_PATH'],
] as const;

export type Config = Omit<z.infer<typeof Environment>, 'CODEC_ALLOWED_ORIGIN'> & {
  /** CODEC_ALLOWED_ORIGIN, by default the embedded Temporal UI's origin. */
  CODEC_ALLOWED_ORIGIN: string;
  /** True when no Cronofy credentials are configured: the embedded simulator stands in for Cronofy. */
  useSimulator: boolean;
  /** True when TEMPORAL_ADDRESS is not set: `npm start` runs a Temporal dev server of its own there. */
  embeddedTemporal: boolean;
  callbackBaseUrl: string;
  /** TEMPORAL_UI_URL, or the embedded dev server's UI; unset with another Temporal and no TEMPORAL_UI_URL. */
  temporalUiUrl: string | undefined;
};

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function parseConfig(rawEnv: Record<string, string | undefined>): Config {
  // A variable set to the empty string (`FOO=` in an env file, `${FOO:-}` in Compose) counts as unset.
  const env = Object.fromEntries(Object.entries(rawEnv).filter(([, value]) => value !== ''));
  const parsed = Environment.safeParse(env);
  const problems = parsed.success
    ? []
    : parsed.error.issues.map((issue) => `${issue.path.join('.') || '(environment)'}: ${issue.message}`);
  for (const [a, b] of PAIRS) {
    if ((env[a] === undefined) !== (env[b] === undefined)) {
      problems.push(env[a] === undefined ? `${a}: required with ${b}` : `${b}: required with ${a}`);
    }
  }
  const webhookSecrets = env.APP_WEBHOOK_SIGNING_SECRETS ?? env.APP_WEBHOOK_SECRET;
  if ((env.APP_WEBHOOK_URL === undefined) !== (webhookSecrets === undefined)) {
    problems.push(
      env.APP_WEBHOOK_URL === undefined
        ? 'APP_WEBHOOK_URL: required with APP_WEBHOOK_SIGNING_SECRETS or APP_WEBHOOK_SECRET'
        : 'APP_WEBHOOK_SIGNING_SECRETS: required with APP_WEBHOOK_URL (or the older APP_WEBHOOK_SECRET)',
    );
  }
  if (env.TEMPORAL_TLS === 'false' && (env.TEMPORAL_API_KEY ?? env.TEMPORAL_TLS_CERT_PATH) !== undefined) {
    problems.push('TEMPORAL_TLS: false cannot be combined with TEMPORAL_API_KEY or a client certificate');
  }
  const embeddedTemporal = env.TEMPORAL_ADDRESS === undefined;
  // The callback server stores each code where the worker reads it and signals the workflows the worker runs: two
  // processes need one PostgreSQL (an embedded PGlite store belongs to the process that opened it) and one Temporal
  // (without TEMPORAL_ADDRESS each process would start a dev server of its own).
  if (parsed.success) {
    const roles = parsed.data.SERVICE_ROLES;
    // An API without the worker starts workflows another process runs, and reads the tokens it stores.
    const split =
      roles.has('worker') !== roles.has('callbacks') || (roles.has('api') && !roles.has('worker'));
    if (split) {
      if (!isPostgresUrl(parsed.data.DATABASE_URL)) {
        problems.push(
          'SERVICE_ROLES: a worker, a callback server and an API in separate processes must share a PostgreSQL DATABASE_URL',
        );
      }
      if (embeddedTemporal) {
        problems.push(
          'SERVICE_ROLES: a worker, a callback server and an API in separate processes must share a Temporal server; set TEMPORAL_ADDRESS',
        );
      }
    }
  }
  if (!parsed.success || problems.length > 0) {
    throw new ConfigError(`Invalid configuration:\n${problems.map((line) => `  ${line}`).join('\n')}`);
  }
  const config = parsed.data;
  return {
    ...config,
    TEMPORAL_ADDRESS: embeddedTemporal
      ? `127.0.0.1:${config.TEMPORAL_DEV_SERVER_PORT}`
      : config.TEMPORAL_ADDRESS,
    useSimulator: config.CRONOFY_CLIENT_ID === undefined,
    embeddedTemporal,
    callbackBaseUrl: config.CALLBACK_BASE_URL ?? `http://${config.CALLBACK_HOST}:${config.CALLBACK_PORT}`,
    temporalUiUrl:
      config.TEMPORAL_UI_URL ??
      (embeddedTemporal ? `http://127.0.0.1:${config.TEMPORAL_UI_PORT}` : undefined),
    CODEC_ALLOWED_ORIGIN: config.CODEC_ALLOWED_ORIGIN ?? `http://127.0.0.1:${config.TEMPORAL_UI_PORT}`,
  };
}

/** What a client starts a downgrade with unless a request says otherwise (DOWNGRADE_*). */
export function downgradeDefaults(config: Config) {
  return {
    deadlineMs: config.DOWNGRADE_DEADLINE,
    reminderIntervalMs: config.DOWNGRADE_REMINDER_INTERVAL,
    consentRequestLifetimeMs: config.DOWNGRADE_CONSENT_REQUEST_LIFETIME,
    maxPrompts: config.DOWNGRADE_MAX_PROMPTS,
  };
}

/**
 * Outside production, secrets that are not configured are generated once and kept in a git-ignored file, so
 * `npm start` works on a fresh clone and restarts can still decrypt what they stored. A file written by an
 * earlier version keeps its values and gains the secrets it lacks.
 */
export function localDevelopmentSecrets(file = '.data/local-secrets.json'): Record<string, string> {
  const existing = existsSync(file)
    ? z.record(z.string(), z.string()).parse(JSON.parse(readFileSync(file, 'utf8')))
    : {};
  const generators: Record<string, () => string> = {
    STATE_SIGNING_SECRET: () => randomBytes(32).toString('base64url'),
    CREDENTIAL_KEYS: () => Keyring.generateSpec('local1'),
    PAYLOAD_ENCRYPTION_KEYS: () => Keyring.generateSpec('local1'),
    CODEC_SERVER_TOKEN: () => randomBytes(24).toString('base64url'),
    API_ADMIN_KEY: generateApiKey,
  };
  const missing = Object.keys(generators).filter((name) => existing[name] === undefined);
  if (missing.length === 0) return existing;
  const secrets = { ...existing, ...Object.fromEntries(missing.map((name) => [name, generators[name]!()])) };
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}

/** Reads the process environment once at start-up; on any bad variable prints every problem and exits. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const defaults = env.NODE_ENV === 'production' ? {} : localDevelopmentSecrets();
  try {
    return parseConfig({ ...defaults, ...env });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    process.exit(1);
  }
}

/** Every variable the service reads, for checks of deployment files. */
export const configVariableNames: readonly string[] = [...Object.keys(Environment.shape), 'NODE_ENV'];
