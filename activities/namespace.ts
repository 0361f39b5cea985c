/**
 * The Namespace kind's activity: its default-deny port groups, one per direction a policy of it
 * isolates, holding every pod those policies select; removed when no policy isolates it any more.
 */
import type { Change } from '../lib/change.ts';
import { clusterFamilies } from '../lib/cluster-config.ts';
import { getNamespace, listNetworkPolicies, listPods } from '../lib/kube.ts';
import type { ControllerDeps } from './common.ts';
import { podPortsByKey, syncOwned } from './nb.ts';
import { namespaceDenyRows, policyPods } from './translate/network-policy.ts';
import { POLICY_TABLES } from './network-policy.ts';

export default function createNamespaceActivities({ nb, kube, cfg }: ControllerDeps) {
  const writes = {
    async syncNamespace({ name }: { name: string }): Promise<{ changes: Change[]; outcome: 'converged' | 'deleted' }> {
      const ns = await getNamespace(kube, name);
      const gone = !ns || !!ns.metadata?.deletionTimestamp;
      const [policies, pods] = gone ? [[], []] : await Promise.all([listNetworkPolicies(kube, name), listPods(kube, name)]);
      const rows = namespaceDenyRows(name, policies, policyPods(pods, podPortsByKey(nb)), clusterFamilies(cfg));
      const changes = await syncOwned(nb, { type: 'Namespace', name }, rows, { prune: true, tables: POLICY_TABLES, comment: `kovn: Namespace ${name}` });
      return { changes, outcome: gone ? 'deleted' : 'converged' };
    },
  };
  return { reads: {}, writes };
}

export type NamespaceActivities = ReturnType<typeof createNamespaceActivities>;
export type NamespaceWrites = NamespaceActivities['writes'];
