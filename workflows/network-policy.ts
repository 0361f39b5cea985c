/** The NetworkPolicy kind's workflow: its rows written in one activity per pass, removed with it. */
import type { NetworkPolicyWrites } from '../activities/network-policy.ts';
import type { RunSummary } from '../lib/change.ts';
import { reconcile, writes } from './reconcile.ts';
import type { ReconcileInput } from './reconcile.ts';

const write = writes<NetworkPolicyWrites>();

export async function reconcileNetworkPolicy(input: ReconcileInput): Promise<RunSummary> {
  const namespace = input.namespace ?? '';
  const { name } = input;
  return reconcile({ kind: 'NetworkPolicy', namespace, name }, input, async ({ s }) => {
    const r = await write.syncNetworkPolicy({ namespace, name });
    s.changes.push(...r.changes);
    return r.outcome;
  });
}
