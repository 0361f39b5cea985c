/**
 * The Service kind's watch: every Service; its EndpointSlices (by their `kubernetes.io/service-name`
 * label) and the nodes' gateways (for the Services with per-node load balancers) map to its key. In
 * sync means NB holds exactly the load balancers its Service, slices and nodes make, so a restart with
 * nothing changed starts nothing, and an endpoint burst coalesces into the Service's one run.
 */
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import { L3_GATEWAY_CONFIG } from '../lib/annotations.ts';
import { SERVICE_NAME_LABEL } from '../lib/kube.ts';
import { gatewayNodes, serviceLoadBalancersInNb, serviceOwners, serviceReach } from '../activities/nb.ts';
import { ZONE_LABEL, hasLoadBalancer, serviceLoadBalancers, withZones } from '../activities/translate/service.ts';
import { keyOf } from './watch.ts';
import type { Watch, WatchContext } from './watch.ts';

const SLICES = '/apis/discovery.k8s.io/v1/endpointslices';

const sliceOwner = (sl: V1EndpointSlice): string | undefined => {
  const svc = sl.metadata?.labels?.[SERVICE_NAME_LABEL];
  return svc ? `${sl.metadata?.namespace ?? ''}/${svc}` : undefined;
};

const slicesOf = (svc: V1Service, ctx: WatchContext): V1EndpointSlice[] =>
  (ctx.related(SLICES) as V1EndpointSlice[]).filter((sl) => sliceOwner(sl) === keyOf(svc));

/**
 * Services whose rules differ per node: a node's gateway coming or going changes their rows. An
 * endpoint on a node's own IP (a host-network pod) makes them so too.
 */
function perNode(svc: V1Service, ctx: WatchContext, nodeIps: ReadonlySet<string>): boolean {
  if (svc.spec?.type === 'NodePort' || svc.spec?.type === 'LoadBalancer' || svc.spec?.internalTrafficPolicy === 'Local' || !!svc.spec?.trafficDistribution) return true;
  if (slicesOf(svc, ctx).some((sl) => (sl.endpoints ?? []).some((e) => nodeIps.has(e.addresses[0] ?? '')))) return true;
  // Per node in NB still (that endpoint's node went): its rows fold back into the cluster row.
  return serviceLoadBalancersInNb(ctx.nb, keyOf(svc)).some((lb) => lb.name.includes('_node_'));
}

const same = (a: Record<string, string>, b: Record<string, string>): boolean =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([k, v]) => b[k] === v);

function inSync(svc: V1Service, ctx: WatchContext): boolean {
  const have = serviceLoadBalancersInNb(ctx.nb, keyOf(svc));
  if (!hasLoadBalancer(svc) || svc.metadata?.deletionTimestamp) return have.length === 0;
  const want = serviceLoadBalancers(svc, slicesOf(svc, ctx), withZones(gatewayNodes(ctx.nb), ctx.related('/api/v1/nodes')), serviceReach(ctx.nb, ctx.cfg)).rows;
  if (want.length !== have.length) return false;
  return want.every((w) => {
    const h = have.find((x) => x.name === w.name);
    const c = w.columns as { vips: Record<string, string>; options: Record<string, string> };
    return !!h && same(c.vips, h.vips) && same(c.options, h.options);
  });
}

const watch: Watch<V1Service> = {
  kind: 'Service',
  path: '/api/v1/services',
  list: ({ kube }) => () => kube.core.listServiceForAllNamespaces(),
  // status: LoadBalancer addresses (kovn's own allocation comes back as one more, idle, run).
  relevant: (s) => [s.metadata?.uid, s.metadata?.deletionTimestamp, JSON.stringify(s.spec ?? {}), JSON.stringify(s.status?.loadBalancer ?? {})],
  actionable: (s, ctx) => hasLoadBalancer(s) || serviceLoadBalancersInNb(ctx.nb, keyOf(s)).length > 0,
  inSync,
  ownerKeys: ({ nb }) => serviceOwners(nb),
  secondary: [{
    path: SLICES,
    list: ({ kube }) => () => kube.discovery.listEndpointSliceForAllNamespaces(),
    relevant: (sl: V1EndpointSlice) => [sl.metadata?.uid, JSON.stringify(sl.endpoints), JSON.stringify(sl.ports)],
    // The slice's Service (a deleted slice too: its endpoints leave), unless NB already holds what the
    // slices make now (a restarted controller's first list starts nothing). A Service not in its store
    // yet is dispatched by its own add.
    keys: (sl: V1EndpointSlice, ctx: WatchContext) => {
      const k = sliceOwner(sl);
      const svc = k ? ctx.object('Service', k) : undefined;
      return k && svc && !inSync(svc, ctx) ? [k] : [];
    },
  }, {
    path: '/api/v1/nodes',
    list: ({ kube }) => () => kube.core.listNode(),
    relevant: (n: V1Node) => [n.metadata?.uid, n.metadata?.annotations?.[L3_GATEWAY_CONFIG], n.metadata?.labels?.[ZONE_LABEL]],
    keys: (_n, ctx) => {
      const nodeIps = new Set(gatewayNodes(ctx.nb).flatMap((n) => n.ips));
      return (ctx.objects('Service') as V1Service[]).filter((s) => perNode(s, ctx, nodeIps) && !inSync(s, ctx)).map(keyOf);
    },
  }] as Watch['secondary'],
};

export default watch;
