/**
 * CPU per process and per thread, from /proc, for each window a benchmark measures; and, with --profile, where the
 * service's threads spent those windows, from their V8 CPU profiles.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fmt } from './support.js';

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

function statFields(pid: number, tid?: string): string[] | undefined {
  try {
    const stat = readFileSync(tid ? `/proc/${pid}/task/${tid}/stat` : `/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** CPU seconds of a process (with `children`, also of its live and reaped children: PostgreSQL's backends). */
function cpuSeconds(pid: number, children: boolean): number {
  const fields = statFields(pid);
  if (!fields) return 0;
  let ticks = Number(fields[11]) + Number(fields[12]);
  if (children) {
    ticks += Number(fields[13]) + Number(fields[14]);
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const child = statFields(Number(entry));
      if (child && Number(child[1]) === pid) ticks += Number(child[11]) + Number(child[12]);
    }
  }
  return ticks / CLOCK_TICKS;
}

/**
 * The service's CPU by thread: its main thread (the callback server, activities, the client), the worker thread
 * running workflow code (a JavaScript thread started seconds after the process, once the workflows are bundled),
 * the SDK's Rust core (gRPC to Temporal, polling), and the rest (V8's platform threads and garbage collector,
 * libuv's pool, threads started with the process).
 */
function serviceThreadSeconds(pid: number, prefix: string): Record<string, number> {
  const groups: Record<string, number> = {
    [`${prefix} main`]: 0,
    [`${prefix} workflows`]: 0,
    [`${prefix} Rust core`]: 0,
    [`${prefix} other`]: 0,
  };
  const processStart = Number(statFields(pid)?.[19] ?? 0);
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return groups;
  }
  for (const tid of tids) {
    let comm = '';
    try {
      comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    const fields = statFields(pid, tid);
    if (!fields) continue;
    const seconds = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
    // Node 20 names every thread "node"; Node 24 names its own (MainThread, V8Worker, libuv-worker, …) and a
    // worker thread by its name.
    const group = `${prefix} ${
      Number(tid) === pid
        ? 'main'
        : /^(tokio|temporal|workflow-proces)/.test(comm)
          ? 'Rust core'
          : /^(V8Worker|libuv-worker|DelayedTaskSche|SignalInspector)/.test(comm) ||
              (comm === 'node' && Number(fields[19]) <= processStart + 2 * CLOCK_TICKS)
            ? 'other'
            : 'workflows'
    }`;
    groups[group]! += seconds;
  }
  return groups;
}

export function findPid(match: (cmdline: string) => boolean): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (match(readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' '))) return Number(entry);
    } catch {
      // gone
    }
  }
  return undefined;
}

export function postmasterPid(dataDir: string): number | undefined {
  try {
    return Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]) || undefined;
  } catch {
    return undefined;
  }
}

/** Busy CPU seconds of the whole machine (every process, other agents' too). */
function machineBusySeconds(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS;
}

export interface CpuSnapshot {
  at: number;
  /** CLOCK_MONOTONIC in µs, the clock of V8's CPU profiles in every process. */
  monotonicUs: number;
  seconds: Record<string, number>;
}

/** The service's processes (combined, or split by SERVICE_ROLES) and the prefix of their threads' columns. */
export const SERVICE_PROCESSES = [
  ['service', 'svc'],
  ['callbacks', 'cb'],
  ['worker', 'wk'],
] as const;

export function cpuSnapshot(pids: Record<string, number | undefined>): CpuSnapshot {
  const seconds: Record<string, number> = { machine: machineBusySeconds() };
  for (const [name, pid] of Object.entries(pids)) {
    if (pid) seconds[name] = cpuSeconds(pid, name === 'PostgreSQL');
  }
  for (const [name, prefix] of SERVICE_PROCESSES) {
    const pid = pids[name];
    if (pid) Object.assign(seconds, serviceThreadSeconds(pid, prefix));
  }
  const usage = process.cpuUsage();
  seconds.bench = (usage.user + usage.system) / 1e6;
  return { at: Date.now(), monotonicUs: Number(process.hrtime.bigint() / 1000n), seconds };
}

interface CpuRow {
  run: number;
  phase: string;
  wallS: number;
  /** Cores used on average, per process and for the whole machine. */
  cores: Record<string, number>;
  fromUs: number;
  toUs: number;
}

/** Every measured window of this benchmark run, in order. */
export const cpuRows: CpuRow[] = [];

export function recordCpu(run: number, name: string, from: CpuSnapshot, to: CpuSnapshot): void {
  const wallS = (to.at - from.at) / 1000;
  const cores: Record<string, number> = {};
  for (const key of Object.keys(to.seconds))
    cores[key] = (to.seconds[key]! - (from.seconds[key] ?? 0)) / wallS;
  cpuRows.push({ run, phase: name, wallS, cores, fromUs: from.monotonicUs, toUs: to.monotonicUs });
}

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string } }>;
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

function profileCategory(frame: { functionName: string; url: string }): string {
  const url = frame.url;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg) return pkg;
  if (url.includes('/src/')) return `src/${url.split('/src/')[1]}`;
  if (url.includes('workflow-bundle')) return 'workflow bundle';
  return url || `(${frame.functionName || 'native'})`;
}

/**
 * With --profile: where each thread of the service spent each measured window, from its V8 CPU profiles (files
 * `CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile`; thread 0 is the main thread). Self time by package.
 */
export function summarizeProfiles(dir: string, pid: number, run: number, processName: string): string[] {
  const lines: string[] = [];
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((f) => f.includes(`.${pid}.`) && f.endsWith('.cpuprofile'));
  } catch {
    return lines;
  }
  const profiles = files.map((file) => ({
    thread: file.split('.')[4] ?? '?',
    profile: JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile,
  }));
  lines.push(
    `\n### CPU profile of the ${processName} process, run ${run} (self time by package; threads busy ≥ 5 % of a window)\n`,
  );
  for (const row of cpuRows.filter((r) => r.run === run)) {
    for (const { thread, profile } of profiles) {
      const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
      const byCategory = new Map<string, number>();
      let at = profile.startTime;
      profile.samples.forEach((id, i) => {
        const delta = profile.timeDeltas[i] ?? 0;
        at += delta;
        if (at < row.fromUs || at > row.toUs) return;
        const category = profileCategory(nodes.get(id)!.callFrame);
        byCategory.set(category, (byCategory.get(category) ?? 0) + delta);
      });
      const windowUs = row.toUs - row.fromUs;
      const busy = [...byCategory].filter(([category]) => category !== '((idle))' && category !== '(idle)');
      const busyUs = busy.reduce((sum, [, us]) => sum + us, 0);
      if (busyUs < 0.05 * windowUs) continue;
      const top = busy
        .sort((a, b) => b[1] - a[1])
        .slice(0, 8)
        .map(([category, us]) => `${category} ${fmt((100 * us) / windowUs)} %`);
      lines.push(
        `- ${row.phase}, thread ${thread === '0' ? '0 (main)' : thread}: busy ${fmt((100 * busyUs) / windowUs)} % — ${top.join(', ')}`,
      );
    }
  }
  return lines;
}
