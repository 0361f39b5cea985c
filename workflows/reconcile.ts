/**
 * One workflow type per root kind, one workflow ID per object. A run reconciles the object until it
 * converges, takes every change signalled meanwhile, then completes: one run = one auditable change.
 * Deterministic: activities are imported as types only.
 */
import {
  ApplicationFailure, CancellationScope, condition, defineSignal, patched, proxyActivities, proxyLocalActivities, setHandler, upsertMemo,
  upsertSearchAttributes,
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

/**
 * The node agent's activities, on the node's own task queue. They are quick, so a short timeout: an
 * agent killed while it held a task is noticed in seconds and the task goes to its successor.
 */
const onNode = (node: string) => proxyActivities<NodeAgentActivities>({ taskQueue: nodeQueue(node), startToCloseTimeout: '15s', retry });

/** What a pass of a reconcile loop gets: the summary, and a way to wait that a new change interrupts. */
interface Pass {
  s: RunSummary;
  /**
   * Runs a wait on a node agent that a newer change can make moot (the pod or node was deleted, or its
   * agent is gone for good). On a signal, `stillWanted` takes a fresh look: while it holds the wait goes
   * on (the pass after it takes the change); otherwise the wait is cancelled and the loop starts over.
   * Resolves undefined when interrupted.
   */
  interruptible: <T>(fn: () => Promise<T>, stillWanted: () => Promise<boolean>) => Promise<T | undefined>;
}

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
  once: (p: Pass) => Promise<Outcome | 'interrupted'>): Promise<RunSummary> {
  const summary: RunSummary = { triggers: trigger ? [trigger] : [], outcome: 'running', changes: [] };
  let dirty = true;
  let signals = 0;
  setHandler(changed, (t) => {
    summary.triggers.push(t);
    dirty = true;
    signals++;
  });
  const interruptible = async <T>(fn: () => Promise<T>, stillWanted: () => Promise<boolean>): Promise<T | undefined> => {
    const scope = new CancellationScope();
    const work = scope.run(fn);
    let done: { value: T } | undefined;
    const finished = work.then((value) => (done = { value }));
    for (let seen = signals; ;) {
      const won = await Promise.race([finished, condition(() => signals !== seen).then(() => undefined)]);
      if (won) return won.value;
      seen = signals;
      // Runs started before this look-again existed cancel at once, as their histories say.
      if (!patched('interrupt-after-a-fresh-look') || !(await stillWanted())) break;
    }
    // Done while we looked: keep what it did (an address), so the next pass can undo it if need be.
    if (done) return done.value;
    scope.cancel();
    await work.catch(() => undefined);
    return undefined;
  };
  try {
    while (dirty) {
      dirty = false;
      const outcome = await once({ s: summary, interruptible });
      if (outcome !== 'interrupted') summary.outcome = outcome;
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
  return reconcile(trigger, { kind: 'Pod', namespace, name }, async ({ s, interruptible }) => {
    const obs = await local.observePod({ namespace, name });
    if (obs.node) upsertSearchAttributes([{ key: SA.node, value: obs.node }]);
    // A port left by a deleted pod or by an earlier incarnation of this name: remove it, free its address.
    const stale = obs.port && (obs.state !== 'active' || obs.port.uid !== obs.uid || obs.port.node !== obs.node);
    if (stale && obs.port) {
      // The address first, the port last: while the port exists, every later pass retries the release.
      if (obs.port.node && obs.port.uid && obs.portNodeExists) {
        const node = obs.port.node;
        const uid = obs.port.uid;
        const r = await interruptible(() => onNode(node).releaseAddress({ uid }), async () => (await local.observePod({ namespace, name })).portNodeExists === true);
        if (!r) return 'interrupted';
        if (r.released) s.changes.push({ db: 'node', table: 'IPAM', row: `${node}:${r.ips.join(',')}`, op: 'delete' });
      }
      s.changes.push(...(await ctl.deletePodPort({ namespace, name })));
    }
    if (obs.state !== 'active' || !obs.node || !obs.uid || !obs.nodeSubnets) {
      return obs.state === 'absent' ? 'deleted' : 'skipped';
    }
    const { node, uid, nodeSubnets } = obs;
    const alloc = await interruptible(() => onNode(node).allocateAddress({ uid, pod: `${namespace}/${name}`, subnets: nodeSubnets }), async () => {
      const now = await local.observePod({ namespace, name });
      return now.state === 'active' && now.uid === uid && now.node === node;
    });
    if (!alloc) return 'interrupted';
    if (alloc.created) s.changes.push({ db: 'node', table: 'IPAM', row: `${obs.node}:${alloc.ips.join(',')}`, op: 'insert' });
    s.changes.push(...(await ctl.ensurePodNetwork({ namespace, name, uid: obs.uid, node: obs.node, ips: alloc.ips, nodeSubnets: obs.nodeSubnets })));
    return 'converged';
  });
}

export interface NodeInput { name: string; trigger: string }

/** A node's network: subnets, switch, router link, management port, chassis; removed with the node. */
export async function reconcileNode({ name, trigger }: NodeInput): Promise<RunSummary> {
  return reconcile(trigger, { kind: 'Node', name }, async ({ s, interruptible }) => {
    const obs = await local.observeNode({ name });
    if (!obs.exists) {
      s.changes.push(...(await ctl.deleteNodeNetwork({ name })));
      return 'deleted';
    }
    s.changes.push(...(await ctl.ensureClusterTopology()));
    const net = await ctl.ensureNodeNetwork({ name });
    s.changes.push(...net.changes);
    const setup = await interruptible(() => onNode(name).setupNode({ subnets: net.subnets }), async () => (await local.observeNode({ name })).exists);
    if (!setup) return 'interrupted';
    s.changes.push(...setup.changes);
    s.changes.push(...(await ctl.annotateNode({ name, subnets: net.subnets, chassisId: setup.chassisId })));
    return 'converged';
  });
}
