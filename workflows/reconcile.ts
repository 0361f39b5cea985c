/**
 * The one reconcile loop every kind's workflow runs on (one workflow ID per object): a pass observes
 * the object and converges it; a signal during a pass loops again; a retryable failure ends the pass as
 * `retrying` (the error in the memo, an Event on the object), waits with capped backoff or until the
 * next signal, and observes again, as controller-runtime requeues. A run completes when a pass
 * converges with no signal pending: one run = one auditable change. Nothing waits unbounded: every
 * activity attempt has a timeout and a few attempts; a failure that can never succeed fails the run
 * with an Event (`kovn replay` re-runs it). Deterministic: activities are imported as types only.
 */
import {
  ApplicationFailure, CancellationScope, allHandlersFinished, condition, continueAsNew, defineSignal, patched, proxyActivities,
  proxyLocalActivities, setHandler, upsertMemo, upsertSearchAttributes, workflowInfo,
} from '@temporalio/workflow';
import type { CommonActivities } from '../activities/common.ts';
import type { NodeAgentActivities } from '../node-agent/activities.ts';
import type { RunSummary } from '../lib/change.ts';
import { SA, nodeQueue } from '../lib/ids.ts';
import type { Outcome } from '../lib/ids.ts';
import type { ObjectRef } from '../lib/kinds.ts';

/** Sent by the watchers (signalWithStart) whenever the object changes; the payload says what happened. */
export const changed = defineSignal<[string]>('changed');

/** Every run's input: the object's key parts and what started it. */
export interface ReconcileInput {
  namespace?: string;
  name: string;
  trigger: string;
  /** Events after which a run continues as new (default 2,000; lower only in tests). */
  maxHistory?: number;
}

// Bounded attempts everywhere: a failure that outlives them ends the pass as `retrying`, and the loop
// (not the activity) waits and looks again, so the run says what it is waiting on.
const attempts = { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: 3 } as const;

/**
 * Reads run as local activities (no server round trip). Writes run as regular activities: a local
 * activity's result is lost with its workflow task when a signal races the run's completion, and the
 * retry then finds nothing left to change, so the history would not show what the run wrote.
 */
export const reads = <T extends object>() => proxyLocalActivities<T>({ startToCloseTimeout: '30s', localRetryThreshold: '10s', retry: attempts });
export const writes = <T extends object>() => proxyActivities<T>({ startToCloseTimeout: '60s', retry: attempts });

/**
 * The node agent's activities, on the node's own task queue. Quick, so short timeouts: an agent that is
 * down (nothing picks the task up) or killed while it held one is noticed in seconds, and the pass ends
 * as `retrying` with "node agent ... did not answer" instead of waiting silently.
 */
export const onNode = (node: string) => proxyActivities<NodeAgentActivities>({
  taskQueue: nodeQueue(node), startToCloseTimeout: '15s', scheduleToCloseTimeout: '40s', retry: attempts,
});

const common = writes<CommonActivities>();

/** What a pass returns: done (an outcome), waiting for something outside the object, or interrupted. */
export type PassResult = 'converged' | 'deleted' | 'skipped' | 'interrupted' | { waiting: string };

/** What a pass of a reconcile loop gets: the summary, and a way to wait that a new change interrupts. */
export interface Pass {
  s: RunSummary;
  /**
   * Runs a wait on a node agent that a newer change can make moot (the pod or node was deleted). On a
   * signal, `stillWanted` takes a fresh look: while it holds the wait goes on (the pass after it takes
   * the change); otherwise the wait is cancelled and the loop starts over. Resolves undefined when
   * interrupted.
   */
  interruptible: <T>(fn: () => Promise<T>, stillWanted: () => Promise<boolean>) => Promise<T | undefined>;
}

interface FailureLike { type?: unknown; message?: unknown; cause?: unknown; nonRetryable?: unknown; name?: unknown }

/**
 * The reason, message and finality of a failure seen by the workflow. Activity failures wrap the
 * ApplicationFailure the activity interceptor made (type = the classified reason); anything else is
 * workflow code's own error (a bug): retried by the loop, its message shown, never a stuck task.
 */
export function failureOf(err: unknown): { reason: string; message: string; final: boolean } {
  const e = err as FailureLike;
  const cause = e.cause as FailureLike | undefined;
  const src = cause && typeof cause === 'object' ? cause : e;
  // A timeout or a cancelled attempt carries no type: name it after what failed.
  const reason = typeof src.type === 'string' && src.type ? src.type : typeof src.name === 'string' ? src.name : 'Error';
  const base = typeof src.message === 'string' && src.message ? src.message : String(err);
  const what = typeof e.message === 'string' && e.message && src !== e ? ` (${e.message})` : '';
  return { reason, message: `${base}${what}`, final: src.nonRetryable === true };
}

/** Seconds to wait after the n-th failed pass in a row: 1, 2, 4 ... capped at 30. */
export const backoffMs = (n: number): number => Math.min(1000 * 2 ** Math.max(0, n - 1), 30_000);

/** Past this many events a run continues as new, so a long-retrying object never grows a huge history. */
const MAX_HISTORY = 2_000;

/**
 * Runs `pass` until it converges with no signal pending, then records the outcome (search attribute)
 * and the summary (memo).
 */
export async function reconcile(target: ObjectRef, input: ReconcileInput, pass: (p: Pass) => Promise<PassResult>): Promise<RunSummary> {
  const summary: RunSummary = { triggers: input.trigger ? [input.trigger] : [], outcome: 'running', changes: [] };
  let dirty = true;
  let signals = 0;
  setHandler(changed, (t) => {
    summary.triggers.push(t);
    dirty = true;
    signals++;
  });
  const record = (outcome: Outcome): void => {
    summary.outcome = outcome;
    upsertSearchAttributes([{ key: SA.outcome, value: outcome }]);
    upsertMemo({ summary });
  };
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

  let failures = 0;
  let waits = 0;
  for (let passes = 0; dirty; passes++) {
    // A run kept busy by a stream of changes, not only a retrying one, stays under the history bound.
    if (passes > 0) await maybeContinueAsNew(input, summary);
    dirty = false;
    let result: PassResult;
    try {
      result = await pass({ s: summary, interruptible });
    } catch (err) {
      const f = failureOf(err);
      summary.error = `${f.reason}: ${f.message}`;
      if (f.final) {
        record('failed');
        await common.recordFailure({ ...target, type: 'Warning', reason: f.reason, message: f.message }).catch(() => undefined);
        throw ApplicationFailure.nonRetryable(f.message, f.reason);
      }
      failures++;
      record('retrying');
      // One Event series per object and reason (its count grows), not a new Event per retry.
      await common.recordFailure({ ...target, type: 'Warning', reason: f.reason, message: `retrying: ${f.message}` }).catch(() => undefined);
      await condition(() => dirty, backoffMs(failures));
      dirty = true;
      continue;
    }
    if (result === 'interrupted') {
      dirty = true;
      continue;
    }
    failures = 0;
    if (typeof result === 'object') {
      // Not an error of the object's: something it needs is not there yet. Look again soon, or at once
      // when the object changes.
      summary.waitingFor = result.waiting;
      record('waiting');
      await condition(() => dirty, backoffMs(++waits));
      dirty = true;
      continue;
    }
    waits = 0;
    delete summary.error;
    delete summary.waitingFor;
    summary.outcome = result;
  }
  record(summary.outcome as Outcome);
  return summary;
}

async function maybeContinueAsNew(input: ReconcileInput, summary: RunSummary): Promise<void> {
  const info = workflowInfo();
  if (!info.continueAsNewSuggested && info.historyLength < (input.maxHistory ?? MAX_HISTORY)) return;
  await condition(allHandlersFinished);
  upsertMemo({ summary });
  await continueAsNew<(i: ReconcileInput) => Promise<RunSummary>>({ ...input, trigger: `continued: ${summary.triggers.slice(-3).join(', ')}` });
}
