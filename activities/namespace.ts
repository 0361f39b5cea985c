/**
 * The Namespace kind's activity: its default-deny port groups, one per direction a policy of it
 * isolates, holding every pod those policies select; removed when no policy isolates it any more. A
 * policy's pods join the deny only once its own allows are in NB: a connection the new policy allows
 * lives through its creation.
 */
import type { V1NetworkPolicy } from '@kubernetes/client-node';
import type { Change } from '../lib/change.ts';
import { clusterFamilies } from '../lib/cluster-config.ts';
import { getNamespace, listNetworkPolicies, listPods, recordEvent } from '../lib/kube.ts';
import type { ControllerDeps } from './common.ts';
import { podPortsByKey, syncOwned } from './nb.ts';
import type { NbClient } from './nb.ts';
import { namespaceDenyRows, namespaceLogging, policyPods, policyPortGroup } from './translate/network-policy.ts';
import { POLICY_TABLES } from './network-policy.ts';

/** The policies whose own rows (port group and allows) are in NB already, and those still to come. */
export function policiesWritten(nb: NbClient, policies: readonly V1NetworkPolicy[]): { written: V1NetworkPolicy[]; pending: string[] } {
  const has = (p: V1NetworkPolicy): boolean => !!nb.cache.table('Port_Group').byIndex({ name: policyPortGroup(p.metadata?.namespace ?? '', p.metadata?.name ?? '') });
  return { written: policies.filter(has), pending: policies.filter((p) => !has(p) && !p.metadata?.deletionTimestamp).map((p) => p.metadata?.name ?? '') };
}

export default function createNamespaceActivities({ nb, kube, cfg }: ControllerDeps) {
  const writes = {
    async syncNamespace({ name }: { name: string }): Promise<{ changes: Change[]; outcome: 'converged' | 'deleted'; pending?: string }> {
      const ns = await getNamespace(kube, name);
      const gone = !ns || !!ns.metadata?.deletionTimestamp;
      const [policies, pods] = gone ? [[], []] : await Promise.all([listNetworkPolicies(kube, name), listPods(kube, name)]);
      const { pending } = policiesWritten(nb, policies);
      const { logging, problem } = namespaceLogging(ns?.metadata?.annotations);
      if (problem && !gone) await recordEvent(kube, { kind: 'Namespace', name, uid: ns.metadata?.uid ?? '' }, 'Warning', problem.reason, problem.message);
      // From the cache on every plan: the policies written and the pods' ports as they are then.
      const rows = () => namespaceDenyRows(name, policiesWritten(nb, policies).written, policyPods(pods, podPortsByKey(nb)), clusterFamilies(cfg), logging);
      const changes = await syncOwned(nb, { type: 'Namespace', name }, rows, { prune: true, tables: POLICY_TABLES, comment: `kovn: Namespace ${name}` });
      return { changes, outcome: gone ? 'deleted' : 'converged', ...(pending.length ? { pending: `the rows of NetworkPolicy ${pending.join(', ')}` } : {}) };
    },
  };
  return { reads: {}, writes };
}

export type NamespaceActivities = ReturnType<typeof createNamespaceActivities>;
export type NamespaceWrites = NamespaceActivities['writes'];
