// `npm run bench -- services [--services 1000] [--endpoints 10] [--changes 200]`: on a fresh 2-node box,
// selectorless Services with EndpointSlices we create (real API objects), created at once: last create
// -> every load balancer programmed in NB with all its backends; beside it, in the same run, the same
// rows written in one transaction by kovn's OVSDB client alone into a scratch ovsdb-server (the
// ceiling). Then endpoint changes one at a time: slice patched -> the load balancer updated in NB,
// p50/p99, and NB transactions per change. Writes bench/results/services.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { files } from '../deploy/local/config.ts';
import { kubectl } from '../deploy/local/kubectl.ts';
import { connectKube } from '../lib/kube.ts';
import { sleep } from '../lib/exec.ts';
import { connectNb } from '../activities/nb.ts';
import { OvsdbClient } from '../ovsdb/client.ts';
import { ovnNorthboundModel } from '../ovsdb/models/ovn-nb.ts';
import type { OvnNorthboundTables } from '../ovsdb/models/ovn-nb.ts';
import { opsFor } from '../ovsdb/ops.ts';
import type { Operation } from '../ovsdb/ops.ts';
import { Sandbox } from '../ovsdb/testing/ovsdb-server.ts';
import { nbTransactions } from './lib/counters.ts';
import { CpuGroups, cpuBetween } from './lib/cpu.ts';
import { REPO, kovn, pct } from './lib/common.ts';

const NS = 'bench-svc';
const ops = opsFor<OvnNorthboundTables>();

const r1 = (x: number): number => Math.round(x * 10) / 10;

/** Runs `fn` over `items`, `n` at a time. */
async function pool<T>(items: readonly T[], n: number, fn: (x: T) => Promise<unknown>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}

// Endpoints in the two nodes' pod subnets (10.244.0.0/24 and 10.244.1.0/24): kovn leaves out addresses no node can reach.
const endpointIp = (svc: number, ep: number): string => `10.244.${svc % 2}.${10 + ((svc * 16 + ep) % 240)}`;
const slice = (i: number, eps: string[]): Record<string, unknown> => ({
  metadata: { name: `s${i}-1`, namespace: NS, labels: { 'kubernetes.io/service-name': `s${i}` } },
  addressType: 'IPv4', ports: [{ name: '', port: 8080, protocol: 'TCP' }],
  endpoints: eps.map((ip) => ({ addresses: [ip], conditions: { ready: true } })),
});

export default async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { services: { type: 'string', default: '1000' }, endpoints: { type: 'string', default: '10' }, changes: { type: 'string', default: '200' } } });
  const SERVICES = Number(values.services);
  const EPS = Number(values.endpoints);
  const CHANGES = Number(values.changes);
  console.log(`services bench: ${SERVICES} Services x ${EPS} endpoints, then ${CHANGES} endpoint changes`);
  kovn(['down']);
  kovn(['up', '--nodes', '2']);
  // Pooled connections, as client-go's: the load must not spend the machine on a TLS handshake per create.
  const { core, discovery: disc } = connectKube(files.adminKubeconfig, 'kovn-bench');
  const nb = await connectNb([`unix:${files.nbSock}`]);
  const sandbox = new Sandbox();
  try {
    await kubectl(['create', 'namespace', NS]);
    const idx = Array.from({ length: SERVICES }, (_, i) => i);
    const eps = (i: number): string[] => Array.from({ length: EPS }, (_, e) => endpointIp(i, e));
    // What "programmed" means: the Service's cluster row holds all its backends.
    const backends = new Map<string, string>();
    const programmed = (): number => {
      let n = 0;
      for (const lb of nb.cache.table('Load_Balancer').all()) {
        const want = backends.get(lb.name);
        if (want !== undefined && Object.values(lb.vips)[0] === want) n++;
      }
      return n;
    };

    const cpu = await CpuGroups.attach();
    const cpu0 = cpu.read();
    const t0 = performance.now();
    await pool(idx, 32, (i) => core.createNamespacedService({ namespace: NS, body: { metadata: { name: `s${i}` }, spec: { ports: [{ port: 80, targetPort: 8080 }] } } }));
    await pool(idx, 32, (i) => disc.createNamespacedEndpointSlice({ namespace: NS, body: slice(i, eps(i)) as never }));
    const lastCreate = performance.now();
    for (const i of idx) backends.set(`Service_${NS}/s${i}_TCP_cluster`, eps(i).map((ip) => `${ip}:8080`).sort().join(','));
    while (programmed() < SERVICES) {
      if (performance.now() - lastCreate > 30 * 60_000) throw new Error(`only ${programmed()} of ${SERVICES} programmed after 30 min`);
      await sleep(100);
    }
    const allProgrammed = (performance.now() - lastCreate) / 1000;
    const createSeconds = (lastCreate - t0) / 1000;
    // What the burst cost each component, first create to all programmed (the machine has 2 cores).
    const burstCpu = Object.fromEntries(Object.entries(cpuBetween(cpu0, cpu.read())).filter(([, v]) => v >= 0.05)
      .sort((a, b) => b[1] - a[1]).map(([k, v]): [string, number] => [k, r1(v)]));
    console.log(`  created in ${r1(createSeconds)} s; all programmed ${r1(allProgrammed)} s after the last create`);
    console.log(`  core-seconds over the ${r1(createSeconds + allProgrammed)} s burst: ${Object.entries(burstCpu).map(([k, v]) => `${k} ${v}`).join(', ')}`);

    // The ceiling: the same rows (as NB holds them now) in one transaction by kovn's client alone.
    const srv = await sandbox.standalone();
    const scratch = await OvsdbClient.connect({ endpoints: [srv.unixEndpoint], database: 'OVN_Northbound', model: ovnNorthboundModel });
    const rows = nb.cache.table('Load_Balancer').all().filter((lb) => backends.has(lb.name));
    const txn: Operation[] = [ops.insert('Load_Balancer_Group', { name: 'clusterLBGroup' }, 'g')];
    rows.forEach((lb, k) => {
      txn.push(ops.insert('Load_Balancer', { name: lb.name, protocol: lb.protocol, vips: lb.vips, options: lb.options, external_ids: lb.external_ids }, `lb${k}`));
      txn.push({ op: 'mutate', table: 'Load_Balancer_Group', where: [['name', '==', 'clusterLBGroup']], mutations: [['load_balancer', 'insert', [`lb${k}`]]] });
    });
    const c0 = performance.now();
    await scratch.transact(txn);
    const ceiling = (performance.now() - c0) / 1000;
    scratch.close();
    console.log(`  ceiling (one transaction, ${rows.length} rows): ${r1(ceiling * 1000)} ms`);

    // Endpoint changes one at a time: one endpoint of one slice replaced.
    const lat: number[] = [];
    const tx0 = await nbTransactions();
    for (let c = 0; c < CHANGES; c++) {
      const i = (c * 7) % SERVICES;
      const next = eps(i).slice(1).concat([`10.244.${i % 2}.${250 + (c % 4)}`]); // .250-.253: never an original endpoint
      const name = `Service_${NS}/s${i}_TCP_cluster`;
      const want = next.map((ip) => `${ip}:8080`).sort().join(',');
      const s = performance.now();
      await disc.replaceNamespacedEndpointSlice({ name: `s${i}-1`, namespace: NS, body: slice(i, next) as never });
      for (;;) {
        const lb = nb.cache.table('Load_Balancer').byColumn('name', name)[0];
        if (lb && Object.values(lb.vips)[0] === want) break;
        if (performance.now() - s > 60_000) throw new Error(`change ${c} (${name}) not programmed within 60 s`);
        await sleep(2);
      }
      lat.push(performance.now() - s);
      backends.set(name, want);
    }
    const txPerChange = ((await nbTransactions()) - tx0) / CHANGES;
    const change = { p50: r1(pct(lat, 50)), p99: r1(pct(lat, 99)), max: r1(Math.max(...lat)), n: lat.length };
    console.log(`  endpoint change -> NB: p50 ${change.p50} ms, p99 ${change.p99} ms, max ${change.max} ms; ${r1(txPerChange)} NB transactions per change`);

    const goal = 3 * ceiling + 20;
    const result = {
      date: new Date().toISOString(), services: SERVICES, endpoints: EPS, nodes: 2,
      createSeconds: r1(createSeconds), allProgrammedSeconds: r1(allProgrammed), ceilingSeconds: Math.round(ceiling * 1000) / 1000, burstCpuCoreSeconds: burstCpu,
      goalSeconds: r1(goal), withinGoal: allProgrammed <= goal,
      endpointChangeMs: change, changeGoalP99Ms: 500, changeWithinGoal: change.p99 < 500, nbTransactionsPerChange: r1(txPerChange),
    };
    mkdirSync(`${REPO}bench/results`, { recursive: true });
    writeFileSync(`${REPO}bench/results/services.json`, `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify(result, null, 2));
  } finally {
    nb.close();
    await sandbox.cleanup();
    kovn(['down']);
    CpuGroups.clear();
  }
}
