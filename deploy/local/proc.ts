import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { STATE, dirs } from './config.ts';
import { sleep, tail } from '../../lib/exec.ts';

/** A long-running process of the box: started in a network namespace under a supervisor, with a pidfile and a log file. */
export interface DaemonSpec {
  name: string;
  /** Network namespace to run in; the root namespace when absent. */
  netns?: string;
  cmd: string;
  args: readonly string[];
  env?: Record<string, string>;
}

export const pidFile = (name: string): string => join(dirs.pid, `${name}.pid`);
export const logFile = (name: string): string => join(dirs.log, `${name}.log`);

/** True when the process exists and is not a zombie. */
export function alive(pid: number): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return !/^State:\s+Z/m.test(status);
  } catch {
    return false;
  }
}

/**
 * Whether `pid` can be the process that `file` recorded: it started before the file was last written
 * (give or take a few seconds). A pid read from a file written before a reboot, or before its process
 * died and the kernel reused the number, names someone else's process: never signal that one.
 */
function recordedBy(pid: number, file: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const startTicks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    const bootS = Number(/^btime (\d+)/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
    // USER_HZ is 100 on Linux.
    return bootS * 1000 + startTicks * 10 <= statSync(file).mtimeMs + 5000;
  } catch {
    return false;
  }
}

/** The pid recorded for a daemon, if that process still runs. */
export function runningPid(name: string): number | undefined {
  if (!existsSync(pidFile(name))) return undefined;
  const pid = Number(readFileSync(pidFile(name), 'utf8').trim());
  if (!recordedBy(pid, pidFile(name))) return undefined;
  return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : undefined;
}

/** What a daemon's supervisor (deploy/local/supervise.sh) records in `.kovn/supervise/NAME.json`. */
export interface SupervisorState {
  /** The supervisor's pid; null once it has stopped. */
  pid: number | null;
  /** The daemon's current pid (also in `.kovn/pid/NAME.pid`); null between an exit and its restart. */
  child: number | null;
  /** Exits the supervisor answered with a restart, over the life of the box. */
  restarts: number;
  state: 'starting' | 'running' | 'backoff' | 'stopped';
  /** How the daemon last exited, e.g. "signal SIGKILL after 42.0s at 2026-...Z". */
  lastExit: string | null;
}

export const supervisorFile = (name: string): string => join(dirs.supervise, `${name}.json`);
/** Present while `kovn stop NAME` holds a daemon down. */
export const holdFile = (name: string): string => join(dirs.supervise, `${name}.held`);
const SUPERVISOR = join(import.meta.dirname, 'supervise.sh');

/** Writes a small file whole or not at all (readers never see half of it). */
export function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

export function readSupervisor(name: string): SupervisorState | undefined {
  try {
    return JSON.parse(readFileSync(supervisorFile(name), 'utf8')) as SupervisorState;
  } catch {
    return undefined;
  }
}

export function writeSupervisor(name: string, state: SupervisorState): void {
  mkdirSync(dirs.supervise, { recursive: true });
  writeAtomic(supervisorFile(name), `${JSON.stringify(state)}\n`);
}

/** The pid of the daemon's supervisor, if it runs. */
export function supervisorPid(name: string): number | undefined {
  const pid = readSupervisor(name)?.pid;
  return pid && alive(pid) && recordedBy(pid, supervisorFile(name)) ? pid : undefined;
}

export const restartsOf = (name: string): number => readSupervisor(name)?.restarts ?? 0;
export const isHeld = (name: string): boolean => existsSync(holdFile(name));

/** Names of every daemon that has (or had) a supervisor. */
export function supervisedNames(): string[] {
  if (!existsSync(dirs.supervise)) return [];
  return readdirSync(dirs.supervise).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5));
}

/**
 * Starts a daemon under a supervisor of its own, detached from this process (both outlive `kovn up`):
 * the supervisor restarts it after any exit, as systemd or kubelet would on a real node. `nsenter
 * --net` rather than `ip netns exec`: the latter gives a new mount namespace with its own /sys, where
 * kubelet finds no cgroups. Returns the supervisor's pid; the daemon's lands in its pidfile.
 */
export function startDaemon(spec: DaemonSpec): number {
  for (const d of [dirs.pid, dirs.log, dirs.supervise]) mkdirSync(d, { recursive: true });
  const running = supervisorPid(spec.name);
  if (running !== undefined) throw new Error(`${spec.name} already runs under its supervisor (pid ${running})`);
  const [cmd, args] = spec.netns
    ? ['nsenter', [`--net=/run/netns/${spec.netns}`, '--', spec.cmd, ...spec.args]]
    : [spec.cmd, [...spec.args]];
  rmSync(pidFile(spec.name), { force: true });
  const log = openSync(logFile(spec.name), 'a');
  writeFileSync(log, `\n--- ${new Date().toISOString()} ${spec.cmd} ${spec.args.join(' ')}\n`);
  const child = spawn('bash', [SUPERVISOR, STATE, spec.name, '--', cmd, ...args], {
    detached: true,
    stdio: ['ignore', log, log],
    env: { ...process.env, ...spec.env },
  });
  closeSync(log);
  if (child.pid === undefined) throw new Error(`${spec.name}: could not start its supervisor`);
  child.unref();
  // Written here too, so that nobody reads the state of an earlier supervisor meanwhile.
  writeSupervisor(spec.name, { pid: child.pid, child: null, restarts: restartsOf(spec.name), state: 'starting', lastExit: readSupervisor(spec.name)?.lastExit ?? null });
  return child.pid;
}

/** The last lines of a daemon's log, for error messages. */
export function logTail(name: string, n = 15): string {
  try {
    return tail(readFileSync(logFile(name), 'utf8'), n);
  } catch {
    return '(no log)';
  }
}

/**
 * Stops a daemon and its supervisor by pid, so that nothing restarts it: SIGTERM to the supervisor, which
 * forwards it to the daemon (and escalates to SIGKILL after 10 s: kube-apiserver can hang on TERM); then
 * whatever still runs is stopped here. Returns false when neither was running.
 */
export async function stopDaemon(name: string, timeoutMs = 10_000): Promise<boolean> {
  const sup = supervisorPid(name);
  if (sup !== undefined) {
    await stopPid(sup, timeoutMs + 5000);
    const state = readSupervisor(name);
    if (state) writeSupervisor(name, { ...state, pid: null, child: null, state: 'stopped' });
  }
  const pid = runningPid(name);
  rmSync(pidFile(name), { force: true });
  if (pid !== undefined) await stopPid(pid, timeoutMs);
  return sup !== undefined || pid !== undefined;
}

/** Tells every supervisor to restart nothing any more (`kovn down`): each exits once its daemon has. */
export function drainSupervisors(): number {
  let n = 0;
  for (const name of supervisedNames()) {
    const pid = supervisorPid(name);
    if (pid === undefined) continue;
    try {
      process.kill(pid, 'SIGUSR2');
      n++;
    } catch {
      /* exited meanwhile */
    }
  }
  return n;
}

export async function stopPid(pid: number, timeoutMs = 10_000): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + timeoutMs;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
  if (alive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    while (alive(pid)) await sleep(20);
  }
}

/** Names of every daemon that has a pidfile. */
export function daemonsWithPidfile(): string[] {
  if (!existsSync(dirs.pid)) return [];
  return readdirSync(dirs.pid).filter((f) => f.endsWith('.pid')).map((f) => f.slice(0, -4));
}

/** Processes named `comm*` whose command line mentions a path (what outlived its parent, e.g. containerd shims). */
export function pidsMentioning(path: string, comm: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (!readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith(comm)) continue;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmdline.includes(path) && alive(pid)) out.push(pid);
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

/**
 * Waits until a health check passes; fails with the daemon's name and the tail of its log when the
 * daemon exits meanwhile (its supervisor counts a restart) or its supervisor is gone, or the deadline
 * passes. A daemon that is between an exit and its restart when the wait begins is waited for.
 */
export async function waitHealthy(name: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const restarts0 = restartsOf(name);
  let delay = 50;
  for (;;) {
    if (await check()) return;
    const sup = readSupervisor(name);
    if (sup && (sup.pid === null || !alive(sup.pid))) {
      throw new Error(`${name}: its supervisor exited; last lines of ${logFile(name)}:\n${logTail(name)}`);
    }
    if ((sup?.restarts ?? 0) > restarts0) {
      throw new Error(`${name} exited during start (${sup?.lastExit ?? 'exit'}; its supervisor restarts it); ` +
        `last lines of ${logFile(name)}:\n${logTail(name)}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`${name} not healthy after ${timeoutMs / 1000}s; last lines of ${logFile(name)}:\n${logTail(name)}`);
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 500);
  }
}
