/**
 * CPU per component, by cgroup (v1 cpuacct): each daemon of the box and its supervisor are moved into a
 * group of their own, so whatever they start later (the CNI plugin processes containerd runs, a restarted
 * daemon) is counted with them, short-lived processes included.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '../../deploy/local/status.ts';

const ROOT = '/sys/fs/cgroup/cpuacct';
const BENCH = join(ROOT, 'kovn-bench');

/** One group per component, named after it; the node's number dropped so nodes add up (kubelet, ...). */
export class CpuGroups {
  readonly #groups: string[];

  private constructor(groups: string[]) {
    this.#groups = groups;
  }

  static async attach(): Promise<CpuGroups> {
    if (!existsSync(join(ROOT, 'cpuacct.usage'))) throw new Error(`no cgroup v1 cpuacct hierarchy at ${ROOT}`);
    CpuGroups.clear();
    const s = await status();
    const comps = [...s.components, ...s.nodes.flatMap((n) => n.components)];
    const groups: string[] = [];
    for (const c of comps) {
      if (c.pid === null) continue;
      const dir = join(BENCH, c.name);
      mkdirSync(dir, { recursive: true });
      // The supervisor first: a daemon it restarts during the run lands in the same group.
      for (const pid of [c.supervisor, c.pid]) if (pid) writeFileSync(join(dir, 'cgroup.procs'), `${pid}\n`);
      groups.push(c.name);
    }
    return new CpuGroups(groups);
  }

  /** Core-seconds used so far, per component. */
  read(): Map<string, number> {
    return new Map(this.#groups.map((g) => [g, Number(readFileSync(join(BENCH, g, 'cpuacct.usage'), 'utf8')) / 1e9]));
  }

  /** Moves whatever is left back to the root group and removes the groups (after `kovn down`, nothing is). */
  static clear(): void {
    if (!existsSync(BENCH)) return;
    for (const g of readdirSync(BENCH, { withFileTypes: true }).filter((d) => d.isDirectory())) {
      const dir = join(BENCH, g.name);
      for (const pid of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
        try { writeFileSync(join(ROOT, 'cgroup.procs'), `${pid}\n`); } catch { /* gone meanwhile */ }
      }
      rmdirSync(dir);
    }
    rmdirSync(BENCH);
  }
}

/** What a component is, across nodes: `node-2-kubelet` -> `kubelet`; forwarders together. */
export const componentOf = (name: string): string => (name.startsWith('fwd-') ? 'port forwarders' : name.replace(/^node-\d+-/, ''));

/** Per-component core-seconds between two reads, summed across nodes. */
export function cpuBetween(a: Map<string, number>, b: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [g, v] of b) {
    const k = componentOf(g);
    out[k] = (out[k] ?? 0) + v - (a.get(g) ?? 0);
  }
  return out;
}
