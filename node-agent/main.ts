#!/usr/bin/env node
/**
 * kovn's node agent: a Temporal worker on its node's own task queue (IPAM, management port, chassis),
 * the server behind the CNI plugin (each ADD/DEL a run it starts eagerly on itself), and the installer
 * of the plugin once it can serve. Usage: node node-agent/main.ts CONFIG.json
 */
import { Client } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { WorkflowIdConflictPolicy } from '@temporalio/common';
import { startCniServer } from '../cni/server.ts';
import type { CniHandler } from '../cni/server.ts';
import { installCni } from '../cni/install.ts';
import { CNI_ERR_PLUGIN_NOT_AVAILABLE, CNI_ERR_TRY_AGAIN_LATER, CniError } from '../cni/errors.ts';
import { VALID_ATTACHMENTS } from '../cni/protocol.ts';
import { NodeAgentConfig, markReady } from '../lib/daemon-config.ts';
import { WORKER_FAILURE_TYPES, startDaemon, workflowSource } from '../lib/daemon.ts';
import { classifyActivityErrors, classified } from '../lib/errors.ts';
import { SA, cniWorkflowId, nodeQueue, restoreWorkflowId, sweepWorkflowId } from '../lib/ids.ts';
import { connectKube } from '../lib/kube.ts';
import { POD_NETWORKS, PodNetworks, readAnnotation } from '../lib/annotations.ts';
import { createNodeAgentActivities } from './activities.ts';
import { lockAllocations } from './ipam.ts';
import type { Orphans } from './activities.ts';
import { connectOvs, podPorts } from './ovs.ts';
import { bridgeFor, ensureExternalBridge, gatewayFacts, keepBridgeFlows } from './gateway.ts';
import { keepHostNat } from './host-nat.ts';
import { clusterFamilies } from '../lib/cluster-config.ts';
import { hostIfname } from './plug.ts';
import { NodePods } from './pod-watch.ts';
import { NodeServices } from './service-watch.ts';
import { HealthServers } from './health-check.ts';
import type { cniAdd, cniDel, restoreAllocations } from '../workflows/cni.ts';
import type { sweepNode } from '../workflows/node-sweep.ts';

const { cfg, log } = startDaemon('node-agent/main.ts', NodeAgentConfig);
// One agent per node: a second one stops here, before it touches the node (held for the process's life).
await lockAllocations(cfg.ipamFile).catch((err: unknown) => { console.error(`kovn node agent: ${err instanceof Error ? err.message : String(err)}`); process.exit(1); });

const kube = connectKube(cfg.kubeconfig, `kovn-node-agent/${cfg.node}`);
const ovs = await connectOvs(cfg.ovsSock);
// The node's address moves onto the external bridge before the agent opens a connection of its own.
for (const c of await ensureExternalBridge(ovs, cfg.gatewayInterface)) log(`external bridge: ${c.op} ${c.table} ${c.row}`);
// NodePorts and external addresses change the bridge's flows: each change of them re-installs them.
const health = new HealthServers(log);
const bridge = bridgeFor(cfg.gatewayInterface);
const hostNat = keepHostNat({
  bridge, families: clusterFamilies(cfg.cluster), serviceCidrs: cfg.cluster.serviceNetworks, log,
  nodeIps: async () => (await gatewayFacts(bridge)).ipAddresses.map((c) => c.split('/')[0] ?? ''),
});
const services = new NodeServices(kube, cfg.node, () => {
  void syncFlows();
  health.sync(services.healthChecks());
  void hostNat.sync(services.hostNodePorts());
});
const bridgeFlows = keepBridgeFlows({ ovs, ovsSock: cfg.ovsSock, node: cfg.node, iface: cfg.gatewayInterface, cluster: cfg.cluster, services: () => services.flows(), log });
const syncFlows = (): Promise<void> => bridgeFlows.sync().catch((err: unknown) => log(`breth0: installing flows failed: ${err instanceof Error ? err.message : String(err)}`));
// A failure here shows again in the node's run (setupNode installs them too): the agent still starts.
await syncFlows();
await hostNat.sync([]);
await services.start();
const pods = await NodePods.start(kube, cfg.node);
const connection = await NativeConnection.connect({ address: cfg.temporal.address });
const taskQueue = nodeQueue(cfg.node);
let markRestored = (): void => undefined;
const restored = new Promise<void>((done) => (markRestored = done));
const activities = createNodeAgentActivities({
  node: cfg.node, chassis: { encapIp: cfg.encapIp, sbRemote: cfg.sbRemote }, gatewayInterface: cfg.gatewayInterface, syncBridgeFlows: bridgeFlows.sync, ipamFile: cfg.ipamFile, ovs, ovsSock: cfg.ovsSock, pods, cluster: cfg.cluster, kube, restored });
const worker = await Worker.create({
  connection, namespace: cfg.temporal.namespace, taskQueue, activities,
  interceptors: { activity: [classifyActivityErrors] },
  workflowFailureErrorTypes: WORKER_FAILURE_TYPES,
  ...workflowSource(cfg.workflowBundle),
  maxConcurrentLocalActivityExecutions: 64,
});
// The client shares the worker's connection, so a start can hand its first task to this worker (eager).
const client = new Client({ connection, namespace: cfg.temporal.namespace });
const running = worker.run();

// A lost or corrupt allocation store is rebuilt from the cluster before anything allocates (or the CNI
// server answers): addresses in use are never handed out again.
const nodeAttrs = [{ key: SA.kind, value: 'Node' }, { key: SA.namespace, value: '' }, { key: SA.name, value: cfg.node }, { key: SA.node, value: cfg.node }];
for (let delay = 1000; ; delay = Math.min(delay * 2, 30_000)) {
  const lost = activities.allocationsLost();
  if (!lost.lost) break;
  log(`allocation store lost (${lost.reason}): rebuilding it from the cluster`);
  try {
    const changes = await client.workflow.execute<typeof restoreAllocations>('restoreAllocations', {
      workflowId: restoreWorkflowId(cfg.node, new Date()), taskQueue, requestEagerStart: true, typedSearchAttributes: nodeAttrs,
      args: [{ node: cfg.node, reason: lost.reason ?? 'lost' }],
    });
    log(`allocation store rebuilt: ${changes.length} allocation(s) restored`);
    break;
  } catch (err) {
    log(`rebuilding the allocation store failed (trying again in ${delay / 1000} s): ${String(err)}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}
markRestored();

const attrs = (ns: string, name: string) => [
  { key: SA.kind, value: 'Pod' }, { key: SA.namespace, value: ns }, { key: SA.name, value: name }, { key: SA.node, value: cfg.node },
];

/** Removes orphans as a run of its own on this node (nothing is started when there are none). */
async function sweep(o: Orphans): Promise<void> {
  if (o.ports.length === 0 && o.addresses.length === 0) return;
  const changes = await client.workflow.execute<typeof sweepNode>('sweepNode', {
    workflowId: sweepWorkflowId(cfg.node, new Date()), taskQueue, requestEagerStart: true,
    typedSearchAttributes: nodeAttrs,
    args: [o],
  });
  for (const c of changes) log(`sweep (${o.reason}): ${c.op} ${c.db}:${c.table} ${c.row}`);
}

/**
 * What kubelet's Event shows for a failed ADD run: the classified failure at the bottom of its cause
 * chain (the workflow's, then the activity's), with its own message; a CNI code when it has one, "try
 * again later" when it may pass, else an error of kovn's (999) naming its reason.
 */
function cniErrorOf(err: unknown): CniError {
  let f = err as { type?: unknown; message?: unknown; cause?: unknown; nonRetryable?: unknown } | undefined;
  for (let c = f; c && typeof c === 'object'; c = c.cause as typeof f) if (typeof c.type === 'string' && c.type) f = c;
  const type = typeof f?.type === 'string' ? f.type : '';
  const msg = typeof f?.message === 'string' && f.message ? f.message : err instanceof Error ? err.message : String(err);
  const code = /^CniError:(\d+)$/.exec(type)?.[1];
  if (code) return new CniError(Number(code), msg);
  if (!type) return new CniError(CNI_ERR_TRY_AGAIN_LATER, 'pod network not ready', msg);
  return f?.nonRetryable === true ? new CniError(999, `${type}: ${msg}`) : new CniError(CNI_ERR_TRY_AGAIN_LATER, `${type}: ${msg}`);
}

const handler: CniHandler = {
  async add(req) {
    const ns = req.podNamespace ?? '';
    const name = req.podName ?? '';
    if (!ns || !name) throw new CniError(4, 'CNI_ARGS lacks K8S_POD_NAMESPACE/K8S_POD_NAME');
    const res = await client.workflow.execute<typeof cniAdd>('cniAdd', {
      workflowId: cniWorkflowId('add', ns, name, req.containerId), taskQueue, requestEagerStart: true,
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      typedSearchAttributes: attrs(ns, name),
      args: [{ namespace: ns, name, uid: req.podUid ?? '', containerId: req.containerId, netns: req.netns, ifname: req.ifname, node: cfg.node }],
    }).catch((err: unknown) => { throw cniErrorOf(err); });
    return {
      interfaces: [{ name: res.hostIfname }, { name: req.ifname, mac: res.mac, sandbox: req.netns, mtu: res.mtu }],
      ips: res.ips.map((address) => {
        const gw = res.gateways.find((g) => g.includes(':') === address.includes(':'));
        return { address, interface: 1, ...(gw ? { gateway: gw } : {}) };
      }),
      routes: res.gateways.map((gw) => ({ dst: gw.includes(':') ? '::/0' : '0.0.0.0/0', gw })),
    };
  },
  async del(req) {
    const ns = req.podNamespace ?? '';
    const name = req.podName ?? '';
    // containerd repeats DEL for a sandbox on its way out (stop, then remove) and kubelet retries: once
    // its OVS port is gone there is nothing left to change (its veth went with the pod's namespace, its
    // address with the controller's release), so no run is started for it.
    if (!podPorts(ovs).some((p) => p.name === hostIfname(req.containerId))) return;
    await client.workflow.execute<typeof cniDel>('cniDel', {
      workflowId: cniWorkflowId('del', ns || '-', name || req.containerId, req.containerId), taskQueue, requestEagerStart: true,
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      typedSearchAttributes: attrs(ns, name),
      args: [{ namespace: ns, name, containerId: req.containerId }],
    });
  },
  async check(req) {
    const pod = pods.get(req.podNamespace ?? '', req.podName ?? '');
    const net = readAnnotation(pod?.metadata?.annotations, POD_NETWORKS, PodNetworks)?.default;
    if (!net) throw new CniError(3, `pod ${req.podNamespace}/${req.podName} has no ${POD_NETWORKS}`);
    await classified(() => activities.checkPod({ namespace: req.podNamespace ?? '', name: req.podName ?? '', uid: req.podUid ?? '', containerId: req.containerId,
      netns: req.netns, ifname: req.ifname, ips: net.ip_addresses, mac: net.mac_address }));
  },
  async status() {
    if (!ovs.connected || worker.getState() !== 'RUNNING') throw new CniError(CNI_ERR_PLUGIN_NOT_AVAILABLE, 'kovn node agent is not ready');
    await Promise.resolve();
  },
  async gc(req) {
    const valid = new Set((req.config[VALID_ATTACHMENTS] ?? []).map((a) => a.containerID));
    await sweep({ reason: 'runtime-gc', ports: podPorts(ovs).filter((p) => !valid.has(p.sandbox)), addresses: [] });
  },
};

const server = await startCniServer({ socketPath: cfg.cniSocket, handler, log: (l) => log(`cni: ${l}`) });
// The plugin binary and the conflist, once this agent serves (the conflist last: it turns the node Ready).
const installed = await installCni({ binDir: cfg.cniBinDir, confDir: cfg.cniConfDir, agentSocket: cfg.cniSocket, pluginBinary: cfg.cniPlugin,
  mtu: cfg.cluster.mtu });
markReady(cfg.readyFile);
log(`node agent for ${cfg.node} serving ${cfg.cniSocket} (task queue ${taskQueue}); CNI config ${installed.conflist}`);

// What missed DELs left (the agent was down, a run was interrupted): ports of pods gone from this node
// at once on start and then every period; addresses once older than the period, so an allocation whose
// pod this agent has not seen yet is kept.
const SWEEP_MS = cfg.sweepSeconds * 1000;
const sweepOrphans = (): void => void Promise.resolve().then(() => sweep(activities.findOrphans(SWEEP_MS)))
  .catch((err: unknown) => log(`sweep failed (tried again in ${SWEEP_MS / 1000} s): ${String(err)}`));
sweepOrphans();
const sweeper = setInterval(sweepOrphans, SWEEP_MS);

const stop = async (): Promise<void> => {
  clearInterval(sweeper);
  // A CNI call in flight gets a few seconds to answer; then the process goes whatever still holds it
  // (the pod informer's restart timer, an idle plugin connection), so a stop never waits for SIGKILL.
  setTimeout(() => process.exit(0), 8000).unref();
  if (worker.getState() === 'RUNNING') worker.shutdown(); // the SDK may have begun it on the same signal
  await server.close();
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
await running;
pods.stop();
services.stop();
health.close();
ovs.close();
await connection.close();
process.exit(0);
