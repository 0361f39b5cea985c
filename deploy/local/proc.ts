import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dirs } from './config.ts';
import { sleep, tail } from '../../lib/exec.ts';

/** A long-running process of the box: started in a network namespace, with a pidfile and a log file. */
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

/** The pid recorded for a daemon, if that process still runs. */
export function runningPid(name: string): number | undefined {
  if (!existsSync(pidFile(name))) return undefined;
  const pid = Number(readFileSync(pidFile(name), 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : undefined;
}

/**
 * Starts a daemon detached from this process (it outlives `kovn up`). `nsenter --net` rather than
 * `ip netns exec`: the latter gives a new mount namespace with its own /sys, where kubelet finds no cgroups.
 */
export function startDaemon(spec: DaemonSpec): number {
  mkdirSync(dirs.pid, { recursive: true });
  mkdirSync(dirs.log, { recursive: true });
  const [cmd, args] = spec.netns
    ? ['nsenter', [`--net=/run/netns/${spec.netns}`, '--', spec.cmd, ...spec.args]]
    : [spec.cmd, [...spec.args]];
  const log = openSync(logFile(spec.name), 'a');
  writeFileSync(log, `\n--- ${new Date().toISOString()} ${spec.cmd} ${spec.args.join(' ')}\n`);
  const child = spawn(cmd, args, {
    detached: true,
    stdio: ['ignore', log, log],
    env: { ...process.env, ...spec.env },
  });
  closeSync(log);
  if (child.pid === undefined) throw new Error(`${spec.name}: could not start ${spec.cmd}`);
  child.unref();
  writeFileSync(pidFile(spec.name), `${child.pid}\n`);
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

/** Stops a daemon by pid: SIGTERM, then SIGKILL after a timeout (kube-apiserver can hang on TERM). */
export async function stopDaemon(name: string, timeoutMs = 10_000): Promise<boolean> {
  const pid = runningPid(name);
  rmSync(pidFile(name), { force: true });
  if (pid === undefined) return false;
  await stopPid(pid, timeoutMs);
  return true;
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
 * process dies or the deadline passes.
 */
export async function waitHealthy(name: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 50;
  for (;;) {
    if (await check()) return;
    if (existsSync(pidFile(name)) && runningPid(name) === undefined) {
      throw new Error(`${name} exited during start; last lines of ${logFile(name)}:\n${logTail(name)}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`${name} not healthy after ${timeoutMs / 1000}s; last lines of ${logFile(name)}:\n${logTail(name)}`);
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 500);
  }
}
