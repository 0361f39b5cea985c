import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { REPO, STATE } from '../../deploy/local/config.ts';
import type { BoxStatus, ComponentStatus } from '../../deploy/local/status.ts';

export interface Cli {
  code: number | null;
  out: string;
}

/** Runs `kovn ...` as a user would (a separate process), capturing everything it prints. */
export function kovn(args: readonly string[], env: Record<string, string> = {}): Promise<Cli> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [`${REPO}/bin/kovn.ts`, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('close', (code) => resolve({ code, out }));
  });
}

/** Everything on this machine that belongs to the box: processes, namespaces, mounts, sockets. */
export function footprint(): { processes: string[]; namespaces: string[]; mounts: string[]; links: string[] } {
  const processes: string[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8').replaceAll('\0', ' ');
      const state = /^State:\s+(\w)/m.exec(readFileSync(`/proc/${e}/status`, 'utf8'))?.[1];
      if (cmd.includes(STATE) && state !== 'Z') processes.push(`${e} ${cmd.slice(0, 120)}`);
    } catch {
      /* gone */
    }
  }
  let namespaces: string[] = [];
  try {
    namespaces = readdirSync('/run/netns').filter((n) => n.startsWith('kovn-'));
  } catch {
    /* no /run/netns */
  }
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(STATE));
  const links = readdirSync('/sys/class/net');
  return { processes, namespaces, mounts, links };
}

/** Polls until `fn` gives a value (not undefined or false), or fails naming what it waited for. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A component as `kovn status --json` reports it; undefined when it is not listed. */
export async function componentStatus(name: string): Promise<ComponentStatus | undefined> {
  const s = JSON.parse((await kovn(['status', '--json'])).out) as BoxStatus;
  return [...s.components, ...s.nodes.flatMap((n) => n.components)].find((x) => x.name === name);
}

/** `kovn down`, then nothing of the box is left: no process, namespace or mount. Returns what is there. */
export async function downLeavesNothing(): Promise<ReturnType<typeof footprint>> {
  const d = await kovn(['down']);
  assert.equal(d.code, 0, d.out);
  const left = footprint();
  assert.deepEqual(left.processes, []);
  assert.deepEqual(left.namespaces, []);
  assert.deepEqual(left.mounts, []);
  return left;
}
