/**
 * A node's sweep of what missed DELs left behind (pod ports, veths, addresses of pods no longer bound
 * there): a run the node agent starts on itself when it finds any, so every removal is in the history
 * of the node (`kovn history node <name>`) like any other change.
 */
import { proxyLocalActivities, upsertMemo, upsertSearchAttributes } from '@temporalio/workflow';
import type { NodeAgentActivities, Orphans } from '../node-agent/activities.ts';
import type { Change } from '../lib/change.ts';
import { SA } from '../lib/ids.ts';

const la = proxyLocalActivities<NodeAgentActivities>({
  startToCloseTimeout: '60s',
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: 5 },
});

export async function sweepNode(o: Orphans): Promise<Change[]> {
  const pods = [...new Set([...o.ports.map((p) => p.pod), ...o.addresses.map((a) => a.pod)])];
  upsertMemo({ pods });
  const changes = await la.removeOrphans(o);
  upsertSearchAttributes([{ key: SA.outcome, value: 'converged' }]);
  upsertMemo({ summary: { triggers: [`orphans of ${pods.join(', ')}`], outcome: 'converged', changes } });
  return changes;
}
