// `npm run bench -- box`: `kovn up` time with 2 and 4 nodes (tools cached), and the memory (RSS) and
// idle CPU of the whole stack per component over an idle window. Writes bench/results/box.json.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { status } from '../deploy/local/status.ts';
import { sleep } from '../lib/exec.ts';

const REPO = new URL('..', import.meta.url).pathname;
const TICKS = 100; // USER_HZ on Linux

function kovn(args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [`${REPO}bin/kovn.ts`, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`kovn ${args.join(' ')} failed (${r.status})`);
  return (performance.now() - t0) / 1000;
}

/** The pid and its descendants (containerd shims and pods are not counted: there are none idle). */
function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return Number(f[11]) + Number(f[12]);
}
const rssKb = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);

interface Row { component: string; rss_mb: number; idle_cpu_pct: number }

async function sample(idleSeconds: number): Promise<Row[]> {
  const s = await status();
  const comps = [...s.components, ...s.nodes.flatMap((n) => n.components)].filter((c) => c.pid !== null);
  const t0 = new Map(comps.map((c) => [c.name, cpuTicks(c.pid ?? 0)]));
  await sleep(idleSeconds * 1000);
  return comps.map((c) => ({
    component: c.name,
    rss_mb: Math.round(rssKb(c.pid ?? 0) / 102.4) / 10,
    idle_cpu_pct: Math.round(((cpuTicks(c.pid ?? 0) - (t0.get(c.name) ?? 0)) / TICKS / idleSeconds) * 1000) / 10,
  }));
}

export default async function box(args: string[]): Promise<void> {
  const idle = Number(args[0] ?? 30);
  kovn(['down']);
  const up2 = kovn(['up', '--nodes', '2']);
  const again = kovn(['up', '--nodes', '2']);
  await sleep(10_000); // let start-up work settle before measuring idle
  const rows = await sample(idle);
  const down2 = kovn(['down']);
  const up4 = kovn(['up', '--nodes', '4']);
  const down4 = kovn(['down']);
  const total = { rss_mb: Math.round(rows.reduce((a, r) => a + r.rss_mb, 0)), idle_cpu_pct: Math.round(rows.reduce((a, r) => a + r.idle_cpu_pct, 0) * 10) / 10 };
  console.log('\ncomponent                      RSS MB   idle CPU %');
  for (const r of rows) console.log(`${r.component.padEnd(30)} ${String(r.rss_mb).padStart(6)} ${String(r.idle_cpu_pct).padStart(10)}`);
  console.log(`${'TOTAL (2 nodes)'.padEnd(30)} ${String(total.rss_mb).padStart(6)} ${String(total.idle_cpu_pct).padStart(10)}`);
  console.log(`\nup 2 nodes: ${up2.toFixed(1)} s; second up: ${again.toFixed(1)} s; down: ${down2.toFixed(1)} s; up 4 nodes: ${up4.toFixed(1)} s; down: ${down4.toFixed(1)} s`);
  mkdirSync(`${REPO}bench/results`, { recursive: true });
  writeFileSync(`${REPO}bench/results/box.json`, `${JSON.stringify({
    up_2_nodes_s: up2, second_up_s: again, down_2_nodes_s: down2, up_4_nodes_s: up4, down_4_nodes_s: down4,
    idle_window_s: idle, total_2_nodes: total, components: rows,
  }, null, 2)}\n`);
}
