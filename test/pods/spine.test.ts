// The spine's guarantees on the cluster in a box (real Temporal, apiserver, OVN, kubelets): runs that
// say what they wait on and never get stuck, one leader at a time, supervised daemons, and
// k8s.ovn.org annotations that only kovn writes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { CoordinationV1Api, KubeConfig } from '@kubernetes/client-node';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { NET, PORTS, STATE, files } from '../../deploy/local/config.ts';
import { kubectl, kubectlJson } from '../../deploy/local/kubectl.ts';
import { runningPid } from '../../deploy/local/proc.ts';
import { connectTemporal } from '../../lib/history.ts';
import { kovn } from '../box/helpers.ts';
import { acquireLease } from '../../watchers/lease.ts';
import {
  BREAK_GLASS, assertNetworksAgree, bringBack, createPods, events, exec, getPod, holdDown, ipamAllocations, killAndWaitBack, nbctl, podManifest, until, useBox, vsctl, waitReady,
} from './helpers.ts';

Runtime.install({ logger: new DefaultLogger('WARN') });

interface Run { workflowId: string; runId: string; status: string; outcome: string; triggers: string[]; error?: string; waitingFor?: string }
const runsOf = async (kind: string, ref: string): Promise<Run[]> => {
  const r = await kovn(['history', kind, ref, '--json']);
  assert.equal(r.code, 0, r.out);
  return JSON.parse(r.out) as Run[];
};
const latest = async (kind: string, ref: string, id: string): Promise<Run | undefined> => (await runsOf(kind, ref)).filter((r) => r.workflowId === id).at(-1);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('the spine (IPv4, 2 nodes)', { timeout: 30 * 60_000 }, () => {
  useBox(['--nodes', '2']);

  test('k8s.ovn.org annotations are kovn\'s: a pod or node edit that sets one is refused by name; through the break-glass group a forged address is ignored, with an Event', { timeout: 3 * 60_000 }, async () => {
    const forged = podManifest('forged', 'node-1', { annotations: { 'k8s.ovn.org/pod-networks': '{"default":{"ip_addresses":["10.244.0.99/24"],"mac_address":"0a:58:0a:f4:00:63"}}' } });
    await assert.rejects(kubectl(['create', '-f', '-'], { input: forged }), /k8s\.ovn\.org\/pod-networks is written by kovn only/);
    // Another edit of a pod that carries kovn's annotation passes: only the changed keys count.
    await createPods([{ name: 'plain', node: 'node-1' }]);
    await waitReady(['plain']);
    await kubectl(['annotate', 'pod', 'plain', 'team=web']);
    await assert.rejects(kubectl(['annotate', 'pod', 'plain', '--overwrite', 'k8s.ovn.org/pod-networks={}']), /k8s\.ovn\.org\/pod-networks is written by kovn only/);
    await assert.rejects(kubectl(['annotate', 'pod', 'plain', 'k8s.ovn.org/pod-networks-']), /k8s\.ovn\.org\/pod-networks is written by kovn only/);
    await assert.rejects(kubectl(['annotate', 'node', 'node-1', '--overwrite', 'k8s.ovn.org/node-subnets={"default":["10.244.9.0/24"]}']), /node-subnets is written by kovn only/);
    await kubectl(['label', 'node', 'node-1', 'kovn-test=yes']);
    // Admitted through the break-glass group, a forged address is still never plugged: the pod gets
    // kovn's own allocation, and an Event says what was replaced.
    await kubectl([...BREAK_GLASS, 'create', '-f', '-'], { input: forged.replace('"forged"', '"forged-bg"') });
    await waitReady(['forged-bg']);
    const pod = await getPod('forged-bg');
    assert.notEqual(pod.status.podIP, '10.244.0.99', 'the forged address was not plugged');
    await assertNetworksAgree(['forged-bg']);
    assert.match(await exec('forged-bg', ['ip', '-o', 'addr', 'show', 'eth0']), new RegExp(`inet ${(pod.status.podIP ?? '').replaceAll('.', '\\.')}/`));
    const ev = await until('a ForgedAnnotation Event', async () => (await events('Pod', 'forged-bg')).find((e) => e.reason === 'ForgedAnnotation'));
    assert.match(ev.message, /10\.244\.0\.99\/24, which kovn did not allocate/);
    await kubectl(['delete', 'pod', 'forged-bg', 'plain', '--grace-period=0', '--force'], { timeoutMs: 60_000 }).catch(() => undefined);
    await kubectl(['label', 'node', 'node-1', 'kovn-test-']);
  });

  test('a controller restart with nothing changed starts no run and writes nothing to NB', { timeout: 3 * 60_000 }, async () => {
    await createPods([{ name: 'quiet-1', node: 'node-1' }, { name: 'quiet-2', node: 'node-2' }]);
    await waitReady(['quiet-1', 'quiet-2']);
    const t = await connectTemporal(`127.0.0.1:${PORTS.temporal}`, 'kovn');
    try {
      // The controller's runs (the node agents' CNI and Sweep runs follow the kubelets, not the controller).
      const count = async (): Promise<number> => (await t.client.workflow.count("WorkflowType='reconcilePod' OR WorkflowType='reconcileNode'")).count;
      await until('every run closed', async () => (await t.client.workflow.count("ExecutionStatus='Running'")).count === 0, 60_000);
      const runs = await count();
      const nbBefore = await nbctl(['--format=csv', '--columns=_uuid,name,addresses,options,external_ids', 'list', 'Logical_Switch_Port']);
      await killAndWaitBack('kovn-controller');
      await sleep(8000); // the informers' first list and the first resync have run
      assert.equal(await count(), runs, 'no run started by the restart');
      assert.equal(await nbctl(['--format=csv', '--columns=_uuid,name,addresses,options,external_ids', 'list', 'Logical_Switch_Port']), nbBefore, 'NB unchanged');
    } finally {
      await t.close();
      await kubectl(['delete', 'pod', 'quiet-1', 'quiet-2', '--grace-period=0', '--force'], { timeoutMs: 60_000 }).catch(() => undefined);
    }
  });

  test('runs never get stuck and say why: retrying then converged, a signal mid-pass, a node deleted under a pod, continue-as-new', { timeout: 6 * 60_000 }, async () => {
    await holdDown('node-2-kovn-agent');
    await createPods([{ name: 'r1', node: 'node-2' }, { name: 's1', node: 'node-2' }, { name: 'can1', node: 'node-2' }]);
    // A pod bound (bypassing the scheduler) to a node with no agent, kubelet or future.
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'ghost-x' } }) });
    const ghostPod = JSON.parse(podManifest('g1', 'ghost-x')) as { spec: Record<string, unknown> };
    delete ghostPod.spec.nodeSelector;
    ghostPod.spec.nodeName = 'ghost-x';
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(ghostPod) });
    // A second run of can1's workflow type with a low history bound: it continues as new.
    const t = await connectTemporal(`127.0.0.1:${PORTS.temporal}`, 'kovn');
    const canId = 'Test-continue/default/can1';
    const can = await t.client.workflow.start('reconcilePod', { workflowId: canId, taskQueue: 'kovn', args: [{ namespace: 'default', name: 'can1', trigger: 'test', maxHistory: 10 }] });
    try {
      // A signal during a pass: s1 is deleted while its run waits on node-2's agent; the run ends at once.
      await until('s1\'s run under way', async () => (await latest('pod', 'default/s1', 'Pod/default/s1'))?.status === 'RUNNING');
      await sleep(2000);
      const deletedAt = Date.now();
      await kubectl(['delete', 'pod', 's1', '--grace-period=0', '--force'], { timeoutMs: 60_000 });
      const s1 = await until('s1\'s run ended', async () => ((r) => (r?.status === 'COMPLETED' ? r : undefined))(await latest('pod', 'default/s1', 'Pod/default/s1')), 30_000);
      assert.equal(s1.outcome, 'deleted');
      assert.ok(Date.now() - deletedAt < 20_000, `ended ${Date.now() - deletedAt} ms after the delete, not after the agent's timeout`);
      assert.ok(s1.triggers.some((x) => x.includes('delete')), JSON.stringify(s1));
      // A retryable failure: the pass ends as retrying with the reason in the memo, and the run goes on.
      const r1 = await until('r1 retrying', async () => ((r) => (r?.outcome === 'retrying' ? r : undefined))(await latest('pod', 'default/r1', 'Pod/default/r1')), 90_000);
      assert.equal(r1.status, 'RUNNING');
      assert.match(r1.error ?? '', /ScheduleToClose|timed out|timeout/i, JSON.stringify(r1));
      const retryEvents = async () => (await kubectlJson<{ items: { type: string; reason: string; message: string; count?: number }[] }>(['get', 'events', '--field-selector', 'involvedObject.name=r1'])).items.filter((e) => e.message.startsWith('retrying'));
      await until('a Warning Event says the change is retrying', async () => (await retryEvents()).length > 0);
      // The node under g1 goes: g1's run ends instead of waiting forever.
      await until('g1 retrying', async () => (await latest('pod', 'default/g1', 'Pod/default/g1'))?.outcome === 'retrying', 90_000);
      await kubectl(['delete', 'node', 'ghost-x']);
      const g1 = await until('g1\'s run ended', async () => ((r) => (r?.status === 'COMPLETED' ? r : undefined))(await latest('pod', 'default/g1', 'Pod/default/g1')), 90_000);
      assert.ok(['skipped', 'deleted'].includes(g1.outcome), JSON.stringify(g1));
      const ghostNode = await until('ghost-x\'s run ended', async () => ((r) => (r?.status === 'COMPLETED' ? r : undefined))(await latest('node', 'ghost-x', 'Node//ghost-x')), 60_000);
      assert.equal(ghostNode.outcome, 'deleted');
      // Continue-as-new: the first run of the low-bound workflow closed as CONTINUED_AS_NEW.
      const first = t.client.workflow.getHandle(canId, can.firstExecutionRunId);
      await until('continued as new', async () => (await first.describe()).status.name === 'CONTINUED_AS_NEW', 120_000);
      assert.equal((await t.client.workflow.getHandle(canId).describe()).status.name, 'RUNNING');
      // The agent back: r1 converges, its error cleared.
      await bringBack('node-2-kovn-agent');
      // However often it retried, one Event series per reason (its count says how often).
      const series = await retryEvents();
      assert.equal(new Set(series.map((e) => e.reason)).size, series.length, JSON.stringify(series));
      assert.ok(series.every((e) => e.type === 'Warning' && (e.count ?? 0) >= 1));
      await waitReady(['r1', 'can1']);
      const done = await until('r1 converged', async () => ((r) => (r?.status === 'COMPLETED' ? r : undefined))(await latest('pod', 'default/r1', 'Pod/default/r1')), 60_000);
      assert.equal(done.outcome, 'converged');
      assert.equal(done.error, undefined);
    } finally {
      await t.client.workflow.getHandle(canId).terminate('test done').catch(() => undefined);
      await t.close();
      await bringBack('node-2-kovn-agent').catch(() => undefined);
      await kubectl(['delete', 'pod', 'r1', 'can1', 'g1', '--grace-period=0', '--force', '--ignore-not-found'], { timeoutMs: 60_000 }).catch(() => undefined);
      await kubectl(['delete', 'node', 'ghost-x', '--ignore-not-found']).catch(() => undefined);
    }
  });

  test('a leader whose renewals hang stops leading before a standby takes over (client-go timings)', { timeout: 2 * 60_000 }, async () => {
    // Replica A reaches the apiserver through a proxy that can be made to swallow everything.
    let blackhole = false;
    const conns = new Set<Socket>();
    const proxy = createServer((c) => {
      const up = connect(PORTS.apiserver, '127.0.0.1');
      conns.add(c);
      c.on('data', (d: Buffer) => { if (!blackhole) up.write(d); });
      up.on('data', (d: Buffer) => { if (!blackhole) c.write(d); });
      const end = (): void => { c.destroy(); up.destroy(); conns.delete(c); };
      c.on('error', end); up.on('error', end); c.on('close', end); up.on('close', end);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const port = (proxy.address() as { port: number }).port;
    const viaProxy = readFileSync(files.adminKubeconfig, 'utf8').replace(/https:\/\/127\.0\.0\.1:\d+/, `https://127.0.0.1:${port}`);
    writeFileSync(`${STATE}/lease-proxy.kubeconfig`, viaProxy);
    const kcA = new KubeConfig();
    kcA.loadFromFile(`${STATE}/lease-proxy.kubeconfig`);
    const kcB = new KubeConfig();
    kcB.loadFromFile(files.adminKubeconfig);
    const name = 'kovn-test-hung-lease';
    const a = await acquireLease(kcA, { namespace: 'default', name, identity: 'replica-a' }, () => undefined);
    let lostAt = 0;
    void a.lost.then(() => { lostAt = Date.now(); });
    let tookAt = 0;
    const b = acquireLease(kcB, { namespace: 'default', name, identity: 'replica-b' }, () => undefined).then((l) => { tookAt = Date.now(); return l; });
    await sleep(4000);
    assert.equal(tookAt, 0, 'the standby waits while the leader renews');
    const hungAt = Date.now();
    blackhole = true; // mid-renewal: requests go out and nothing comes back
    const lb = await b;
    assert.ok(lostAt > 0, 'the hung leader gave up');
    assert.ok(lostAt < tookAt, `the old leader stopped (${lostAt - hungAt} ms) before the standby took over (${tookAt - hungAt} ms)`);
    assert.ok(lostAt - hungAt <= 12_500, `gave up ${lostAt - hungAt} ms after the apiserver went silent (renew deadline 10 s)`);
    await lb.release();
    for (const c of conns) c.destroy();
    proxy.close();
    await kcB.makeApiClient(CoordinationV1Api).deleteNamespacedLease({ name, namespace: 'default' });
  });

  test('a stalled controller (SIGSTOP 20 s) comes back as a standby, not dead; the standby leads meanwhile', { timeout: 3 * 60_000 }, async () => {
    const cfg = JSON.parse(readFileSync(`${STATE}/controller.json`, 'utf8')) as Record<string, unknown>;
    writeFileSync(`${STATE}/controller-standby.json`, JSON.stringify({ ...cfg, identity: 'kovn-controller-standby', readyFile: `${STATE}/run/standby.ready` }));
    const standby = spawn('nsenter', [`--net=/run/netns/${NET.cpNs}`, '--', process.execPath, new URL('../../watchers/main.ts', import.meta.url).pathname, `${STATE}/controller-standby.json`],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let sout = '';
    standby.stdout.on('data', (d: Buffer) => { sout += d.toString(); });
    standby.stderr.on('data', (d: Buffer) => { sout += d.toString(); });
    const leader = runningPid('kovn-controller');
    assert.ok(leader);
    const logFile = `${STATE}/log/kovn-controller.log`;
    const logStart = readFileSync(logFile, 'utf8').length;
    const admin = new KubeConfig();
    admin.loadFromFile(files.adminKubeconfig);
    const holder = async (): Promise<string | undefined> =>
      (await admin.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'kovn-controller', namespace: 'kube-system' })).spec?.holderIdentity;
    try {
      await until('the standby waits for the lease', () => Promise.resolve(sout.includes('waiting for the lease')), 60_000);
      assert.equal(await holder(), 'kovn-controller-box');
      process.kill(leader, 'SIGSTOP');
      await sleep(20_000);
      assert.match(sout, /holding the lease/, 'the standby took over while the leader was stalled');
      process.kill(leader, 'SIGCONT');
      await until('the stalled leader stands down', () => Promise.resolve(readFileSync(logFile, 'utf8').slice(logStart).includes('lost the lease: stopped watching')), 15_000);
      assert.equal(runningPid('kovn-controller'), leader, 'the stalled controller is alive, the same process');
      assert.equal(await holder(), 'kovn-controller-standby');
      // The cluster is served meanwhile: a pod gets its network from the new leader's watchers.
      await createPods([{ name: 'after-stall', node: 'node-1' }]);
      await waitReady(['after-stall']);
    } finally {
      process.kill(leader, 'SIGCONT');
      standby.kill('SIGTERM');
      await new Promise((r) => standby.once('exit', r));
    }
    // The standby released the lease on its way out: the old leader leads again within seconds.
    await until('the first controller leads again', async () => (await holder()) === 'kovn-controller-box', 20_000);
    await kubectl(['delete', 'pod', 'after-stall', '--grace-period=0', '--force'], { timeoutMs: 60_000 });
  });

  test('kill -9 of the controller and a node agent in the middle of a 30-pod burst: both come back by themselves, every pod gets one network, nothing is left after deletion', { timeout: 8 * 60_000 }, async () => {
    const pods = Array.from({ length: 30 }, (_, i) => ({ name: `burst-${i}`, node: i % 2 ? 'node-2' : 'node-1' }));
    await createPods(pods);
    await sleep(1500);
    await Promise.all([killAndWaitBack('kovn-controller'), killAndWaitBack('node-1-kovn-agent')]);
    await waitReady(pods.map((p) => p.name), '300s');
    await assertNetworksAgree(pods.map((p) => p.name));
    await kubectl(['delete', 'pod', ...pods.map((p) => p.name), '--wait=true'], { timeoutMs: 180_000 });
    const left = async (): Promise<string[]> => {
      const lsps = (await nbctl(['--bare', '--columns=name', 'list', 'Logical_Switch_Port'])).split('\n').filter((n) => n.startsWith('default_burst-'));
      const ovs = [...(await vsctl(1, ['--bare', '--columns=external_ids', 'list', 'Interface'])).split('\n'), ...(await vsctl(2, ['--bare', '--columns=external_ids', 'list', 'Interface'])).split('\n')]
        .filter((l) => l.includes('default/burst-'));
      const allocs = [1, 2].flatMap((n) => Object.entries(ipamAllocations(n)).filter(([, a]) => a.pod.startsWith('default/burst-')).map(([uid, a]) => `node-${n} ${a.pod} ${uid}`));
      return [...lsps.map((l) => `LSP ${l}`), ...ovs.map((o) => `OVS ${o}`), ...allocs.map((a) => `address ${a}`)];
    };
    await until('every burst pod\'s port, OVS port and address gone', async () => (await left()).length === 0, 120_000)
      .catch(async (err: unknown) => assert.fail(`${String(err)}; left: ${(await left()).join('; ')}`));
  });
});

