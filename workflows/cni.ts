/**
 * The node's share of a pod's network, as runs the node agent starts itself (eagerly, on its own task
 * queue) for every CNI ADD and DEL: durable and auditable like any change, linked to the pod's workflow
 * by its search attributes and memo, and cheap in Temporal time thanks to local activities.
 */
import { proxyLocalActivities, upsertMemo, upsertSearchAttributes } from '@temporalio/workflow';
import type { AttachmentResult, NodeAgentActivities, PodAttachment } from '../node-agent/activities.ts';
import type { Change } from '../lib/change.ts';
import { SA, workflowId } from '../lib/ids.ts';

const la = proxyLocalActivities<NodeAgentActivities>({
  startToCloseTimeout: '90s',
  retry: { initialInterval: '100ms', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: 5 },
});

/** CNI ADD: wait for the controller's annotation, plug the veth and OVS port, wait for ovn-installed. */
export async function cniAdd(a: PodAttachment): Promise<AttachmentResult> {
  upsertMemo({ pod: workflowId('Pod', a.namespace, a.name), containerId: a.containerId });
  const { waitedMs: annotationMs, ...net } = await la.waitPodNetwork({ namespace: a.namespace, name: a.name, uid: a.uid });
  const { plugMs, ...res } = await la.plugPod({ ...a, ...net });
  const { waitedMs: installedMs } = await la.waitInstalled({ hostIfname: res.hostIfname });
  upsertSearchAttributes([{ key: SA.outcome, value: 'converged' }]);
  upsertMemo({ summary: { triggers: ['CNI ADD'], outcome: 'converged', changes: res.changes } });
  return { ...res, timings: { annotationMs, plugMs, installedMs } };
}

/** CNI DEL: remove the OVS port and the veth; idempotent. */
export async function cniDel(a: { namespace: string; name: string; containerId: string }): Promise<Change[]> {
  upsertMemo({ pod: workflowId('Pod', a.namespace, a.name), containerId: a.containerId });
  const changes = await la.unplugPod({ containerId: a.containerId });
  upsertSearchAttributes([{ key: SA.outcome, value: 'deleted' }]);
  upsertMemo({ summary: { triggers: ['CNI DEL'], outcome: 'deleted', changes } });
  return changes;
}
