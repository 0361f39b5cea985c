/**
 * The NetworkPolicy kind's watch: every policy; a pod's change maps to the policies it can touch (those
 * of its namespace, those whose peers look across namespaces, and those whose rows hold its port or
 * address), a namespace's to the cross-namespace ones, each only when NB no longer holds what the policy
 * makes. In sync means exactly that, so a restart with nothing changed starts nothing.
 */
import type { V1Namespace, V1NetworkPolicy, V1Pod } from '@kubernetes/client-node';
import { ACL_LOGGING, POD_NETWORKS } from '../lib/annotations.ts';
import { clusterFamilies } from '../lib/cluster-config.ts';
import { ownedInSync, podPortsByKey, policiesHolding, policyOwners } from '../activities/nb.ts';
import { POLICY_TABLES } from '../activities/network-policy.ts';
import { crossNamespace, networkPolicyRows, policyNamespaces, policyPods } from '../activities/translate/network-policy.ts';
import { podPortName } from '../activities/translate/pod.ts';
import { keyOf } from './watch.ts';
import type { Watch, WatchContext } from './watch.ts';

export const PODS = '/api/v1/pods';
export const NAMESPACES = '/api/v1/namespaces';
export const POLICIES = '/apis/networking.k8s.io/v1/networkpolicies';

/** A pod's fields that policies read: who it is, its labels, its declared ports, and its network. */
export const podRelevant = (p: V1Pod): unknown[] => [p.metadata?.uid, JSON.stringify(p.metadata?.labels ?? {}), p.spec?.hostNetwork,
  JSON.stringify((p.spec?.containers ?? []).map((c) => c.ports ?? [])), p.metadata?.annotations?.[POD_NETWORKS]];

/** `ports`: the pods' ports in NB, read once for a batch of checks (a pod's change checks many policies). */
function inSync(p: V1NetworkPolicy, ctx: WatchContext, ports = podPortsByKey(ctx.nb)): boolean {
  const owner = { type: 'NetworkPolicy' as const, name: keyOf(p) };
  if (p.metadata?.deletionTimestamp) return ownedInSync(ctx.nb, owner, [], POLICY_TABLES);
  // A policy that looks no further than its namespace needs that namespace's pods only.
  const all = ctx.related(PODS) as V1Pod[];
  const pods = policyPods(crossNamespace(p) ? all : all.filter((x) => x.metadata?.namespace === p.metadata?.namespace), ports);
  const { rows } = networkPolicyRows(p, pods, policyNamespaces(ctx.related(NAMESPACES)), clusterFamilies(ctx.cfg));
  return ownedInSync(ctx.nb, owner, rows, POLICY_TABLES);
}

const policies = (ctx: WatchContext): V1NetworkPolicy[] => ctx.objects('NetworkPolicy') as V1NetworkPolicy[];

const watch: Watch<V1NetworkPolicy> = {
  kind: 'NetworkPolicy',
  path: POLICIES,
  list: ({ kube }) => () => kube.networking.listNetworkPolicyForAllNamespaces(),
  // The typed list's `_from` is the watch's `from`: the same policy fingerprints the same.
  relevant: (p) => [p.metadata?.uid, p.metadata?.deletionTimestamp, JSON.stringify(p.spec ?? {}).replaceAll('"_from":', '"from":')],
  inSync: (p, ctx) => inSync(p, ctx),
  ownerKeys: ({ nb }) => policyOwners(nb, 'NetworkPolicy'),
  secondary: [{
    path: PODS,
    list: ({ kube }) => () => kube.core.listPodForAllNamespaces(),
    relevant: podRelevant,
    keys: (pod: V1Pod, ctx: WatchContext) => {
      const ns = pod.metadata?.namespace ?? '';
      const lsp = ctx.nb.cache.table('Logical_Switch_Port').byIndex({ name: podPortName(ns, pod.metadata?.name ?? '') });
      const holding = new Set(policiesHolding(ctx.nb, lsp?._uuid, (lsp?.addresses[0] ?? '').split(' ').slice(1)));
      const ports = podPortsByKey(ctx.nb);
      return policies(ctx).filter((p) => (p.metadata?.namespace === ns || crossNamespace(p) || holding.has(keyOf(p))) && !inSync(p, ctx, ports)).map(keyOf);
    },
  }, {
    path: NAMESPACES,
    list: ({ kube }) => () => kube.core.listNamespace(),
    relevant: (n: V1Namespace) => [n.metadata?.uid, JSON.stringify(n.metadata?.labels ?? {}), n.metadata?.annotations?.[ACL_LOGGING]],
    keys: (n: V1Namespace, ctx: WatchContext) => {
      const ports = podPortsByKey(ctx.nb);
      return policies(ctx).filter((p) => (crossNamespace(p) || p.metadata?.namespace === n.metadata?.name) && !inSync(p, ctx, ports)).map(keyOf);
    },
  }] as Watch['secondary'],
};

export default watch;
