// `npm run bench -- netpol [--namespaces 20] [--pods 5] [--policies 10] [--restart 1000]`: on a fresh
// 2-node box, namespaces of pods with policies created one at a time (half with ipBlock except): policy
// created -> enforced (its rows in NB and its pod in the namespace's deny, then every chassis caught up:
// `ovn-nbctl --wait=hv sync`),
// p50/p99 with and without except; a probe per namespace confirms the verdict. Then policies up to
// --restart in all, and a controller killed and restarted: time to its first sync, the runs it started
// and the NB transactions it made. Writes bench/results/netpol.json.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { files } from '../deploy/local/config.ts';
import { kubectl } from '../deploy/local/kubectl.ts';
import { logFile, runningPid } from '../deploy/local/proc.ts';
import { connectKube } from '../lib/kube.ts';
import { run, sleep } from '../lib/exec.ts';
import { connectTemporal } from '../lib/history.ts';
import { connectNb } from '../activities/nb.ts';
import { denyPortGroup } from '../activities/translate/network-policy.ts';
import { nbTransactions } from './lib/counters.ts';
import { REPO, kovn, pct } from './lib/common.ts';

const r1 = (x: number): number => Math.round(x * 10) / 10;

/** Runs `fn` over `items`, `n` at a time. */
async function pool<T>(items: readonly T[], n: number, fn: (x: T) => Promise<unknown>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}

const nsName = (i: number): string => `np-${i}`;
/** The pod policy i selects: p0 is policy 0's alone. */
const targetPod = (i: number, pods: number): string => `p${i === 0 ? 0 : 1 + ((i - 1) % (pods - 1))}`;

/**
 * The i-th policy of a namespace: pod selectors, namespace selectors, ports and ranges; odd ones an
 * ipBlock with except. Policy 0 isolates pod p0, letting in only p1 on port 80 (the probe's verdict); the
 * others select p1..p4.
 */
function policy(ns: number, i: number, pods: number): Record<string, unknown> {
  // p0 is policy 0's alone: the probe's verdict is that policy's.
  const target = { matchLabels: { app: targetPod(i, pods) } };
  const rules = i === 0
    ? [{ from: [{ podSelector: { matchLabels: { app: 'p1' } } }], ports: [{ port: 80 }] }]
    : i % 2
      ? [{ from: [{ ipBlock: { cidr: '10.244.0.0/16', except: [`10.244.${i % 2}.${16 + i}/28`, `10.244.${(i + 1) % 2}.${64 + i}/30`] } }], ports: [{ port: 80 }, { port: 8000, endPort: 8100 }] }]
      : [{ from: [{ namespaceSelector: { matchLabels: { team: `t${(ns + i) % 5}` } }, podSelector: { matchLabels: { app: `p${(i + 1) % pods}` } } }], ports: [{ port: 80 }, { protocol: 'UDP', port: 53 }] }];
  // The typed client's name for `from` is `_from` (it drops a `from` key without a word).
  const ingress = rules.map(({ from, ports }) => ({ _from: from, ports }));
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: `pol-${i}`, namespace: nsName(ns) }, spec: { podSelector: target, policyTypes: ['Ingress'], ingress } };
}

export default async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { namespaces: { type: 'string', default: '20' }, pods: { type: 'string', default: '5' }, policies: { type: 'string', default: '10' }, restart: { type: 'string', default: '1000' } } });
  const NSS = Number(values.namespaces);
  const PODS = Number(values.pods);
  const POLICIES = Number(values.policies);
  const RESTART = Number(values.restart);
  console.log(`netpol bench: ${NSS} namespaces x ${PODS} pods, ${POLICIES} policies each one at a time, then ${RESTART} policies and a controller restart`);
  kovn(['down']);
  kovn(['up', '--nodes', '2']);
  const { networking } = connectKube(files.adminKubeconfig, 'kovn-bench');
  const nb = await connectNb([`unix:${files.nbSock}`]);
  try {
    const items = Array.from({ length: NSS }, (_, n) => [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: nsName(n), labels: { team: `t${n % 5}` } } },
      ...Array.from({ length: PODS }, (_, p) => ({
        apiVersion: 'v1', kind: 'Pod', metadata: { name: `p${p}`, namespace: nsName(n), labels: { app: `p${p}` } },
        spec: { terminationGracePeriodSeconds: 0, containers: [{ name: 'c', image: 'kovn.local/toolbox:1', imagePullPolicy: 'IfNotPresent', command: ['httpd', '-f', '-p', '80', '-h', '/var/www'] }] },
      })),
    ]).flat();
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }), timeoutMs: 120_000 });
    await kubectl(['wait', '--for=condition=Ready', 'pod', '--all', '-A', '--timeout=600s'], { timeoutMs: 620_000 });
    console.log(`  ${NSS * PODS} pods Ready`);

    const hasRows = (ns: string, name: string): boolean => nb.cache.table('Port_Group').byExternalId('k8s.ovn.org/name', `${ns}/${name}`).length > 0;
    // Enforced in NB: the policy's rows, and its pod in the namespace's deny (the isolation itself).
    const isolated = (ns: string, pod: string): boolean => {
      const lsp = nb.cache.table('Logical_Switch_Port').byIndex({ name: `${ns}_${pod}` });
      const deny = nb.cache.table('Port_Group').byIndex({ name: denyPortGroup(ns, 'Ingress') });
      return !!lsp && !!deny?.ports.includes(lsp._uuid);
    };
    const enforced: { except: number[]; plain: number[] } = { except: [], plain: [] };
    for (let i = 0; i < POLICIES; i++) {
      for (let n = 0; n < NSS; n++) {
        const body = policy(n, i, PODS);
        const t0 = performance.now();
        await networking.createNamespacedNetworkPolicy({ namespace: nsName(n), body: body });
        while (!hasRows(nsName(n), `pol-${i}`) || !isolated(nsName(n), targetPod(i, PODS))) {
          if (performance.now() - t0 > 60_000) throw new Error(`${nsName(n)}/pol-${i}: no rows in NB within 60 s`);
          await sleep(2);
        }
        // Every chassis has the ACLs once hv_cfg reaches the nb_cfg this bump sets.
        await run('ovn-nbctl', [`--db=unix:${files.nbSock}`, '--wait=hv', '--timeout=60', 'sync']);
        (i % 2 ? enforced.except : enforced.plain).push(performance.now() - t0);
      }
    }
    const stat = (xs: number[]) => ({ p50: r1(pct(xs, 50)), p99: r1(pct(xs, 99)), max: r1(Math.max(...xs)), n: xs.length });
    const withExcept = stat(enforced.except);
    const withoutExcept = stat(enforced.plain);
    console.log(`  created -> enforced: without except p50 ${withoutExcept.p50} / p99 ${withoutExcept.p99} ms; with except p50 ${withExcept.p50} / p99 ${withExcept.p99} ms`);

    // A probe per namespace: p1 reaches p0 on 80, p2 does not.
    const ip = async (ns: string, pod: string): Promise<string> => (JSON.parse(await kubectl(['-n', ns, 'get', 'pod', pod, '-o', 'json'])) as { status: { podIP: string } }).status.podIP;
    const reach = async (ns: string, from: string, to: string): Promise<boolean> =>
      (await kubectl(['-n', ns, 'exec', from, '--', 'sh', '-c', `timeout 2 wget -q -O - http://${to}/ >/dev/null && echo ok || true`]).catch(() => '')).includes('ok');
    let probesRight = 0;
    await pool(Array.from({ length: NSS }, (_, n) => nsName(n)), 4, async (ns) => {
      const p0 = await ip(ns, 'p0');
      if ((await reach(ns, 'p1', p0)) && !(await reach(ns, 'p2', p0))) probesRight++;
    });
    console.log(`  probes: ${probesRight} of ${NSS} namespaces give the expected verdict (p1 -> p0 allowed, p2 -> p0 denied)`);

    // Up to RESTART policies, then a controller killed and restarted with nothing changed.
    const more = Array.from({ length: Math.max(0, RESTART - NSS * POLICIES) }, (_, k) => ({ n: k % NSS, i: POLICIES + Math.floor(k / NSS) }));
    await pool(more, 16, ({ n, i }) => networking.createNamespacedNetworkPolicy({ namespace: nsName(n), body: policy(n, i, PODS) }));
    const total = NSS * POLICIES + more.length;
    const allWritten = (): boolean => more.every(({ n, i }) => hasRows(nsName(n), `pol-${i}`));
    for (const t0 = performance.now(); !allWritten(); await sleep(100)) {
      if (performance.now() - t0 > 10 * 60_000) throw new Error(`not all ${total} policies written within 10 min`);
    }
    await sleep(5_000); // the runs of the burst finish
    const tx0 = await nbTransactions();
    const log = logFile('kovn-controller');
    const logBefore = readFileSync(log, 'utf8').length;
    const pid = runningPid('kovn-controller');
    if (!pid) throw new Error('kovn-controller is not running');
    const killedAt = new Date();
    const k0 = performance.now();
    process.kill(pid, 'SIGKILL');
    let firstSync = '';
    while (!(firstSync = /first sync: .*/.exec(readFileSync(log, 'utf8').slice(logBefore))?.[0] ?? '')) {
      if (performance.now() - k0 > 120_000) throw new Error('the restarted controller did not finish its first sync within 120 s');
      await sleep(50);
    }
    const convergedSeconds = (performance.now() - k0) / 1000;
    await sleep(10_000); // anything it started would be writing by now
    const restartNbWrites = (await nbTransactions()) - tx0;
    const t = await connectTemporal(`127.0.0.1:${process.env.KOVN_TEMPORAL_PORT ?? 7233}`, 'kovn');
    const restartRuns: string[] = [];
    try {
      for await (const w of t.client.workflow.list({ query: `StartTime > '${killedAt.toISOString()}'` })) restartRuns.push(w.workflowId);
    } finally {
      await t.close();
    }
    console.log(`  restart with ${total} policies: first sync ${r1(convergedSeconds)} s after the kill (${firstSync}); ${restartRuns.length} runs started (${restartRuns.slice(0, 10).join(', ')}), ${restartNbWrites} NB transactions`);

    const result = {
      date: new Date().toISOString(), namespaces: NSS, podsPerNamespace: PODS, policiesPerNamespace: POLICIES, nodes: 2,
      createdToEnforcedMs: { withoutExcept, withExcept }, goalP99Ms: 1000, withinGoal: withExcept.p99 < 1000 && withoutExcept.p99 < 1000,
      probesRight: `${probesRight}/${NSS}`,
      restart: { policies: total, convergedSeconds: r1(convergedSeconds), firstSync, runsStarted: restartRuns.length, runs: restartRuns.slice(0, 20), nbTransactions: restartNbWrites, goalSeconds: 10, withinGoal: convergedSeconds < 10 && restartNbWrites === 0 },
    };
    mkdirSync(`${REPO}bench/results`, { recursive: true });
    writeFileSync(`${REPO}bench/results/netpol.json`, `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify(result, null, 2));
  } finally {
    nb.close();
    kovn(['down']);
  }
}
