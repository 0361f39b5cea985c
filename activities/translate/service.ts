/**
 * Pure translation: a Service and its EndpointSlices as OVN load balancers, named and laid out as
 * OVN-Kubernetes does. One `Service_<ns>/<name>_<PROTO>_cluster` row per protocol holds every VIP that
 * is the same on every node (ClusterIPs, ExternalIPs) and sits in the cluster-wide load balancer group
 * that every node switch and gateway router carries. Rules that differ per node get per-node rows:
 * NodePorts (the node's own IPs, on its gateway router and its switch), `internalTrafficPolicy: Local`
 * (the ClusterIPs on the node's switch and gateway router, local endpoints only), trafficDistribution,
 * `externalTrafficPolicy: Local` (local endpoints only, client address kept with `skip_snat`), and
 * endpoints on a node's own IP (its gateway router reaches its host at the masquerade address).
 */
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import { bare } from './topology.ts';
import { MASQUERADE, gatewayRouter } from './gateway.ts';
import { OVNK_KIND, OVNK_OWNER, ownedBy } from './ownership.ts';
import type { Owner } from './ownership.ts';
import type { AnyDesiredRow } from '../nb.ts';
import { ingressIps } from './load-balancer.ts';
import { contains, parseCidr, parseIp } from '../../lib/cidr.ts';

/** The load balancer group on every node switch and gateway router (OVN-Kubernetes' name). */
export const CLUSTER_LB_GROUP = 'clusterLBGroup';
/** The address a pod's hairpinned connection (to itself, through its Service) comes from. */
export const HAIRPIN_SNAT_IPS = ['169.254.169.5', 'fd69::5'];

export type Protocol = 'TCP' | 'UDP' | 'SCTP';
const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];

export const lbName = (key: string, proto: Protocol, scope: string): string => `Service_${key}_${proto}_${scope}`;

/** What the nodes are to a Service: their names and the IPs a NodePort answers on. */
export interface ServiceNode {
  name: string;
  ips: readonly string[];
  /** Its `topology.kubernetes.io/zone` label, for `trafficDistribution: PreferSameZone`. */
  zone?: string;
}

export const ZONE_LABEL = 'topology.kubernetes.io/zone';

/** The nodes with their zones from the Node objects (a node the API does not show keeps none). */
export function withZones(nodes: readonly ServiceNode[], k8sNodes: readonly V1Node[]): ServiceNode[] {
  const zones = new Map(k8sNodes.map((n) => [n.metadata?.name ?? '', n.metadata?.labels?.[ZONE_LABEL]]));
  return nodes.map((n) => {
    const zone = zones.get(n.name);
    return zone ? { ...n, zone } : { ...n };
  });
}

/**
 * The endpoints a node's clients go to under `trafficDistribution`, from the slices' hints as
 * kube-proxy reads them: those hinted for the node (PreferSameNode), else for its zone
 * (PreferSameZone), else all. Hints count only when every endpoint has them; otherwise all.
 */
export function hintedBackends<B extends Backend>(bs: readonly B[], node: ServiceNode): B[] {
  if (bs.length > 0 && bs.every((b) => b.forNodes?.length)) {
    const mine = bs.filter((b) => b.forNodes!.includes(node.name));
    if (mine.length) return mine;
  }
  if (node.zone && bs.length > 0 && bs.every((b) => b.forZones?.length)) {
    const zone = bs.filter((b) => b.forZones!.includes(node.zone!));
    if (zone.length) return zone;
  }
  return [...bs];
}

/** A Service's problem its author should see (an Event), while the rest of it is programmed. */
export interface ServiceProblem {
  reason: string;
  message: string;
}

export interface ServiceLoadBalancers {
  rows: AnyDesiredRow[];
  problems: ServiceProblem[];
}

/** A VIP as OVN writes it: `10.96.0.1:443`, `[fd00::1]:443`. */
export const vip = (ip: string, port: number): string => (ip.includes(':') ? `[${bare(ip)}]:${port}` : `${ip}:${port}`);

/** Services OVN does not balance: headless and ExternalName. */
export function hasLoadBalancer(svc: V1Service): boolean {
  const s = svc.spec;
  if (!s || s.type === 'ExternalName') return false;
  const ips = s.clusterIPs ?? (s.clusterIP ? [s.clusterIP] : []);
  return ips.length > 0 && ips[0] !== 'None';
}

interface Backend {
  ip: string;
  port: number;
  node?: string;
  /** The EndpointSlice controller's hints for `trafficDistribution`: the zones and nodes it serves first. */
  forZones?: string[];
  forNodes?: string[];
}

/**
 * The endpoints a Service port goes to, by family: ready ones; if none, those serving while
 * terminating (as kube-proxy does, so a rolling update never drops a Service to nothing).
 * `publishNotReadyAddresses` is already applied by the EndpointSlice controller (it marks them ready).
 */
export function backendsFor(slices: readonly V1EndpointSlice[], portName: string, proto: Protocol): Backend[] {
  const all: (Backend & { ready: boolean; servingTerminating: boolean })[] = [];
  for (const sl of slices) {
    if (sl.addressType !== 'IPv4' && sl.addressType !== 'IPv6') continue;
    const p = sl.ports?.find((x) => (x.name ?? '') === portName && (x.protocol ?? 'TCP') === proto);
    if (p?.port === undefined || p.port === null) continue;
    for (const ep of sl.endpoints ?? []) {
      const c = ep.conditions ?? {};
      const ready = c.ready ?? true; // unset means ready
      const servingTerminating = (c.serving ?? ready) && c.terminating === true;
      for (const ip of ep.addresses.slice(0, 1)) { // the first address is the endpoint's (the rest are ignored, as by kube-proxy)
        const forZones = (ep.hints?.forZones ?? []).map((z) => z.name);
        const forNodes = (ep.hints?.forNodes ?? []).map((n) => n.name);
        all.push({
          ip, port: p.port, ...(ep.nodeName ? { node: ep.nodeName } : {}), ready, servingTerminating,
          ...(forZones.length ? { forZones } : {}), ...(forNodes.length ? { forNodes } : {}),
        });
      }
    }
  }
  const ready = all.filter((b) => b.ready);
  const chosen = ready.length > 0 ? ready : all.filter((b) => b.servingTerminating);
  const seen = new Set<string>();
  return chosen.filter((b) => {
    const k = vip(b.ip, b.port);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  }).map(({ ip, port, node, forZones, forNodes }) => ({ ip, port, ...(node ? { node } : {}), ...(forZones ? { forZones } : {}), ...(forNodes ? { forNodes } : {}) }))
    .sort((a, b) => vip(a.ip, a.port).localeCompare(vip(b.ip, b.port)));
}

/** What the cluster routes an endpoint to: its own networks and the pod subnets the nodes hold. */
export interface Reach {
  serviceNetworks: readonly string[];
  joinSubnets: readonly string[];
  clusterNetworks: readonly string[];
  /** Each node's pod subnets, as NB holds them. */
  nodeSubnets: ReadonlyMap<string, readonly string[]>;
}

/** Addresses no node forwards to, whatever the routes: a backend there would only ever drop. */
const SPECIAL: readonly [string, string][] = [
  ['0.0.0.0/8', 'an unspecified address'], ['127.0.0.0/8', 'a loopback address'], ['169.254.0.0/16', 'a link-local address'],
  ['224.0.0.0/4', 'a multicast address'], ['240.0.0.0/4', 'a reserved address'],
  ['::/128', 'an unspecified address'], ['::1/128', 'a loopback address'], ['fe80::/10', 'a link-local address'], ['ff00::/8', 'a multicast address'],
];

/**
 * Why no node can reach an endpoint address, or undefined if one can. An address outside kovn's
 * networks is routed (a host network, the apiserver's); inside them it must be in a node's pod
 * subnet (its own node's when the slice names one NB knows).
 */
export function unreachable(ip: string, node: string | undefined, reach: Reach): string | undefined {
  try { parseIp(ip); } catch { return 'not an IP address'; }
  const inAny = (cidrs: readonly string[]): boolean => cidrs.some((c) => contains(parseCidr(c), ip));
  for (const [c, why] of SPECIAL) if (inAny([c])) return why;
  if (inAny(reach.serviceNetworks)) return 'an address in the service network';
  if (inAny(reach.joinSubnets)) return 'an address in the join subnet';
  if (!inAny(reach.clusterNetworks)) return undefined;
  const own = node !== undefined ? reach.nodeSubnets.get(node) : undefined;
  if (own) return inAny(own) ? undefined : `not in node ${node}'s pod subnets (${own.join(', ')})`;
  return [...reach.nodeSubnets.values()].some(inAny) ? undefined : 'in the cluster network but in no node\'s pod subnet';
}

const familyOf = (ip: string): 4 | 6 => (ip.includes(':') ? 6 : 4);

/** Backends of one family as OVN writes them: `10.244.1.5:8080,10.244.2.3:8080` (empty: reject). */
const backendList = (bs: readonly Backend[], fam: 4 | 6): string => bs.filter((b) => familyOf(b.ip) === fam).map((b) => vip(b.ip, b.port)).join(',');

/**
 * The Service's load balancer rows, given its EndpointSlices and the nodes. Pure: the same inputs make
 * the same rows, so a resync with nothing changed writes nothing.
 */
export function serviceLoadBalancers(svc: V1Service, slices: readonly V1EndpointSlice[], nodes: readonly ServiceNode[], reach: Reach): ServiceLoadBalancers {
  const ns = svc.metadata?.namespace ?? '';
  const key = `${ns}/${svc.metadata?.name ?? ''}`;
  const owner: Owner = { type: 'Service', name: key };
  const problems: ServiceProblem[] = [];
  if (!hasLoadBalancer(svc)) return { rows: [], problems };
  const spec = svc.spec ?? {};
  const clusterIps = spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : []);
  // ExternalIPs and LoadBalancer addresses (kovn's or another allocator's) are the same on every node.
  const externalIps = [...(spec.externalIPs ?? []), ...(spec.type === 'LoadBalancer' ? ingressIps(svc) : [])];
  const etpLocal = spec.externalTrafficPolicy === 'Local' && (spec.type === 'NodePort' || spec.type === 'LoadBalancer');
  const itpLocal = spec.internalTrafficPolicy === 'Local';
  // trafficDistribution, like ITP=Local, is per node: the ClusterIPs on each node switch, to that node's
  // hinted endpoints (ITP=Local wins when both are set, as in kube-proxy).
  const distributed = !itpLocal && !!spec.trafficDistribution;
  const affinity = spec.sessionAffinity === 'ClientIP' ? String(spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10_800) : undefined;
  const options = (extra: Record<string, string> = {}): Record<string, string> => ({
    reject: 'true', event: 'false', neighbor_responder: 'none', hairpin_snat_ip: HAIRPIN_SNAT_IPS.join(' '),
    ...(affinity ? { affinity_timeout: affinity } : {}), ...extra,
  });
  const row = (proto: Protocol, scope: string, vips: Record<string, string>, opts: Record<string, string>, parent?: AnyDesiredRow['parent']): AnyDesiredRow => {
    const name = lbName(key, proto, scope);
    return {
      table: 'Load_Balancer', name,
      columns: { protocol: proto.toLowerCase() as 'tcp', vips, options: opts, external_ids: ownedBy(owner, name, { [OVNK_KIND]: 'Service', [OVNK_OWNER]: key }) },
      ...(parent ? { parent } : {}),
    };
  };
  const rows: AnyDesiredRow[] = [];
  const selector = Object.keys(spec.selector ?? {}).length > 0;
  // An endpoint no node can reach is left out (a backend that only drops would be chosen at random); one
  // problem names them all (an Event series is per reason).
  const unreached = new Map<string, string>();
  const reachable = (bs: Backend[]): Backend[] => bs.filter((b) => {
    const why = unreachable(b.ip, b.node, reach);
    if (why) unreached.set(b.ip, why);
    return !why;
  });
  for (const proto of PROTOCOLS) {
    const ports = (spec.ports ?? []).filter((p) => (p.protocol ?? 'TCP') === proto);
    if (ports.length === 0) continue;
    const cluster: Record<string, string> = {};
    // Per node: the router's VIPs it SNATs, those it must not (ETP=Local keeps the client's address), the switch's.
    const perNode = new Map<string, { router: Record<string, string>; localRouter: Record<string, string>; sw: Record<string, string> }>(
      nodes.map((n) => [n.name, { router: {}, localRouter: {}, sw: {} }]));
    for (const p of ports) {
      const found = backendsFor(slices, p.name ?? '', proto);
      const bs = reachable(found);
      if (selector && typeof p.targetPort === 'string' && found.length === 0 && slices.some((s) => (s.endpoints ?? []).length > 0)) {
        problems.push({ reason: 'TargetPortNotFound', message: `port ${p.name ?? p.port}: no endpoint has a port named ${p.targetPort}` });
      }
      const local = (node: string): Backend[] => bs.filter((b) => b.node === node);
      // A backend on a node's own IP (a host-network endpoint) is, to that node's gateway router, its
      // host: reached at the host's masquerade address, which the bridge hands to the host. So the
      // Service's rows differ per node.
      const hostBacked = nodes.some((n) => bs.some((b) => n.ips.includes(b.ip)));
      const viaRouter = (list: readonly Backend[], n: ServiceNode): Backend[] =>
        list.map((b) => (n.ips.includes(b.ip) ? { ...b, ip: MASQUERADE[familyOf(b.ip)].host } : b));
      for (const ip of clusterIps) {
        const f = familyOf(ip);
        const v = vip(ip, p.port);
        if (!itpLocal && !distributed && !hostBacked) {
          cluster[v] = backendList(bs, f);
          continue;
        }
        // Per node: pods on its switch, its host through its gateway router, the same endpoints.
        for (const n of nodes) {
          const chosen = itpLocal ? local(n.name) : distributed ? hintedBackends(bs, n) : bs;
          const m = perNode.get(n.name)!;
          m.sw[v] = backendList(chosen, f);
          m.router[v] = backendList(viaRouter(chosen, n), f);
        }
      }
      for (const ip of externalIps) {
        const f = familyOf(ip);
        const v = vip(ip, p.port);
        if (!etpLocal && !hostBacked) {
          cluster[v] = backendList(bs, f);
          continue;
        }
        // From outside (the router) ETP=Local keeps to local endpoints; from pods (the switch) every endpoint serves.
        for (const n of nodes) {
          const m = perNode.get(n.name)!;
          (etpLocal ? m.localRouter : m.router)[v] = backendList(viaRouter(etpLocal ? local(n.name) : bs, n), f);
          m.sw[v] = backendList(bs, f);
        }
      }
      if (p.nodePort && (spec.type === 'NodePort' || spec.type === 'LoadBalancer')) {
        for (const n of nodes) {
          const m = perNode.get(n.name)!;
          for (const ip of n.ips) {
            const f = familyOf(ip);
            if (!clusterIps.some((c) => familyOf(c) === f)) continue; // a family the Service does not have
            (etpLocal ? m.localRouter : m.router)[vip(ip, p.nodePort)] = backendList(viaRouter(etpLocal ? local(n.name) : bs, n), f);
            m.sw[vip(ip, p.nodePort)] = backendList(bs, f);
          }
        }
      }
    }
    if (Object.keys(cluster).length > 0) {
      rows.push(row(proto, 'cluster', cluster, options(), { table: 'Load_Balancer_Group', name: CLUSTER_LB_GROUP, column: 'load_balancer' }));
    }
    for (const n of nodes) {
      const m = perNode.get(n.name)!;
      const router = { table: 'Logical_Router', name: gatewayRouter(n.name), column: 'load_balancer' } as const;
      if (Object.keys(m.router).length > 0) rows.push(row(proto, `node_router_${n.name}`, m.router, options(), router));
      // OVN-Kubernetes' name for the rows whose client address is kept.
      if (Object.keys(m.localRouter).length > 0) rows.push(row(proto, `node_local_router_${n.name}`, m.localRouter, options({ skip_snat: 'true' }), router));
      if (Object.keys(m.sw).length > 0) {
        rows.push(row(proto, `node_switch_${n.name}`, m.sw, options(), { table: 'Logical_Switch', name: n.name, column: 'load_balancer' }));
      }
    }
  }
  if (unreached.size > 0) {
    const list = [...unreached].map(([ip, why]) => `${ip} (${why})`).join(', ');
    problems.push({ reason: 'UnreachableEndpoint', message: `no node can reach endpoint${unreached.size > 1 ? 's' : ''} ${list}: left out of the load balancer` });
  }
  return { rows, problems };
}

/** A load balancer as far as conntrack is concerned: its protocol and VIP -> backends. */
export interface LbVips {
  protocol?: string | undefined;
  vips: Record<string, string>;
}

/**
 * A connectionless flow a node must forget: conntrack entries to `vip`:`port` DNATed to a backend that
 * no longer serves it. OVN (23.03) leaves them, so a UDP client would keep sending to a gone backend
 * until the entry times out; kube-proxy and OVN-Kubernetes flush them, and so does kovn.
 */
export interface StaleFlow {
  protocol: 'udp' | 'sctp';
  vip: string;
  port: number;
  backend: string;
  backendPort: number;
}

/** `10.96.0.1:53` or `[fd00::1]:53` as its address and port. */
export function splitVip(s: string): { ip: string; port: number } | undefined {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(s.trim());
  return m ? { ip: m[1]!, port: Number(m[2]) } : undefined;
}

/** The UDP and SCTP backends that left a VIP between two states of a Service's rows (a VIP gone takes all its backends). TCP needs no flush: a reset ends it. */
export function staleFlows(before: readonly LbVips[], after: readonly LbVips[]): StaleFlow[] {
  const backends = (rows: readonly LbVips[]): Map<string, Set<string>> => {
    const m = new Map<string, Set<string>>();
    for (const r of rows) {
      if (r.protocol !== 'udp' && r.protocol !== 'sctp') continue;
      for (const [v, list] of Object.entries(r.vips)) {
        const k = `${r.protocol} ${v}`;
        const set = m.get(k) ?? new Set<string>();
        for (const b of list.split(',').map((x) => x.trim()).filter(Boolean)) set.add(b);
        m.set(k, set);
      }
    }
    return m;
  };
  const now = backends(after);
  const out: StaleFlow[] = [];
  for (const [k, was] of backends(before)) {
    const [protocol, v] = k.split(' ') as ['udp' | 'sctp', string];
    const vp = splitVip(v);
    if (!vp) continue;
    for (const b of was) {
      const bp = splitVip(b);
      if (!bp || now.get(k)?.has(b)) continue;
      out.push({ protocol, vip: vp.ip, port: vp.port, backend: bp.ip, backendPort: bp.port });
    }
  }
  return out;
}
