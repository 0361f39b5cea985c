/**
 * The NetworkPolicy kind's activity: one pass, the policy read live with the pods and namespaces its
 * peers can name, its port group, ACLs and address sets written in one transaction (an edit changes
 * only the rows and set members that differ), or removed with it. What the policy asks that kovn cannot
 * do as written (a CIDR with host bits, a named port no pod declares) is an Event on it; the rest is
 * enforced.
 */
import type { Change } from '../lib/change.ts';
import { clusterFamilies } from '../lib/cluster-config.ts';
import { getNamespace, getNetworkPolicy, listNamespaces, listPods, recordEvent } from '../lib/kube.ts';
import type { ControllerDeps } from './common.ts';
import { deleteOwned, podPortsByKey, syncOwned } from './nb.ts';
import { crossNamespace, networkPolicyRows, policyNamespaces, policyPods } from './translate/network-policy.ts';

/** The tables a policy's rows live in: what its pass prunes. */
export const POLICY_TABLES = ['Port_Group', 'ACL', 'Address_Set'] as const;

export interface PolicySyncResult {
  changes: Change[];
  outcome: 'converged' | 'deleted';
}

export default function createNetworkPolicyActivities({ nb, kube, cfg }: ControllerDeps) {
  const writes = {
    async syncNetworkPolicy({ namespace, name }: { namespace: string; name: string }): Promise<PolicySyncResult> {
      const owner = { type: 'NetworkPolicy' as const, name: `${namespace}/${name}` };
      const p = await getNetworkPolicy(kube, namespace, name);
      if (!p || p.metadata?.deletionTimestamp) {
        return { changes: await deleteOwned(nb, owner), outcome: 'deleted' };
      }
      const wide = crossNamespace(p);
      // The policy's own namespace is always read: its ACL logging applies to the policy's allows.
      const [pods, namespaces] = await Promise.all([listPods(kube, wide ? undefined : namespace),
        wide ? listNamespaces(kube) : getNamespace(kube, namespace).then((n) => (n ? [n] : []))]);
      const translate = () => networkPolicyRows(p, policyPods(pods, podPortsByKey(nb)), policyNamespaces(namespaces), clusterFamilies(cfg));
      const { problems } = translate();
      // The pods' ports are read from the cache on every plan: a pod whose port was created meanwhile
      // (and joined the group in that transaction) is kept, never removed by a re-plan.
      const changes = await syncOwned(nb, owner, () => translate().rows, { prune: true, tables: POLICY_TABLES, comment: `kovn: NetworkPolicy ${owner.name}` });
      for (const x of problems) {
        await recordEvent(kube, { kind: 'NetworkPolicy', apiVersion: 'networking.k8s.io/v1', namespace, name, uid: p.metadata?.uid ?? '' }, 'Warning', x.reason, x.message);
      }
      return { changes, outcome: 'converged' };
    },
  };
  return { reads: {}, writes };
}

export type NetworkPolicyActivities = ReturnType<typeof createNetworkPolicyActivities>;
export type NetworkPolicyWrites = NetworkPolicyActivities['writes'];
