/**
 * The Namespace kind's watch: a namespace has work while a policy of it isolates its pods or it owns
 * rows in NB; its policies and pods map to it when its default-deny port groups in NB no longer hold
 * what they make.
 */
import type { V1Namespace, V1NetworkPolicy, V1Pod } from '@kubernetes/client-node';
import { ACL_LOGGING } from '../lib/annotations.ts';
import { clusterFamilies } from '../lib/cluster-config.ts';
import { ownedInSync, podPortsByKey, policyOwners } from '../activities/nb.ts';
import { POLICY_TABLES } from '../activities/network-policy.ts';
import { policyProgress } from '../activities/namespace.ts';
import { namespaceDenyRows, namespaceLogging, policyPods } from '../activities/translate/network-policy.ts';
import { PODS, POLICIES, podRelevant } from './network-policy.ts';
import type { Watch, WatchContext } from './watch.ts';

const policiesOf = (ns: string, ctx: WatchContext): V1NetworkPolicy[] =>
  (ctx.related(POLICIES) as V1NetworkPolicy[]).filter((p) => p.metadata?.namespace === ns);

function inSync(n: V1Namespace, ctx: WatchContext): boolean {
  const name = n.metadata?.name ?? '';
  const pods = n.metadata?.deletionTimestamp ? [] : (ctx.related(PODS) as V1Pod[]).filter((p) => p.metadata?.namespace === name);
  const now = policyPods(pods, podPortsByKey(ctx.nb));
  const { written, held, denied, pending } = policyProgress(ctx.nb, policiesOf(name, ctx), now);
  // A policy whose own rows are still to come: the namespace's run waits for them, then adds its pods.
  if (pending.length && !n.metadata?.deletionTimestamp) return false;
  const rows = n.metadata?.deletionTimestamp ? [] : namespaceDenyRows(name, written, now, clusterFamilies(ctx.cfg), namespaceLogging(n.metadata?.annotations).logging, held, denied);
  return ownedInSync(ctx.nb, { type: 'Namespace', name }, rows, POLICY_TABLES);
}

/** The namespace's key, when it is in the store and NB does not hold what it makes. */
const ifDrifted = (ns: string, ctx: WatchContext): string[] => {
  const n = ctx.object('Namespace', ns);
  return n && !inSync(n, ctx) ? [ns] : [];
};

const watch: Watch<V1Namespace> = {
  kind: 'Namespace',
  path: '/api/v1/namespaces',
  list: ({ kube }) => () => kube.core.listNamespace(),
  relevant: (n) => [n.metadata?.uid, n.metadata?.deletionTimestamp, n.metadata?.annotations?.[ACL_LOGGING]],
  actionable: (n, ctx) => policiesOf(n.metadata?.name ?? '', ctx).length > 0 || policyOwners(ctx.nb, 'Namespace').includes(n.metadata?.name ?? ''),
  inSync,
  ownerKeys: ({ nb }) => policyOwners(nb, 'Namespace'),
  secondary: [{
    path: POLICIES,
    list: ({ kube }) => () => kube.networking.listNetworkPolicyForAllNamespaces(),
    relevant: (p: V1NetworkPolicy) => [p.metadata?.uid, p.metadata?.deletionTimestamp, JSON.stringify(p.spec?.podSelector ?? {}), JSON.stringify(p.spec?.policyTypes ?? []), !!p.spec?.egress?.length],
    keys: (p: V1NetworkPolicy, ctx: WatchContext) => ifDrifted(p.metadata?.namespace ?? '', ctx),
  }, {
    path: PODS,
    list: ({ kube }) => () => kube.core.listPodForAllNamespaces(),
    relevant: podRelevant,
    keys: (p: V1Pod, ctx: WatchContext) => ifDrifted(p.metadata?.namespace ?? '', ctx),
  }] as Watch['secondary'],
};

export default watch;
