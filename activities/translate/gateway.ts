/**
 * Pure translation: a node's shared gateway (OVN-Kubernetes' layout and names) as desired Northbound
 * rows and the node annotations that describe it. Per node: the gateway router `GR_<node>` on the
 * node's chassis, joined to `ovn_cluster_router` through the `join` switch, the external switch
 * `ext_<node>` with a localnet port to the node's external bridge, the routes, the SNAT of the cluster
 * networks to the node's IP, and the reroute of pod -> node-IP traffic to the management port.
 */
import { formatCidr, nthAddress, parseCidr, parseIp } from '../../lib/cidr.ts';
import type { Family } from '../../lib/cidr.ts';
import { clusterFamilies } from '../../lib/cluster-config.ts';
import type { ClusterConfig } from '../../lib/cluster-config.ts';
import type { AnyDesiredRow, ParentRef } from '../nb.ts';
import { ownedBy } from './ownership.ts';
import type { Owner } from './ownership.ts';
import { CLUSTER_ROUTER, JOIN_SWITCH, bare, macFromIp, nodeAddresses, routerToSwitch } from './topology.ts';

export const gatewayRouter = (node: string): string => `GR_${node}`;
export const externalSwitch = (node: string): string => `ext_${node}`;
export const routerToJoin = (router: string): string => `rtoj-${router}`;
export const joinToRouter = (router: string): string => `jtor-${router}`;
export const routerToExternal = (node: string): string => `rtoe-${gatewayRouter(node)}`;
export const externalToRouter = (node: string): string => `etor-${gatewayRouter(node)}`;
/** The localnet port's name is the l3-gateway-config's interface-id: `<bridge>_<node>`. */
export const localnetPort = (bridge: string, node: string): string => `${bridge}_${node}`;
/** The physical network the localnet port names, mapped to the external bridge by ovn-bridge-mappings. */
export const PHYSNET = 'physnet';
/** Where the gateway router keeps its node id (and the claim that no two routers share one). */
export const NODE_ID_KEY = 'k8s.ovn.org/node-id';
/**
 * The gateway translation's version, stamped on the gateway router: raise it whenever nodeGateway's rows
 * or MAC bindings change, so a controller upgrade re-runs every node once (the node watch compares it).
 */
export const GATEWAY_LAYOUT_KEY = 'kovn/gateway-layout';
export const GATEWAY_LAYOUT = '2';
/** Ids 0 and 1 are never a node's: the join subnet's base and the cluster router's join address. */
export const FIRST_NODE_ID = 2;
/** The policy priority OVN-Kubernetes gives pod -> node-IP reroutes. */
export const NODE_IP_REROUTE_PRIORITY = 1004;

/**
 * OVN-Kubernetes' masquerade subnets: OVN's masquerade IP (.1, what the host sees a gateway router's
 * connection to it come from), the host's (.2) and the dummy next hop (.4).
 */
export const MASQUERADE = {
  4: { subnet: '169.254.169.0/29', ovn: '169.254.169.1', host: '169.254.169.2', nextHop: '169.254.169.4' },
  6: { subnet: 'fd69::/125', ovn: 'fd69::1', host: 'fd69::2', nextHop: 'fd69::4' },
} as const;

/** What the node agent reports about its external bridge (the l3-gateway-config's facts). */
export interface GatewayFacts {
  bridge: string;
  mac: string;
  /** The node's addresses on the bridge, with prefix ("172.29.0.11/24"). */
  ipAddresses: string[];
  /** The bridge's default next hops, one per family at most. */
  nextHops: string[];
}

export interface GatewayInput {
  node: string;
  nodeId: number;
  chassisId: string;
  /** The node's subnets ("10.244.1.0/24", ...). */
  subnets: readonly string[];
  facts: GatewayFacts;
  /** The node's InternalIPs (pods reach them through the management port). */
  internalIps: readonly string[];
}

/** A static MAC binding kovn writes (the table has no external_ids: its owner is its router port's). */
export interface DesiredMacBinding {
  logical_port: string;
  ip: string;
  mac: string;
}

export interface GatewayAnnotations {
  nodeId: string;
  /** k8s.ovn.org/node-gateway-router-lrp-ifaddr */
  lrpIfaddr: Record<string, string>;
  /** k8s.ovn.org/l3-gateway-config */
  l3GatewayConfig: { default: Record<string, unknown> };
  /** k8s.ovn.org/node-primary-ifaddr */
  primaryIfaddr: Record<string, string>;
}

const familyOf = (ipOrCidr: string): Family => parseIp(bare(ipOrCidr)).family;
const byFamily = <T extends string>(list: readonly T[], f: Family): T | undefined => list.find((x) => familyOf(x) === f);
const ifaddrKey = (f: Family): string => (f === 4 ? 'ipv4' : 'ipv6');

/** The join addresses: the cluster router's (base + 1) and a gateway router's (base + node id), per family. */
export function joinAddresses(cfg: ClusterConfig, nodeId?: number): string[] {
  return cfg.joinSubnets.map((s) => {
    const c = parseCidr(s);
    return `${nthAddress(c, BigInt(nodeId ?? 1))}/${c.prefix}`;
  });
}

/** How many node ids the join subnets hold: the smallest family bounds them all. */
export function maxNodeId(cfg: ClusterConfig): number {
  const bits = Math.min(...cfg.joinSubnets.map((s) => { const c = parseCidr(s); return (c.family === 4 ? 32 : 128) - c.prefix; }));
  return Math.min(2 ** Math.min(bits, 30) - 2, 1_000_000);
}

/** The lowest id from FIRST_NODE_ID up that is not taken, or undefined when the join subnets are full. */
export function lowestFreeId(taken: ReadonlySet<number>, max: number): number | undefined {
  for (let id = FIRST_NODE_ID; id <= max; id++) if (!taken.has(id)) return id;
  return undefined;
}

/**
 * Checks the agent's facts against the cluster: one address per family the cluster has, a next hop in
 * each, a MAC. Returns the problem, or undefined.
 */
export function factsProblem(cfg: ClusterConfig, facts: GatewayFacts): string | undefined {
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(facts.mac)) return `the external bridge's MAC ${JSON.stringify(facts.mac)} is not a MAC address`;
  for (const f of clusterFamilies(cfg)) {
    if (!byFamily(facts.ipAddresses, f)) return `the external bridge ${facts.bridge} has no IPv${f} address, and the cluster has an IPv${f} network`;
    if (!byFamily(facts.nextHops, f)) return `the external bridge ${facts.bridge} has no IPv${f} default route (next hop)`;
  }
  return undefined;
}

/** The node's gateway rows (all owned by the node) and its static MAC bindings. */
export function nodeGateway(cfg: ClusterConfig, g: GatewayInput): { rows: AnyDesiredRow[]; macBindings: DesiredMacBinding[] } {
  const owner: Owner = { type: 'Node', name: g.node };
  const fams = clusterFamilies(cfg);
  const gr = gatewayRouter(g.node);
  const ext = externalSwitch(g.node);
  const rtoe = routerToExternal(g.node);
  const ids = (id: string, extra: Record<string, string> = {}): Record<string, string> => ownedBy(owner, id, extra);
  const onGr: ParentRef = { table: 'Logical_Router', name: gr, column: 'ports' };
  const nodeIps = fams.map((f) => byFamily(g.facts.ipAddresses, f) ?? '');
  const grJoin = joinAddresses(cfg, g.nodeId).filter((a) => fams.includes(familyOf(a)));
  const clusterJoin = joinAddresses(cfg).filter((a) => fams.includes(familyOf(a)));
  const { mgmt } = nodeAddresses(g.subnets);

  const rows: AnyDesiredRow[] = [
    {
      table: 'Logical_Router', name: gr, columns: {
        options: {
          chassis: g.chassisId, lb_force_snat_ip: 'router_ip', 'snat-ct-zone': '0',
          always_learn_from_arp_request: 'false', dynamic_neigh_routers: 'true',
        },
        external_ids: ids(`lr:${gr}`, { physical_ip: bare(nodeIps[0] ?? ''), physical_ips: nodeIps.map(bare).join(','), [NODE_ID_KEY]: String(g.nodeId), [GATEWAY_LAYOUT_KEY]: GATEWAY_LAYOUT }),
      },
    },
    // The join link. gateway_mtu sits where OVN-Kubernetes puts it, on the port toward the cluster: OVN
    // checks a packet's length against its output port's gateway_mtu, so traffic from outside into
    // the overlay (1500 bytes in, 1400 inside) gets "fragmentation needed" instead of vanishing.
    {
      table: 'Logical_Router_Port', name: routerToJoin(gr), parent: onGr, columns: {
        mac: macFromIp(grJoin[0] ?? ''), networks: grJoin, options: { gateway_mtu: String(cfg.mtu) }, external_ids: ids(`lrp:${routerToJoin(gr)}`),
      },
    },
    {
      table: 'Logical_Switch_Port', name: joinToRouter(gr), parent: { table: 'Logical_Switch', name: JOIN_SWITCH, column: 'ports' }, columns: {
        type: 'router', addresses: ['router'], port_security: [], options: { 'router-port': routerToJoin(gr) }, external_ids: ids(`lsp:${joinToRouter(gr)}`),
      },
    },
    // The way out: the external switch, its localnet port to the node's bridge, the router's port on it.
    { table: 'Logical_Switch', name: ext, columns: { other_config: {}, external_ids: ids(`ls:${ext}`) } },
    {
      table: 'Logical_Router_Port', name: rtoe, parent: onGr, columns: {
        mac: g.facts.mac, networks: nodeIps, options: {}, external_ids: ids(`lrp:${rtoe}`),
      },
    },
    {
      table: 'Logical_Switch_Port', name: externalToRouter(g.node), parent: { table: 'Logical_Switch', name: ext, column: 'ports' }, columns: {
        type: 'router', addresses: ['router'], port_security: [], options: { 'router-port': rtoe }, external_ids: ids(`lsp:${externalToRouter(g.node)}`),
      },
    },
    {
      table: 'Logical_Switch_Port', name: localnetPort(g.facts.bridge, g.node), parent: { table: 'Logical_Switch', name: ext, column: 'ports' }, columns: {
        type: 'localnet', addresses: ['unknown'], port_security: [], options: { network_name: PHYSNET },
        external_ids: ids(`lsp:${localnetPort(g.facts.bridge, g.node)}`),
      },
    },
  ];

  const route = (router: string, id: string, c: { ip_prefix: string; nexthop: string; output_port?: string; policy?: 'src-ip' }): AnyDesiredRow => ({
    table: 'Logical_Router_Static_Route', name: id, parent: { table: 'Logical_Router', name: router, column: 'static_routes' },
    columns: { ip_prefix: c.ip_prefix, nexthop: c.nexthop, output_port: c.output_port, policy: c.policy, external_ids: ids(id) },
  });
  for (const f of fams) {
    const nodeIp = bare(byFamily(nodeIps, f) ?? '');
    const nextHop = byFamily(g.facts.nextHops, f) ?? '';
    const clusterJoinIp = bare(byFamily(clusterJoin, f) ?? '');
    const grJoinIp = bare(byFamily(grJoin, f) ?? '');
    // On the gateway router: the cluster networks back through the join switch, the rest out.
    for (const n of cfg.clusterNetworks.filter((x) => familyOf(x.cidr) === f)) {
      const cidr = formatCidr(parseCidr(n.cidr));
      rows.push(route(gr, `${gr}:cluster:${cidr}`, { ip_prefix: cidr, nexthop: clusterJoinIp }));
      rows.push({
        table: 'NAT', name: `${gr}:snat:${cidr}`, parent: { table: 'Logical_Router', name: gr, column: 'nat' },
        columns: { type: 'snat', logical_ip: cidr, external_ip: nodeIp, options: {}, external_ids: ids(`${gr}:snat:${cidr}`) },
      });
    }
    rows.push(route(gr, `${gr}:default:v${f}`, { ip_prefix: f === 4 ? '0.0.0.0/0' : '::/0', nexthop: nextHop, output_port: rtoe }));
    // Replies to the host's masquerade IP (host -> Service traffic) go back out to the host.
    rows.push(route(gr, `${gr}:masquerade:v${f}`, { ip_prefix: MASQUERADE[f].subnet, nexthop: MASQUERADE[f].nextHop, output_port: rtoe }));
    // On the cluster router: whatever leaves this node's pods for no other subnet goes to its own gateway.
    for (const s of g.subnets.filter((x) => familyOf(x) === f)) {
      rows.push(route(CLUSTER_ROUTER, `${CLUSTER_ROUTER}:node:${g.node}:${s}`, { ip_prefix: s, nexthop: grJoinIp, policy: 'src-ip' }));
    }
    // Traffic to the gateway router's own join address (replies to what its load balancers SNATed to it,
    // host -> Service) goes straight to it: without this /32 the pod's src-ip route above, longer than the
    // join switch's connected /16, would send it to the pod's own node's gateway, whose SNAT breaks it.
    rows.push(route(CLUSTER_ROUTER, `${CLUSTER_ROUTER}:join:${g.node}:v${f}`, { ip_prefix: grJoinIp, nexthop: grJoinIp }));
    // Pod -> node IP goes to the node through its management port, not out through the gateway's SNAT.
    const mgmtIp = bare(byFamily(mgmt, f) ?? '');
    const hostIps = [...new Set([nodeIp, ...g.internalIps.filter((ip) => familyOf(ip) === f)])].sort();
    for (const ip of hostIps) {
      const id = `${CLUSTER_ROUTER}:node-ip:${g.node}:${ip}`;
      rows.push({
        table: 'Logical_Router_Policy', name: id, parent: { table: 'Logical_Router', name: CLUSTER_ROUTER, column: 'policies' },
        columns: {
          priority: NODE_IP_REROUTE_PRIORITY, match: `inport == "${routerToSwitch(g.node)}" && ip${f}.dst == ${ip} /* ${g.node} */`,
          action: 'reroute', nexthops: [mgmtIp], options: {}, external_ids: ids(id),
        },
      });
    }
  }
  // The dummy next hop's MAC is derived from its IP, as OVN-Kubernetes does: were it the bridge's (the
  // router port's own), the external switch would hand host-bound replies back to the router.
  const macBindings = fams.map((f) => ({ logical_port: rtoe, ip: MASQUERADE[f].nextHop, mac: macFromIp(MASQUERADE[f].nextHop) }));
  return { rows, macBindings };
}

/** The annotations that describe the node's gateway, in OVN-Kubernetes' formats. */
export function gatewayAnnotations(cfg: ClusterConfig, g: GatewayInput): GatewayAnnotations {
  const fams = clusterFamilies(cfg);
  const ips = fams.map((f) => byFamily(g.facts.ipAddresses, f) ?? '');
  const hops = fams.map((f) => byFamily(g.facts.nextHops, f) ?? '');
  const join = joinAddresses(cfg, g.nodeId).filter((a) => fams.includes(familyOf(a)));
  return {
    nodeId: String(g.nodeId),
    lrpIfaddr: Object.fromEntries(join.map((a) => [ifaddrKey(familyOf(a)), a])),
    l3GatewayConfig: {
      default: {
        mode: 'shared', 'bridge-id': g.facts.bridge, 'interface-id': localnetPort(g.facts.bridge, g.node), 'mac-address': g.facts.mac,
        'ip-addresses': ips, 'ip-address': ips[0], 'next-hops': hops, 'next-hop': hops[0], 'node-port-enable': 'true', 'vlan-id': '0',
      },
    },
    primaryIfaddr: Object.fromEntries(ips.map((a) => [ifaddrKey(familyOf(a)), a])),
  };
}
