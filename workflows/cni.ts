/**
 * A pod's network on its node, as runs the node agent starts itself (eagerly, on its own task queue) for
 * every CNI ADD and DEL: durable and auditable like any change, found with the pod's other runs by their
 * search attributes, and cheap in Temporal time: local activities, and for an ADD one regular activity
 * on the controller's queue, which writes the pod's port and annotation (node agents cannot write NB).
 */
import { patched, proxyActivities, proxyLocalActivities, upsertMemo, upsertSearchAttributes } from '@temporalio/workflow';
import type { PodReads, PodWrites } from '../activities/pod.ts';
import type { AttachmentResult, NodeAgentActivities, PodAttachment } from '../node-agent/activities.ts';
import type { Change } from '../lib/change.ts';
import { CONTROLLER_QUEUE, SA, workflowId } from '../lib/ids.ts';
import { failureOf } from './reconcile.ts';

const la = proxyLocalActivities<NodeAgentActivities>({
  startToCloseTimeout: '90s',
  retry: { initialInterval: '100ms', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: 5 },
});

/** Reads of the controller's, for the DEL: bounded, so a DEL never waits long on a controller that is away. */
const portReads = proxyActivities<PodReads>({
  taskQueue: CONTROLLER_QUEUE, startToCloseTimeout: '5s', scheduleToCloseTimeout: '20s', retry: { initialInterval: '200ms', maximumInterval: '2s' },
});

/** The rebuild's read: bounded, so an agent whose controller is away logs it and tries again. */
const nodeReads = proxyActivities<PodReads>({
  taskQueue: CONTROLLER_QUEUE, startToCloseTimeout: '10s', scheduleToCloseTimeout: '60s', retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '10s' },
});

/**
 * The controller's share of an ADD. Short timeouts: a controller killed mid-call is replaced (its lease)
 * within seconds, and an ADD that still cannot publish fails with a CNI error kubelet retries.
 */
const controller = proxyActivities<PodWrites>({
  taskQueue: CONTROLLER_QUEUE, startToCloseTimeout: '10s', scheduleToCloseTimeout: '45s',
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '3s' },
});

/**
 * CNI ADD: this node's address for the pod, its port and annotation written by the controller (guarded:
 * this incarnation, bound here, an address of this node's), the veth and OVS port, ovn-installed.
 */
export async function cniAdd(a: PodAttachment & { node?: string }): Promise<AttachmentResult> {
  upsertMemo({ pod: workflowId('Pod', a.namespace, a.name), containerId: a.containerId });
  if (!patched('cni-add-allocates') || !a.node) {
    // Runs begun before the ADD allocated and published itself wait for the controller's annotation.
    const { waitedMs: annotationMs, ...net } = await la.waitPodNetwork({ namespace: a.namespace, name: a.name, uid: a.uid });
    const { plugMs, ...res } = await la.plugPod({ ...a, ...net });
    const { waitedMs: installedMs } = await la.waitInstalled({ hostIfname: res.hostIfname });
    upsertSearchAttributes([{ key: SA.outcome, value: 'converged' }]);
    upsertMemo({ summary: { triggers: ['CNI ADD'], outcome: 'converged', changes: res.changes } });
    return { ...res, timings: { annotationMs, plugMs, installedMs } };
  }
  const t0 = Date.now();
  const { uid, created, ...net } = await la.allocatePod({ namespace: a.namespace, name: a.name, uid: a.uid });
  const changes: Change[] = created ? [{ db: 'node', table: 'IPAM', row: `${a.node}:${net.ips.join(',')}`, op: 'insert' }] : [];
  const held = { uid, pod: `${a.namespace}/${a.name}`, ips: net.ips };
  try {
    changes.push(...(await controller.publishPodNetwork({ namespace: a.namespace, name: a.name, uid, node: a.node, ips: net.ips })));
  } catch (err) {
    // Nothing is plugged yet. An address another port holds is not this pod's: dropped, kubelet's retry
    // gets another. Otherwise it goes back once NB holds no port for it and the node finds the pod gone.
    if (failureOf(err).reason === 'AddressInUse') await la.dropAllocation(held).catch(() => undefined);
    else if (!(await portReads.podPortHeld({ namespace: a.namespace, name: a.name, uid }).catch(() => true))) await la.releaseAddress({ uid }).catch(() => undefined);
    throw err;
  }
  // Workflow time: advances with each task, enough for a breakdown.
  let annotationMs: number;
  let attached: AttachmentResult & { plugMs: number; installedMs: number };
  if (patched('cni-add-attach-once')) {
    annotationMs = Date.now() - t0;
    attached = await la.attachPod({ ...a, uid, pod: held.pod, ...net });
  } else {
    // Runs begun before attachPod: the same three steps as local activities of their own.
    await la.holdAllocation(held);
    annotationMs = Date.now() - t0;
    const plugged = await la.plugPod({ ...a, uid, ...net });
    attached = { ...plugged, installedMs: (await la.waitInstalled({ hostIfname: plugged.hostIfname })).waitedMs };
  }
  const { plugMs, installedMs, ...res } = attached;
  changes.push(...res.changes);
  upsertSearchAttributes([{ key: SA.outcome, value: 'converged' }]);
  upsertMemo({ summary: { triggers: ['CNI ADD'], outcome: 'converged', changes } });
  return { ...res, changes, timings: { annotationMs, plugMs, installedMs } };
}

/**
 * CNI DEL: remove the OVS port and the veth; idempotent. The pod's address is freed once its logical
 * port is gone from NB too and the pod is confirmed gone (its node reads it live): by whichever of this
 * unplug and the controller's release comes last (the node remembers the release). Runs begun before
 * that asked the controller here whether NB still held the port.
 */
export async function cniDel(a: { namespace: string; name: string; containerId: string }): Promise<Change[]> {
  upsertMemo({ pod: workflowId('Pod', a.namespace, a.name), containerId: a.containerId });
  if (patched('cni-del-leaves-nb-to-controller')) {
    // The unplug frees the address if the controller has removed the pod's port from NB already;
    // otherwise the controller does once it has (it asks this node right after): no call to it here.
    const changes = await la.unplugPod({ containerId: a.containerId });
    upsertSearchAttributes([{ key: SA.outcome, value: 'deleted' }]);
    upsertMemo({ summary: { triggers: ['CNI DEL'], outcome: 'deleted', changes } });
    return changes;
  }
  const freeing = patched('cni-del-frees-address');
  const was = freeing ? await la.sandboxPod({ containerId: a.containerId }) : undefined;
  const changes = await la.unplugPod({ containerId: a.containerId });
  // Freed by the unplug if the controller had already removed its port from NB. Otherwise asked now; a
  // controller that cannot answer leaves it to the pod's run (it asks the node once the port is gone).
  const freed = changes.some((c) => c.table === 'IPAM');
  if (was && !freed && !(await portReads.podPortHeld({ namespace: a.namespace, name: a.name, uid: was.uid }).catch(() => true))) {
    const r = await la.releaseAddress({ uid: was.uid });
    if (r.released) changes.push({ db: 'node', table: 'IPAM', row: `${was.pod} ${r.ips.join(',')}`, op: 'delete' });
  }
  upsertSearchAttributes([{ key: SA.outcome, value: 'deleted' }]);
  upsertMemo({ summary: { triggers: ['CNI DEL'], outcome: 'deleted', changes } });
  return changes;
}

/**
 * A node's allocation store found missing or corrupt when its agent started: rebuilt from the ports the
 * Northbound DB holds for the node (read by the controller) and the annotations of its live pods,
 * before the agent allocates anything. A run in the node's history like any change.
 */
export async function restoreAllocations(input: { node: string; reason: string }): Promise<Change[]> {
  upsertMemo({ reason: input.reason });
  const held = await nodeReads.nodeAllocations({ node: input.node });
  const changes = await la.rebuildAllocations(held);
  upsertSearchAttributes([{ key: SA.outcome, value: 'converged' }]);
  upsertMemo({ summary: { triggers: [`allocation store lost: ${input.reason}`], outcome: 'converged', changes } });
  return changes;
}
