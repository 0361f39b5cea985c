// `npm run bench -- pods [N]`: N pods (default 50) created at once on 2 nodes, pod created -> Ready
// p50/p99 with kovn and, on the same box and nodes, with the reference bridge CNI plugin; kovn's CNI ADD
// duration p50/p99 and where its time goes. Writes bench/results/pods.json.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig, CoreV1Api, makeInformer } from '@kubernetes/client-node';
import type { V1Pod } from '@kubernetes/client-node';
import { dirs, files } from '../deploy/local/config.ts';
import { kubectl } from '../deploy/local/kubectl.ts';
import { bin } from '../deploy/local/tools.ts';
import { connectTemporal } from '../lib/history.ts';
import type { AttachmentResult } from '../node-agent/activities.ts';

const REPO = new URL('..', import.meta.url).pathname;

function kovn(args: string[]): void {
  const r = spawnSync(process.execPath, [`${REPO}bin/kovn.ts`, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`kovn ${args.join(' ')} failed (${r.status})`);
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? 0) : 0;
};
const stats = (xs: number[]): { p50: number; p99: number; max: number; n: number } => ({ p50: pct(xs, 50), p99: pct(xs, 99), max: Math.max(...xs), n: xs.length });

/** Creates n pods at once and measures, from one watch, the time from each pod's ADDED to its Ready. */
async function density(n: number, prefix: string): Promise<number[]> {
  const kc = new KubeConfig();
  kc.loadFromFile(files.adminKubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const informer = makeInformer<V1Pod>(kc, '/api/v1/namespaces/default/pods', () => core.listNamespacedPod({ namespace: 'default' }));
  const created = new Map<string, number>();
  const ready = new Map<string, number>();
  const seen = (p: V1Pod): void => {
    const name = p.metadata?.name ?? '';
    if (!name.startsWith(prefix)) return;
    if (!created.has(name)) created.set(name, performance.now());
    if (!ready.has(name) && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) ready.set(name, performance.now());
  };
  informer.on('add', seen);
  informer.on('update', seen);
  await informer.start();
  const items = Array.from({ length: n }, (_, i) => ({
    apiVersion: 'v1', kind: 'Pod', metadata: { name: `${prefix}${i}`, namespace: 'default' },
    spec: { nodeSelector: { 'kubernetes.io/hostname': i % 2 === 0 ? 'node-1' : 'node-2' }, terminationGracePeriodSeconds: 0,
      containers: [{ name: 'c', image: 'kovn.local/toolbox:1', imagePullPolicy: 'IfNotPresent', command: ['sleep', '3600'] }] },
  }));
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }) });
  const deadline = Date.now() + 600_000;
  while (ready.size < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await informer.stop();
  if (ready.size < n) throw new Error(`${prefix}: only ${ready.size}/${n} pods Ready after 600 s`);
  return [...ready.entries()].map(([name, t]) => (t - (created.get(name) ?? t)) / 1000);
}

/** The reference bridge plugin (host-local IPAM, a subnet per node) as the nodes' network provider. */
function installBridge(nodes: number): void {
  for (let i = 1; i <= nodes; i++) {
    const d = dirs.node(`node-${i}`);
    for (const b of ['bridge', 'host-local', 'loopback']) copyFileSync(bin(b), join(d, 'cni', 'bin', b));
    writeFileSync(join(d, 'cni', 'net.d', '10-bridge.conflist'), JSON.stringify({
      cniVersion: '1.0.0', name: 'bridge',
      plugins: [{ type: 'bridge', bridge: 'cni0', isGateway: true, ipam: { type: 'host-local', ranges: [[{ subnet: `10.245.${i}.0/24` }]] } }],
    }));
  }
}

async function cniAdds(since: Date): Promise<{ total: number[]; annotation: number[]; plug: number[]; installed: number[]; controller: number[] }> {
  const t = await connectTemporal('127.0.0.1:7233', 'kovn');
  const out = { total: [] as number[], annotation: [] as number[], plug: [] as number[], installed: [] as number[], controller: [] as number[] };
  try {
    const ts = since.toISOString();
    for await (const w of t.client.workflow.list({ query: `WorkflowType='cniAdd' AND StartTime > '${ts}' AND ExecutionStatus='Completed'` })) {
      if (w.closeTime) out.total.push(w.closeTime.getTime() - w.startTime.getTime());
      const r = (await t.client.workflow.getHandle(w.workflowId, w.runId).result()) as AttachmentResult;
      if (r.timings) {
        out.annotation.push(r.timings.annotationMs);
        out.plug.push(r.timings.plugMs);
        out.installed.push(r.timings.installedMs);
      }
    }
    for await (const w of t.client.workflow.list({ query: `WorkflowType='reconcilePod' AND StartTime > '${ts}' AND ExecutionStatus='Completed'` })) {
      if (w.closeTime) out.controller.push(w.closeTime.getTime() - w.startTime.getTime());
    }
  } finally {
    await t.close();
  }
  return out;
}

export default async function pods(args: string[]): Promise<void> {
  const n = Number(args[0] ?? 50);
  kovn(['down']);
  kovn(['up', '--nodes', '2']);
  const since = new Date();
  const withKovn = await density(n, 'kovn-');
  await new Promise((r) => setTimeout(r, 3000)); // the visibility store catches up
  const adds = await cniAdds(since);
  kovn(['down']);
  kovn(['up', '--nodes', '2', '--bare']);
  installBridge(2);
  await kubectl(['wait', '--for=condition=Ready', 'node', '--all', '--timeout=120s'], { timeoutMs: 150_000 });
  const withBridge = await density(n, 'bridge-');
  kovn(['down']);
  const result = {
    pods: n, nodes: 2,
    created_to_ready_s: { kovn: stats(withKovn), bridge: stats(withBridge) },
    kovn_cni_add_ms: stats(adds.total),
    kovn_cni_add_breakdown_ms_p50: { wait_for_annotation: pct(adds.annotation, 50), plug_veth_and_ovs_port: pct(adds.plug, 50), wait_ovn_installed: pct(adds.installed, 50) },
    kovn_cni_add_breakdown_ms_p99: { wait_for_annotation: pct(adds.annotation, 99), plug_veth_and_ovs_port: pct(adds.plug, 99), wait_ovn_installed: pct(adds.installed, 99) },
    kovn_controller_run_ms: stats(adds.controller),
  };
  console.log(JSON.stringify(result, null, 2));
  mkdirSync(`${REPO}bench/results`, { recursive: true });
  writeFileSync(`${REPO}bench/results/pods.json`, `${JSON.stringify(result, null, 2)}\n`);
}
