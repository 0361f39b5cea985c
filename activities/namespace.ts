/**
 * The Namespace kind's activity: its default-deny port groups, one per direction a policy of it
 * isolates, holding every pod those policies select; removed when no policy isolates it any more. A
 * policy's pods join the deny only once its own allows are in NB: a connection the new policy allows
 * lives through its creation, and a pod a policy newly selects joins the deny once that policy's own
 * group holds it.
 */
import type { V1NetworkPolicy } from '@kubernetes/client-node';
import type { Change } from '../lib/change.ts';
import { clusterFamilies } from '../lib/cluster-config.ts';
import { getNamespace, listNetworkPolicies, listPods, recordEvent } from '../lib/kube.ts';
import type { ControllerDeps } from './common.ts';
import { cacheCatchUp, podPortsByKey, syncOwned } from './nb.ts';
import type { NbClient } from './nb.ts';
import { denyPortGroup, namespaceDenyRows, namespaceLogging, policyPods, policyPortGroup, selectedPods } from './translate/network-policy.ts';
import type { Direction, PolicyPod } from './translate/network-policy.ts';
import { POLICY_TABLES } from './network-policy.ts';

/**
 * How far the namespace's policies are: those whose rows are in NB, whether a policy's own group holds
 * a port (its allows cover that pod), and the policies that still have to add pods they select.
 */
export function policyProgress(nb: NbClient, policies: readonly V1NetworkPolicy[], pods: readonly PolicyPod[]): {
  written: V1NetworkPolicy[]; held: (p: V1NetworkPolicy, port: string) => boolean; denied: (dir: Direction, port: string) => boolean; pending: string[];
} {
  const ns = policies[0]?.metadata?.namespace ?? '';
  const denied = (dir: Direction, port: string): boolean => nb.cache.table('Port_Group').byIndex({ name: denyPortGroup(ns, dir) })?.ports.includes(port) ?? false;
  const group = (p: V1NetworkPolicy) => nb.cache.table('Port_Group').byIndex({ name: policyPortGroup(p.metadata?.namespace ?? '', p.metadata?.name ?? '') });
  const held = (p: V1NetworkPolicy, port: string): boolean => group(p)?.ports.includes(port) ?? false;
  const live = policies.filter((p) => !p.metadata?.deletionTimestamp);
  const pending = live.filter((p) => !group(p) || selectedPods(p, pods).some((x) => x.lsp && !held(p, x.lsp.uuid))).map((p) => p.metadata?.name ?? '');
  return { written: policies.filter((p) => group(p) !== undefined), held, denied, pending };
}

export default function createNamespaceActivities({ nb, kube, cfg }: ControllerDeps) {
  const writes = {
    async syncNamespace({ name }: { name: string }): Promise<{ changes: Change[]; outcome: 'converged' | 'deleted'; pending?: string }> {
      const ns = await getNamespace(kube, name);
      const gone = !ns || !!ns.metadata?.deletionTimestamp;
      const [policies, pods] = gone ? [[], []] : await Promise.all([listNetworkPolicies(kube, name), listPods(kube, name)]);
      // The policies' own runs are usually writing right now: give them a moment (NB's changes wake the
      // wait) before writing the deny, so that it follows their allows within milliseconds.
      let { pending } = policyProgress(nb, policies, policyPods(pods, podPortsByKey(nb)));
      for (const t0 = Date.now(); pending.length && Date.now() - t0 < 5_000;) {
        await cacheCatchUp(nb, new Set(['Port_Group']), 250);
        ({ pending } = policyProgress(nb, policies, policyPods(pods, podPortsByKey(nb))));
      }
      const { logging, problem } = namespaceLogging(ns?.metadata?.annotations);
      if (problem && !gone) await recordEvent(kube, { kind: 'Namespace', name, uid: ns.metadata?.uid ?? '' }, 'Warning', problem.reason, problem.message);
      // From the cache on every plan: the policies written and the pods' ports as they are then.
      const rows = () => {
        const now = policyPods(pods, podPortsByKey(nb));
        const { written, held, denied } = policyProgress(nb, policies, now);
        return namespaceDenyRows(name, written, now, clusterFamilies(cfg), logging, held, denied);
      };
      const changes = await syncOwned(nb, { type: 'Namespace', name }, rows, { prune: true, tables: POLICY_TABLES, comment: `kovn: Namespace ${name}` });
      return { changes, outcome: gone ? 'deleted' : 'converged', ...(pending.length ? { pending: `the rows of NetworkPolicy ${pending.join(', ')}` } : {}) };
    },
  };
  return { reads: {}, writes };
}

export type NamespaceActivities = ReturnType<typeof createNamespaceActivities>;
export type NamespaceWrites = NamespaceActivities['writes'];
