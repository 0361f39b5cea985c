// `npm run bench -- pods [--runs 3] [--scales 50,100] [--paced 60]`: pods created at once on 2 nodes
// (each scale), then a paced run at half the bridge plugin's measured sustainable rate that deletes pods
// as it goes, with kovn and with the reference bridge CNI plugin on the same box, interleaved run by run
// (bridge first in odd runs). Per window: created -> done (Ready; with kovn also annotated, its port up),
// the core-seconds of every component (cgroup cpuacct, so short-lived plugin processes count), apiserver
// requests and NB transactions per pod; with kovn also its CNI ADD durations and the Temporal steps per
// pod. Medians over the runs go to bench/results/pods.json.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { makeInformer } from '@kubernetes/client-node';
import type { CoreV1Api } from '@kubernetes/client-node';
import { connectKube } from '../lib/kube.ts';
import type { V1Pod } from '@kubernetes/client-node';
import { dirs, files } from '../deploy/local/config.ts';
import { kubectl } from '../deploy/local/kubectl.ts';
import { bin } from '../deploy/local/tools.ts';
import { nodePaths } from '../deploy/local/actions/node.ts';
import { POD_NETWORKS } from '../lib/annotations.ts';
import { run, sleep } from '../lib/exec.ts';
import { connectTemporal } from '../lib/history.ts';
import type { AttachmentResult } from '../node-agent/activities.ts';
import { CpuGroups, cpuBetween } from './lib/cpu.ts';
import { apiRequests, nbTransactions, perPod, temporalSteps } from './lib/counters.ts';
import { REPO, kovn, pct } from './lib/common.ts';

const NODES = 2;
type Plugin = 'kovn' | 'bridge';


const nbctl = (args: string[]): Promise<string> => run('ovn-nbctl', [`--db=unix:${files.nbSock}`, ...args]);
const r2 = (x: number): number => Math.round(x * 100) / 100;
const stats = (xs: number[]) => ({ p50: r2(pct(xs, 50)), p99: r2(pct(xs, 99)), max: r2(Math.max(...xs)), n: xs.length });
const median = (xs: number[]): number => pct(xs, 50);

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

/** Each pod's create and done times (ms), from one watch; done = Ready, and for kovn annotated too. */
class Pods {
  readonly created = new Map<string, number>();
  readonly done = new Map<string, number>();
  readonly core: CoreV1Api;
  readonly #stop: () => Promise<void>;

  private constructor(core: CoreV1Api, stop: () => Promise<void>) {
    this.core = core;
    this.#stop = stop;
  }

  static async watch(plugin: Plugin): Promise<Pods> {
    // Pooled connections, as client-go's (a TLS handshake per request would load the apiserver).
    const { kc, core } = connectKube(files.adminKubeconfig, 'kovn-bench');
    const informer = makeInformer<V1Pod>(kc, '/api/v1/namespaces/default/pods', () => core.listNamespacedPod({ namespace: 'default' }));
    const self = new Pods(core, () => informer.stop());
    const seen = (p: V1Pod): void => {
      const name = p.metadata?.name ?? '';
      if (!self.created.has(name) || self.done.has(name)) return;
      const ready = p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      if (ready && (plugin === 'bridge' || p.metadata?.annotations?.[POD_NETWORKS])) self.done.set(name, performance.now());
    };
    informer.on('add', seen);
    informer.on('update', seen);
    await informer.start();
    return self;
  }

  async create(name: string, i: number): Promise<void> {
    this.created.set(name, performance.now());
    await this.core.createNamespacedPod({ namespace: 'default', body: {
      metadata: { name }, spec: { nodeSelector: { 'kubernetes.io/hostname': i % 2 === 0 ? 'node-1' : 'node-2' }, terminationGracePeriodSeconds: 0,
        containers: [{ name: 'c', image: 'kovn.local/toolbox:1', imagePullPolicy: 'IfNotPresent', command: ['sleep', '3600'] }] },
    } });
  }

  async remove(name: string): Promise<void> {
    await this.core.deleteNamespacedPod({ namespace: 'default', name, gracePeriodSeconds: 0 });
  }

  async waitDone(names: string[], timeoutMs = 600_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (names.some((n) => !this.done.has(n))) {
      if (Date.now() > deadline) throw new Error(`only ${names.filter((n) => this.done.has(n)).length}/${names.length} pods done after ${timeoutMs / 1000} s`);
      await sleep(100);
    }
  }

  readySeconds(names: string[]): number[] {
    return names.map((n) => ((this.done.get(n) ?? 0) - (this.created.get(n) ?? 0)) / 1000);
  }

  stop(): Promise<void> {
    return this.#stop();
  }
}

/**
 * Deletes every pod and waits until the nodes have stopped every sandbox (a forced delete returns
 * before kubelet's CNI DELs) and kovn's runs have closed: the next window starts on a quiet box.
 */
async function deleteAll(prefix: string): Promise<void> {
  await kubectl(['delete', 'pods', '--all', '--grace-period=0', '--force', '--wait=true'], { timeoutMs: 300_000 });
  const deadline = Date.now() + 180_000;
  for (let i = 1; i <= NODES; i++) {
    const sock = `unix://${nodePaths(i).containerdSock}`;
    // Stopped is torn down (CNI DEL done); kubelet's GC removes the sandbox a minute or so later, with a DEL that finds nothing left.
    // The bench's own pods only: kube-system's (CoreDNS) keep running.
    while ((await run(bin('crictl'), ['-r', sock, 'pods', '--state', 'ready', '--namespace', 'default', '-q'], { timeoutMs: 15_000 })).trim() !== '') {
      if (Date.now() > deadline) throw new Error(`node-${i} still has running sandboxes 180 s after the pods' deletion`);
      await sleep(500);
    }
  }
  if (prefix.startsWith('kovn')) await waitRunsClosed(new Date(0), 120_000);
}

/** Until no kovn run started since `since` is still open (the stack is quiet again). */
async function waitRunsClosed(since: Date, timeoutMs = 120_000): Promise<void> {
  const t = await connectTemporal('127.0.0.1:7233', 'kovn');
  try {
    const deadline = Date.now() + timeoutMs;
    const q = `ExecutionStatus='Running' AND StartTime > '${since.toISOString()}' AND WorkflowType IN ('reconcilePod','cniAdd','cniDel','sweepNode')`;
    while ((await t.client.workflow.count(q)).count > 0) {
      if (Date.now() > deadline) throw new Error(`kovn runs still open after ${timeoutMs / 1000} s`);
      await sleep(500);
    }
  } finally {
    await t.close();
  }
}

interface Window { plugin: Plugin; pods: number; ready_s: ReturnType<typeof stats>; cpu_core_s_per_pod: number; cpu_core_s_by_component: Record<string, number>;
  api_requests_per_pod: number; nb_transactions_per_pod: number; kovn?: Record<string, unknown> }

/** Runs `load` (which creates pods and returns their names once done) and reads every counter around it. */
async function measure(plugin: Plugin, cpu: CpuGroups, load: () => Promise<string[]>, pods: Pods): Promise<Window> {
  const since = new Date();
  const [c0, a0, n0] = [cpu.read(), await apiRequests(), plugin === 'kovn' ? await nbTransactions() : 0];
  const names = await load();
  if (plugin === 'kovn') {
    await waitRunsClosed(since);
    const down = (await nbctl(['--bare', '--columns=name,up', 'find', 'Logical_Switch_Port', 'external_ids:pod=true'])).split('\n\n')
      .map((b) => b.trim().split('\n')).filter(([name, up]) => names.includes((name ?? '').replace(/^default_/, '')) && up !== 'true');
    if (down.length) throw new Error(`ports not up: ${down.map(([n]) => n).join(', ')}`);
  }
  const [c1, a1, n1] = [cpu.read(), await apiRequests(), plugin === 'kovn' ? await nbTransactions() : 0];
  const byComponent: Record<string, number> = Object.fromEntries(Object.entries(cpuBetween(c0, c1)).map(([k, v]): [string, number] => [k, r2(v)]).sort((a, b) => b[1] - a[1]));
  const total = Object.values(cpuBetween(c0, c1)).reduce((a, b) => a + b, 0);
  const w: Window = {
    plugin, pods: names.length, ready_s: stats(pods.readySeconds(names)), cpu_core_s_per_pod: Math.round((total / names.length) * 1000) / 1000,
    cpu_core_s_by_component: byComponent, api_requests_per_pod: r2((a1 - a0) / names.length), nb_transactions_per_pod: r2((n1 - n0) / names.length),
  };
  if (plugin === 'kovn') {
    await sleep(3000); // the visibility store catches up
    const t = await connectTemporal('127.0.0.1:7233', 'kovn');
    try {
      const adds: number[] = []; const wait: number[] = []; const plug: number[] = []; const inst: number[] = [];
      for await (const x of t.client.workflow.list({ query: `WorkflowType='cniAdd' AND StartTime > '${since.toISOString()}' AND ExecutionStatus='Completed'` })) {
        if (x.closeTime) adds.push(x.closeTime.getTime() - x.startTime.getTime());
        const r = (await t.client.workflow.getHandle(x.workflowId, x.runId).result()) as AttachmentResult;
        if (r.timings) { wait.push(r.timings.annotationMs); plug.push(r.timings.plugMs); inst.push(r.timings.installedMs); }
      }
      const steps = await temporalSteps(t.client, since);
      w.kovn = {
        cni_add_ms: stats(adds),
        cni_add_breakdown_ms_p50: { address_and_port: pct(wait, 50), plug_veth_and_ovs_port: pct(plug, 50), wait_ovn_installed: pct(inst, 50) },
        cni_add_breakdown_ms_p99: { address_and_port: pct(wait, 99), plug_veth_and_ovs_port: pct(plug, 99), wait_ovn_installed: pct(inst, 99) },
        temporal_steps_per_pod: { controller: perPod(steps.controller, names.length), node: perPod(steps.node, names.length) },
      };
    } finally {
      await t.close();
    }
  }
  return w;
}

async function burst(pods: Pods, n: number, prefix: string): Promise<string[]> {
  const names = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
  await Promise.all(names.map((name, i) => pods.create(name, i)));
  await pods.waitDone(names);
  return names;
}

/** `rate` pods a second for `seconds`, the oldest done pod deleted whenever more than `level` exist. */
async function paced(pods: Pods, rate: number, seconds: number, level: number, prefix: string): Promise<string[]> {
  const names: string[] = [];
  const live: string[] = [];
  const t0 = performance.now();
  for (let i = 0; performance.now() - t0 < seconds * 1000; i++) {
    const name = `${prefix}${i}`;
    names.push(name);
    live.push(name);
    void pods.create(name, i).catch((err: unknown) => console.error(`create ${name}: ${String(err)}`));
    while (live.length > level && pods.done.has(live[0] ?? '')) void pods.remove(live.shift() ?? '').catch(() => undefined);
    const next = t0 + ((i + 1) * 1000) / rate;
    await sleep(Math.max(0, next - performance.now()));
  }
  await pods.waitDone(names);
  return names;
}

async function boxUp(plugin: Plugin): Promise<void> {
  kovn(['down']);
  CpuGroups.clear();
  if (plugin === 'kovn') kovn(['up', '--nodes', String(NODES)]);
  else {
    kovn(['up', '--nodes', String(NODES), '--bare']);
    installBridge(2);
    await kubectl(['wait', '--for=condition=Ready', 'node', '--all', '--timeout=120s'], { timeoutMs: 150_000 });
  }
  await sleep(5000); // start-up work settles before the first window
}

export default async function pods(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: {
    runs: { type: 'string', default: '3' }, scales: { type: 'string', default: '50,100' }, paced: { type: 'string', default: '60' },
    // Adds this many runs to the recorded results (their scales and paced rate), for a benchmark whose run broke.
    more: { type: 'string' },
  } });
  const windows: (Window & { run: number; window: string })[] = [];
  const failed: { run: number; plugin: Plugin; error: string }[] = [];
  let [first, runs, scales, pacedS, rate] = [0, Number(values.runs), values.scales.split(',').map(Number), Number(values.paced), 0];
  if (values.more) {
    const was = JSON.parse(readFileSync(`${REPO}bench/results/pods.json`, 'utf8')) as {
      runs: number; scales: number[]; paced: { seconds: number; bridge_sustainable_pods_per_s: number }; windows: typeof windows; failed: typeof failed;
    };
    windows.push(...was.windows);
    failed.push(...was.failed);
    [first, scales, pacedS, rate] = [was.runs, was.scales, was.paced.seconds, was.paced.bridge_sustainable_pods_per_s];
    runs = was.runs + Number(values.more);
  }
  for (let run = first; run < runs; run++) {
    for (const plugin of (run % 2 === 0 ? ['bridge', 'kovn'] : ['kovn', 'bridge']) as Plugin[]) {
      await boxUp(plugin);
      const cpu = await CpuGroups.attach();
      const pods = await Pods.watch(plugin);
      try {
        for (const n of scales) {
          const prefix = `${plugin}-${n}-`;
          const w = await measure(plugin, cpu, () => burst(pods, n, prefix), pods);
          if (plugin === 'bridge' && run === 0 && n === Math.max(...scales)) {
            // Sustainable: all pods of the largest burst done, over the time from the first create.
            const names = [...pods.created.keys()].filter((x) => x.startsWith(prefix));
            const span = (Math.max(...names.map((x) => pods.done.get(x) ?? 0)) - Math.min(...names.map((x) => pods.created.get(x) ?? 0))) / 1000;
            rate = n / span;
          }
          windows.push({ ...w, run, window: `burst-${n}` });
          console.log(`run ${run + 1} ${plugin} burst ${n}: ready p50 ${w.ready_s.p50} s p99 ${w.ready_s.p99} s, ${w.cpu_core_s_per_pod} core-s/pod`);
          await deleteAll(prefix);
        }
        if (pacedS > 0 && rate > 0) {
          const w = await measure(plugin, cpu, () => paced(pods, rate / 2, pacedS, 20, `${plugin}-paced-`), pods);
          windows.push({ ...w, run, window: 'paced' });
          console.log(`run ${run + 1} ${plugin} paced at ${r2(rate / 2)}/s: ready p50 ${w.ready_s.p50} s p99 ${w.ready_s.p99} s, ${w.cpu_core_s_per_pod} core-s/pod`);
          await deleteAll(`${plugin}-paced-`);
        }
      } catch (err) {
        // A run that broke (the box's Temporal lost its shard under load, say) is reported, not hidden;
        // the windows measured before it stay, and the next run starts on a new box.
        failed.push({ run, plugin, error: causes(err) });
        console.error(`run ${run + 1} ${plugin} failed: ${causes(err)}`, err);
      } finally {
        await pods.stop();
        kovn(['down']);
        CpuGroups.clear();
        write(windows, failed, { runs, scales, pacedS, rate });
      }
    }
  }
  console.log(JSON.stringify(write(windows, failed, { runs, scales, pacedS, rate }), null, 2));
}

/** An error with its chain of causes ("fetch failed" alone does not say which connection failed, or why). */
function causes(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e !== undefined && parts.length < 5; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code;
    if (!(e instanceof Error)) {
      parts.push(typeof e === 'string' ? e : JSON.stringify(e));
      break;
    }
    parts.push(`${e.message}${typeof code === 'string' ? ` (${code})` : ''}`);
  }
  return parts.join(': ');
}

/** Medians over the runs so far, written after every run so an aborted benchmark keeps what it measured. */
function write(windows: (Window & { run: number; window: string })[], failed: unknown[], o: { runs: number; scales: number[]; pacedS: number; rate: number }): Record<string, unknown> {
  const { runs, scales, pacedS, rate } = o;
  const summary: Record<string, unknown> = {};
  for (const win of [...new Set(windows.map((w) => w.window))]) {
    const of = (p: Plugin) => windows.filter((w) => w.window === win && w.plugin === p);
    const k = of('kovn'); const b = of('bridge');
    const m = (ws: Window[], f: (w: Window) => number) => r2(median(ws.map(f)));
    const addMs = (w: Window, q: 'p50' | 'p99') => (w.kovn?.cni_add_ms as { p50: number; p99: number } | undefined)?.[q] ?? NaN;
    summary[win] = {
      runs: k.length,
      created_to_done_s_p50: { kovn: m(k, (w) => w.ready_s.p50), bridge: m(b, (w) => w.ready_s.p50) },
      created_to_done_s_p99: { kovn: m(k, (w) => w.ready_s.p99), bridge: m(b, (w) => w.ready_s.p99) },
      p99_ratio_kovn_to_bridge: r2(median(k.map((w) => w.ready_s.p99)) / median(b.map((w) => w.ready_s.p99))),
      kovn_cni_add_ms: { p50: m(k, (w) => addMs(w, 'p50')), p99: m(k, (w) => addMs(w, 'p99')) },
      cpu_core_s_per_pod: { kovn: m(k, (w) => w.cpu_core_s_per_pod), bridge: m(b, (w) => w.cpu_core_s_per_pod) },
      kovn_extra_cpu_core_s_per_pod: r2(median(k.map((w) => w.cpu_core_s_per_pod)) - median(b.map((w) => w.cpu_core_s_per_pod))),
      api_requests_per_pod: { kovn: m(k, (w) => w.api_requests_per_pod), bridge: m(b, (w) => w.api_requests_per_pod) },
      kovn_nb_transactions_per_pod: m(k, (w) => w.nb_transactions_per_pod),
    };
  }
  const result = { nodes: NODES, runs, scales, paced: { seconds: pacedS, pods_per_s: r2(rate / 2), level: 20, bridge_sustainable_pods_per_s: r2(rate) }, summary, failed, windows };
  mkdirSync(`${REPO}bench/results`, { recursive: true });
  writeFileSync(`${REPO}bench/results/pods.json`, `${JSON.stringify(result, null, 2)}\n`);
  return summary;
}
