/** The Namespace kind's workflow: its default-deny port groups, as its policies and pods say. */
import type { NamespaceWrites } from '../activities/namespace.ts';
import type { RunSummary } from '../lib/change.ts';
import { reconcile, writes } from './reconcile.ts';
import type { ReconcileInput } from './reconcile.ts';

const write = writes<NamespaceWrites>();

export async function reconcileNamespace(input: ReconcileInput): Promise<RunSummary> {
  const { name } = input;
  return reconcile({ kind: 'Namespace', namespace: '', name }, input, async ({ s }) => {
    const r = await write.syncNamespace({ name });
    s.changes.push(...r.changes);
    // A policy's pods join the deny once its allows are written: look again shortly.
    return r.pending ? { waiting: r.pending } : r.outcome;
  });
}
