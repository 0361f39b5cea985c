#!/usr/bin/env node
/**
 * kovn's controller: a Temporal worker on the `kovn` task queue (workflows and the controller's
 * activities) and, on the replica that holds the Lease, the watchers that turn Kubernetes changes into
 * workflow runs. Usage: node watchers/main.ts CONFIG.json
 */
import { hostname } from 'node:os';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { merge } from 'rxjs';
import { createControllerActivities } from '../activities/controller.ts';
import { connectNb, ownedPodPorts } from '../activities/nb.ts';
import { connectSb } from '../activities/sb.ts';
import { ControllerConfig, markReady } from '../lib/daemon-config.ts';
import { startDaemon, workflowSource } from '../lib/daemon.ts';
import { CONTROLLER_QUEUE, SA, workflowId } from '../lib/ids.ts';
import { connectKube } from '../lib/kube.ts';
import { NODE_SUBNETS, POD_NETWORKS, PodNetworks, readAnnotation } from '../lib/annotations.ts';
import { podPortName } from '../activities/translate/pod.ts';
import type { reconcileNode, reconcilePod } from '../workflows/reconcile.ts';
import { watchKeys } from './informer.ts';
import type { KeyEvent } from './informer.ts';
import { acquireLease } from './lease.ts';
import { dispatchKeys } from './pipeline.ts';
import { Subject } from 'rxjs';
import { OWNER_NAME, OWNER_TYPE, isKovnOwned } from '../activities/translate/ownership.ts';

const { cfg, log } = startDaemon('watchers/main.ts', ControllerConfig);

const kube = connectKube(cfg.kubeconfig, 'kovn-controller');
const nb = await connectNb(cfg.nb);
const sb = await connectSb(cfg.sb);
const native = await NativeConnection.connect({ address: cfg.temporal.address });
const worker = await Worker.create({
  connection: native, namespace: cfg.temporal.namespace, taskQueue: CONTROLLER_QUEUE,
  activities: createControllerActivities({ nb, sb, kube, cfg: cfg.cluster }),
  ...workflowSource(cfg.workflowBundle),
  maxConcurrentLocalActivityExecutions: 64,
  maxConcurrentWorkflowTaskExecutions: 64,
});
const running = worker.run();
const client = new Client({ connection: await Connection.connect({ address: cfg.temporal.address }), namespace: cfg.temporal.namespace });
log(`controller ${cfg.identity}: worker on ${CONTROLLER_QUEUE}; waiting for the lease`);

const lease = await acquireLease(kube.kc, { namespace: 'kube-system', name: 'kovn-controller', identity: cfg.identity || hostname(), durationSeconds: 15 }, () => {
  log('lost the lease: exiting so a fresh start competes again');
  process.exit(1);
});
log('holding the lease: watching nodes and pods');
markReady(cfg.readyFile);

/** signalWithStart: a running change takes the signal; otherwise a new run starts with the same ID. */
async function dispatchPod(key: string, triggers: string[]): Promise<void> {
  const [namespace = '', name = ''] = key.split('/');
  await client.workflow.signalWithStart<typeof reconcilePod, [string]>('reconcilePod', {
    workflowId: workflowId('Pod', namespace, name), taskQueue: CONTROLLER_QUEUE,
    args: [{ namespace, name, trigger: '' }], signal: 'changed', signalArgs: [triggers.join(', ')],
    typedSearchAttributes: [{ key: SA.kind, value: 'Pod' }, { key: SA.namespace, value: namespace }, { key: SA.name, value: name }, { key: SA.outcome, value: 'running' }],
  });
}

async function dispatchNode(name: string, triggers: string[]): Promise<void> {
  await client.workflow.signalWithStart<typeof reconcileNode, [string]>('reconcileNode', {
    workflowId: workflowId('Node', '', name), taskQueue: CONTROLLER_QUEUE,
    args: [{ name, trigger: '' }], signal: 'changed', signalArgs: [triggers.join(', ')],
    typedSearchAttributes: [{ key: SA.kind, value: 'Node' }, { key: SA.namespace, value: '' }, { key: SA.name, value: name }, { key: SA.node, value: name }, { key: SA.outcome, value: 'running' }],
  });
}

/**
 * Whether the pod's k8s.ovn.org/pod-networks disagrees with its logical port. kovn's own write agrees,
 * so it does not start another run; garbage or a stale value written by someone else does.
 */
function annotationTampered(p: V1Pod): boolean {
  const port = nb.cache.table('Logical_Switch_Port').byIndex({ name: podPortName(p.metadata?.namespace ?? '', p.metadata?.name ?? '') });
  if (!port) return false;
  try {
    const net = readAnnotation(p.metadata?.annotations, POD_NETWORKS, PodNetworks)?.default;
    // Absent is what a pod looks like between its port and its annotation being written: not a change.
    if (!net) return false;
    const want = (port.addresses[0] ?? '').split(' ');
    return want[0] !== net.mac_address || net.ip_addresses.some((a) => !want.includes(a.split('/')[0] ?? ''));
  } catch {
    return true;
  }
}

// Startup sync: keys of objects whose OVN rows kovn owns but that no longer exist in the API.
const orphans = new Subject<KeyEvent>();
const podKey = (p: V1Pod): string => `${p.metadata?.namespace}/${p.metadata?.name}`;
const pods$ = watchKeys<V1Pod>({
  kc: kube.kc, path: '/api/v1/pods', list: () => kube.core.listPodForAllNamespaces(), key: podKey, resyncMs: 10 * 60_000,
  relevant: (p) => [p.metadata?.uid, p.spec?.nodeName, p.spec?.hostNetwork, p.metadata?.deletionTimestamp, p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed', annotationTampered(p)],
  // A pod not yet bound, or on the host's network, has no network of kovn's to make: no run until it is
  // bound, unless a port of its name is there to remove.
  actionable: (p) => (Boolean(p.spec?.nodeName) && p.spec?.hostNetwork !== true) ||
    nb.cache.table('Logical_Switch_Port').byIndex({ name: podPortName(p.metadata?.namespace ?? '', p.metadata?.name ?? '') }) !== undefined,
});
const nodes$ = watchKeys<V1Node>({
  kc: kube.kc, path: '/api/v1/nodes', list: () => kube.core.listNode(), key: (n) => n.metadata?.name ?? '', resyncMs: 10 * 60_000,
  relevant: (n) => [n.metadata?.uid, n.metadata?.deletionTimestamp, n.metadata?.annotations?.[NODE_SUBNETS], n.metadata?.annotations?.['k8s.ovn.org/node-chassis-id']],
});
const nodeOrphans = new Subject<KeyEvent>();
const subs = [
  dispatchKeys(merge(pods$, orphans), dispatchPod).subscribe({ error: (e: unknown) => log(`pod watcher failed: ${String(e)}`) }),
  dispatchKeys(merge(nodes$, nodeOrphans), dispatchNode).subscribe({ error: (e: unknown) => log(`node watcher failed: ${String(e)}`) }),
];

/**
 * Startup sync (and again at every resync): rows kovn owns whose object is gone from the API get their
 * object's workflow, which removes them. The watchers never see these objects: they were deleted while
 * no controller ran.
 */
async function syncOrphans(): Promise<void> {
  const pods = new Set((await kube.core.listPodForAllNamespaces()).items.map(podKey));
  for (const port of ownedPodPorts(nb)) if (!pods.has(port.owner)) orphans.next({ key: port.owner, trigger: 'startup sync: orphaned logical port' });
  const nodes = new Set((await kube.core.listNode()).items.map((n) => n.metadata?.name ?? ''));
  const owners = new Set(nb.cache.table('Logical_Switch').all().filter((s) => isKovnOwned(s.external_ids) && s.external_ids[OWNER_TYPE] === 'Node')
    .map((s) => s.external_ids[OWNER_NAME] ?? ''));
  for (const n of owners) if (!nodes.has(n)) nodeOrphans.next({ key: n, trigger: 'startup sync: node gone' });
}
const runSync = (): void => void syncOrphans().catch((err: unknown) => log(`startup sync failed (retried at the next resync): ${String(err)}`));
runSync();
const resync = setInterval(runSync, 10 * 60_000);

const stop = async (): Promise<void> => {
  clearInterval(resync);
  for (const s of subs) s.unsubscribe();
  await lease.release();
  if (worker.getState() === 'RUNNING') worker.shutdown(); // the SDK may have begun it on the same signal
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
await running;
nb.close();
sb.close();
await native.close();
