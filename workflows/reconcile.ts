/**
 * One workflow type per root kind, one workflow ID per object. A run reconciles the object until it
 * converges, takes every change signalled meanwhile, then completes: one run = one auditable change.
 * Deterministic: activities are imported as types only.
 */
import {
  ApplicationFailure, defineSignal, proxyActivities, proxyLocalActivities, setHandler, upsertMemo, upsertSearchAttributes,
} from '@temporalio/workflow';
import type { ControllerActivities } from '../activities/controller.ts';
import type { NodeAgentActivities } from '../node-agent/activities.ts';
import type { RunSummary } from '../lib/change.ts';
import { SA, nodeQueue } from '../lib/ids.ts';
import type { Outcome } from '../lib/ids.ts';

/** Sent by the watchers (signalWithStart) whenever the object changes; the payload says what happened. */
export const changed = defineSignal<[string]>('changed');

// Reads run as local activities (no server round trip). Writes run as regular activities: a local
// activity's result is lost with its workflow task when a signal races the run's completion, and the
// retry then finds nothing left to change, so the history would not show what the run wrote.
// Retries have no cap: a pod converges or says why.
const retry = { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '30s' } as const;
const local = proxyLocalActivities<Pick<ControllerActivities, 'observePod' | 'observeNode'>>({
  startToCloseTimeout: '60s',
  localRetryThreshold: '10s',
  retry,
});
const ctl = proxyActivities<Omit<ControllerActivities, 'observePod' | 'observeNode'>>({ startToCloseTimeout: '60s', retry });

/** The node agent's activities, on the node's own task queue. */
const onNode = (node: string) => proxyActivities<NodeAgentActivities>({ taskQueue: nodeQueue(node), startToCloseTimeout: '60s', retry });

interface FailureLike { type?: unknown; message?: unknown; cause?: unknown }

/** The reason and message of a non-retryable activity failure (ActivityFailure wraps ApplicationFailure). */
function reasonOf(err: unknown): { reason: string; message: string } {
  const cause = (err as FailureLike).cause as FailureLike | undefined;
  const src = cause ?? (err as FailureLike);
  return { reason: typeof src.type === 'string' ? src.type : 'Failed', message: typeof src.message === 'string' ? src.message : String(err) };
}

/**
 * Runs `once` until no signal arrived during it, then records the outcome (search attribute) and the
 * summary (memo). A non-retryable failure is put on the object (an Event) and fails the run, so it can
 * be found and replayed.
 */
async function reconcile(trigger: string, target: { kind: 'Pod' | 'Node'; namespace?: string; name: string },
  once: (s: RunSummary) => Promise<Outcome>): Promise<RunSummary> {
  const summary: RunSummary = { triggers: trigger ? [trigger] : [], outcome: 'running', changes: [] };
  let dirty = true;
  setHandler(changed, (t) => {
    summary.triggers.push(t);
    dirty = true;
  });
  try {
    while (dirty) {
      dirty = false;
      summary.outcome = await once(summary);
    }
  } catch (err) {
    const { reason, message } = reasonOf(err);
    summary.outcome = 'failed';
    summary.error = `${reason}: ${message}`;
    upsertSearchAttributes([{ key: SA.outcome, value: 'failed' }]);
    upsertMemo({ summary });
    await ctl.recordFailure({ ...target, reason, message });
    throw ApplicationFailure.nonRetryable(message, reason);
  }
  upsertSearchAttributes([{ key: SA.outcome, value: summary.outcome }]);
  upsertMemo({ summary });
  return summary;
}

export interface PodInput { namespace: string; name: string; trigger: string }

/** A pod's network: address from its node's agent, logical switch port, pod-networks annotation. */
export async function reconcilePod({ namespace, name, trigger }: PodInput): Promise<RunSummary> {
  return reconcile(trigger, { kind: 'Pod', namespace, name }, async (s) => {
    const obs = await local.observePod({ namespace, name });
    if (obs.node) upsertSearchAttributes([{ key: SA.node, value: obs.node }]);
    // A port left by a deleted pod or by an earlier incarnation of this name: remove it, free its address.
    const stale = obs.port && (obs.state !== 'active' || obs.port.uid !== obs.uid || obs.port.node !== obs.node);
    if (stale && obs.port) {
      s.changes.push(...(await ctl.deletePodPort({ namespace, name })));
      if (obs.port.node && obs.port.uid && obs.portNodeExists) {
        const r = await onNode(obs.port.node).releaseAddress({ uid: obs.port.uid });
        if (r.released) s.changes.push({ db: 'node', table: 'IPAM', row: `${obs.port.node}:${r.ips.join(',')}`, op: 'delete' });
      }
    }
    if (obs.state !== 'active' || !obs.node || !obs.uid || !obs.nodeSubnets) {
      return obs.state === 'absent' ? 'deleted' : 'skipped';
    }
    const alloc = await onNode(obs.node).allocateAddress({ uid: obs.uid, pod: `${namespace}/${name}`, subnets: obs.nodeSubnets });
    if (alloc.created) s.changes.push({ db: 'node', table: 'IPAM', row: `${obs.node}:${alloc.ips.join(',')}`, op: 'insert' });
    s.changes.push(...(await ctl.ensurePodNetwork({ namespace, name, uid: obs.uid, node: obs.node, ips: alloc.ips, nodeSubnets: obs.nodeSubnets })));
    return 'converged';
  });
}

export interface NodeInput { name: string; trigger: string }

/** A node's network: subnets, switch, router link, management port, chassis; removed with the node. */
export async function reconcileNode({ name, trigger }: NodeInput): Promise<RunSummary> {
  return reconcile(trigger, { kind: 'Node', name }, async (s) => {
    const obs = await local.observeNode({ name });
    if (!obs.exists) {
      s.changes.push(...(await ctl.deleteNodeNetwork({ name })));
      return 'deleted';
    }
    s.changes.push(...(await ctl.ensureClusterTopology()));
    const net = await ctl.ensureNodeNetwork({ name });
    s.changes.push(...net.changes);
    const setup = await onNode(name).setupNode({ subnets: net.subnets });
    s.changes.push(...setup.changes);
    s.changes.push(...(await ctl.annotateNode({ name, subnets: net.subnets, chassisId: setup.chassisId })));
    return 'converged';
  });
}
