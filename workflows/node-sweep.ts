/**
 * A node's sweep of what missed DELs left behind (pod ports, veths, addresses of pods no longer bound
 * there): a run the node agent starts on itself when it finds any, so every removal is in the history
 * of the node (`kovn history node <name>`) like any other change.
 */
import { patched, proxyActivities, proxyLocalActivities, upsertMemo, upsertSearchAttributes } from '@temporalio/workflow';
import type { PodReads } from '../activities/pod.ts';
import type { NodeAgentActivities, Orphans } from '../node-agent/activities.ts';
import type { Change } from '../lib/change.ts';
import { CONTROLLER_QUEUE, SA } from '../lib/ids.ts';

const la = proxyLocalActivities<NodeAgentActivities>({
  startToCloseTimeout: '60s',
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: 5 },
});

/** The controller's read of NB: whether a pod's port is still there (an address is freed only once it is not). */
const nb = proxyActivities<PodReads>({
  taskQueue: CONTROLLER_QUEUE, startToCloseTimeout: '5s', scheduleToCloseTimeout: '20s', retry: { initialInterval: '200ms', maximumInterval: '2s' },
});

export async function sweepNode(o: Orphans): Promise<Change[]> {
  const pods = [...new Set([...o.ports.map((p) => p.pod), ...o.addresses.map((a) => a.pod)])];
  upsertMemo({ pods });
  if (patched('sweep-asks-nb') && o.addresses.length > 0) {
    const held = await Promise.all(o.addresses.map(({ uid, pod }) => {
      const [namespace = '', name = ''] = pod.split('/');
      return nb.podPortHeld({ namespace, name, uid }).catch(() => true);
    }));
    o = { ...o, addresses: o.addresses.filter((_, i) => !held[i]) };
  }
  const changes = await la.removeOrphans(o);
  upsertSearchAttributes([{ key: SA.outcome, value: 'converged' }]);
  upsertMemo({ summary: { triggers: [`orphans of ${pods.join(', ')}`], outcome: 'converged', changes } });
  return changes;
}
