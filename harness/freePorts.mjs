// Plain JavaScript, without dependencies, so that the shell scripts can run it before `npm ci` and on any Node:
// `node harness/freePorts.mjs 7` prints seven ports. The tests import it through harness/ports.ts.
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/** The lowest port a test's process is given. */
const LOWEST = 10_000;

/**
 * The lowest source port the kernel gives outgoing connections (Linux; undefined elsewhere), read once. A port chosen
 * at or above it and let go can be taken by any connection on the machine before the process it was chosen for binds
 * it: with the tests' many connections to Temporal and PostgreSQL, now and then one was, and a service failed to
 * start with "Address already in use". Below it, only another listener can take it.
 */
const ephemeralLow = (() => {
  try {
    return (
      Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) ||
      undefined
    );
  } catch {
    return undefined;
  }
})();

/** A port to try: a random one below the ephemeral range where there is room for it, else one the kernel picks. */
function candidate() {
  return ephemeralLow && ephemeralLow - LOWEST >= 1_000 ? randomInt(LOWEST, ephemeralLow) : 0;
}

/** @param {import('node:net').Server} server @param {number} port @returns {Promise<boolean>} */
function listen(server, port) {
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
}

/**
 * Free loopback ports for processes a test starts, held together while chosen so that no two are the same, and
 * outside the kernel's range for outgoing connections (see `ephemeralLow`).
 * @param {number} count
 * @returns {Promise<number[]>}
 */
export async function freePorts(count) {
  /** @type {import('node:net').Server[]} */
  const servers = [];
  try {
    for (let attempt = 0; servers.length < count; attempt += 1) {
      if (attempt >= 100 * count) throw new Error(`no ${count} free loopback ports found`);
      const server = createServer();
      if (await listen(server, candidate())) servers.push(server);
      else server.close();
    }
    return servers.map((server) => /** @type {import('node:net').AddressInfo} */ (server.address()).port);
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.stdout.write(`${(await freePorts(Number(process.argv[2] ?? 1))).join(' ')}\n`);
}
