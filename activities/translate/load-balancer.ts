/**
 * Pure: kovn's built-in LoadBalancer allocator, for Services with no `loadBalancerClass` or kovn's own
 * (so it never races MetalLB or a cloud's controller): addresses from the configured pools, one per IP
 * family the Service has, and the node that answers ARP for them, chosen by rendezvous hashing so that
 * it moves only when that node goes.
 */
import { createHash } from 'node:crypto';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { contains, nthAddress, parseCidr, parseIp, size } from '../../lib/cidr.ts';

/** The `loadBalancerClass` that names kovn's allocator (no class means it too). */
export const KOVN_LB_CLASS = 'kovn.local/load-balancer';
/** The Service annotation that says which node answers ARP for its LoadBalancer addresses. */
export const ANNOUNCING_NODE = 'kovn.local/announcing-node';

/** A LoadBalancer Service that kovn's allocator serves. */
export function ownLoadBalancer(svc: V1Service): boolean {
  const c = svc.spec?.loadBalancerClass;
  return svc.spec?.type === 'LoadBalancer' && (c === undefined || c === null || c === '' || c === KOVN_LB_CLASS) && !svc.metadata?.deletionTimestamp;
}

/** The addresses in `status.loadBalancer.ingress` (hostname-only entries have none). */
export const ingressIps = (svc: V1Service): string[] =>
  (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? '').filter(Boolean);

const familyOf = (ip: string): 4 | 6 => parseIp(ip).family;

/** The IP families a Service has, from its ClusterIPs (or spec.ipFamilies before they are set). */
function families(svc: V1Service): (4 | 6)[] {
  const ips = svc.spec?.clusterIPs ?? (svc.spec?.clusterIP ? [svc.spec.clusterIP] : []);
  const f = ips.filter((ip) => ip && ip !== 'None').map(familyOf);
  if (f.length) return f;
  return (svc.spec?.ipFamilies ?? ['IPv4']).map((x) => (x === 'IPv6' ? 6 : 4));
}

export type Pick = { ips: string[] } | { exhausted: string };

/**
 * The Service's addresses: per family with a pool, the one it has if still in the pool, else the one
 * it asks for (spec.loadBalancerIP) if free, else the first free one. `used` holds every other
 * Service's addresses. An IPv4 pool's first and last addresses are never handed out (its network and
 * broadcast, when the pool is a subnet of its own).
 */
export function pickAddresses(svc: V1Service, pools: readonly string[], used: ReadonlySet<string>): Pick {
  const have = ingressIps(svc);
  const asked = svc.spec?.loadBalancerIP;
  const out: string[] = [];
  for (const fam of families(svc)) {
    const pool = pools.map(parseCidr).find((p) => p.family === fam);
    if (!pool) continue;
    const ok = (ip: string): boolean => {
      if (!contains(pool, ip) || used.has(ip)) return false;
      if (fam === 4 && pool.prefix < 31) {
        const v = parseIp(ip).value;
        if (v === pool.base || v === pool.base + size(pool) - 1n) return false;
      }
      return true;
    };
    const keep = have.find((ip) => familyOf(ip) === fam && ok(ip));
    if (keep) { out.push(keep); continue; }
    if (asked && familyOf(asked) === fam) {
      if (!ok(asked)) return { exhausted: `spec.loadBalancerIP ${asked} is not a free address of the pool ${pools.join(', ')}` };
      out.push(asked);
      continue;
    }
    // Pools are small (a few hundred addresses at most on one segment): a scan is fine.
    const n = size(pool) > 65_536n ? 65_536n : size(pool);
    let found: string | undefined;
    for (let i = 0n; i < n && !found; i++) if (ok(nthAddress(pool, i))) found = nthAddress(pool, i);
    if (!found) return { exhausted: `no free address in the IPv${fam} pool ${nthAddress(pool, 0n)}/${pool.prefix}` };
    out.push(found);
  }
  return { ips: out };
}

/**
 * The nodes that may announce a Service's addresses: with `externalTrafficPolicy: Local`, only those
 * with a ready endpoint (another node would reject the traffic it draws), unless there is none.
 */
export function announcingCandidates(svc: V1Service, nodes: readonly string[], slices: readonly V1EndpointSlice[]): string[] {
  if (svc.spec?.externalTrafficPolicy !== 'Local') return [...nodes];
  const withEndpoints = new Set(slices.flatMap((sl) => (sl.endpoints ?? []).filter((e) => e.conditions?.ready ?? true).map((e) => e.nodeName ?? '')));
  const local = nodes.filter((n) => withEndpoints.has(n));
  return local.length ? local : [...nodes];
}

/** The node that announces an address: the highest hash of (address, node) among the nodes with gateways. */
export function announcer(ip: string, nodes: readonly string[]): string | undefined {
  let best: { node: string; h: string } | undefined;
  for (const node of nodes) {
    const h = createHash('sha256').update(`${ip}\n${node}`).digest('hex');
    if (!best || h > best.h) best = { node, h };
  }
  return best?.node;
}
