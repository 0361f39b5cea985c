/**
 * Pure translation: the cluster's logical topology (OVN-Kubernetes' centralized layout) as desired OVN
 * Northbound rows. `ovn_cluster_router`; the `join` switch; per node a switch with its subnets, a router
 * port holding the gateway addresses, and the management port `k8s-<node>`.
 */
import { formatCidr, nthAddress, parseCidr, parseIp } from '../../lib/cidr.ts';
import type { ClusterConfig } from '../../lib/cluster-config.ts';
import { ownedBy } from './ownership.ts';
import type { Owner } from './ownership.ts';

export const CLUSTER_ROUTER = 'ovn_cluster_router';
export const JOIN_SWITCH = 'join';
export const routerToSwitch = (sw: string): string => `rtos-${sw}`;
export const switchToRouter = (sw: string): string => `stor-${sw}`;
export const mgmtPort = (node: string): string => `k8s-${node}`;

export interface DesiredSwitch {
  name: string;
  other_config: Record<string, string>;
  external_ids: Record<string, string>;
}
export interface DesiredRouterPort {
  name: string;
  mac: string;
  networks: string[];
  external_ids: Record<string, string>;
}
export interface DesiredSwitchPort {
  name: string;
  type: string;
  addresses: string[];
  port_security: string[];
  options: Record<string, string>;
  external_ids: Record<string, string>;
}

/** Rows of one switch, attached to the cluster router (the switch and both ends of the link). */
export interface SwitchAttachment {
  sw: DesiredSwitch;
  routerPort: DesiredRouterPort;
  switchPort: DesiredSwitchPort;
}

/** OVN-Kubernetes derives MACs from IPv4 addresses: 0a:58 + the 4 address bytes (IPv6: its last 4 bytes). */
export function macFromIp(ip: string): string {
  const { value } = parseIp(ip.split('/')[0] ?? '');
  const bytes = [0x0a, 0x58, ...[24n, 16n, 8n, 0n].map((s) => Number((value >> s) & 0xffn))];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Gateway (offset 1) and management (offset 2) addresses of each node subnet, with prefix. */
export function nodeAddresses(subnets: readonly string[]): { gateway: string[]; mgmt: string[] } {
  const cidrs = subnets.map(parseCidr);
  return {
    gateway: cidrs.map((c) => `${nthAddress(c, 1n)}/${c.prefix}`),
    mgmt: cidrs.map((c) => `${nthAddress(c, 2n)}/${c.prefix}`),
  };
}

/** An address without its prefix length. */
export const bare = (ipWithPrefix: string): string => ipWithPrefix.split('/')[0] ?? '';

/** A switch and its link to the cluster router; the link's ports are `rtos-<switch>`/`stor-<switch>` unless named. */
function attachment(owner: Owner, name: string, networks: string[], otherConfig: Record<string, string>,
  ports = { router: routerToSwitch(name), sw: switchToRouter(name) }): SwitchAttachment {
  const mac = macFromIp(networks[0] ?? '');
  return {
    sw: { name, other_config: otherConfig, external_ids: ownedBy(owner, `ls:${name}`) },
    routerPort: { name: ports.router, mac, networks, external_ids: ownedBy(owner, `lrp:${ports.router}`) },
    switchPort: {
      name: ports.sw, type: 'router', addresses: ['router'], port_security: [],
      options: { 'router-port': ports.router }, external_ids: ownedBy(owner, `lsp:${ports.sw}`),
    },
  };
}

/** The cluster router's join link, under OVN-Kubernetes' names (kovn once wrote `rtos-join`/`stor-join`). */
export const CLUSTER_JOIN_PORTS = { router: `rtoj-${CLUSTER_ROUTER}`, sw: `jtor-${CLUSTER_ROUTER}` };

/** The cluster-wide rows: the cluster router and the join switch. */
export function clusterTopology(cfg: ClusterConfig): { router: { name: string; external_ids: Record<string, string> }; join: SwitchAttachment } {
  const owner: Owner = { type: 'Cluster', name: 'default' };
  const joinNets = cfg.joinSubnets.map((s) => { const c = parseCidr(s); return `${nthAddress(c, 1n)}/${c.prefix}`; });
  return {
    router: { name: CLUSTER_ROUTER, external_ids: ownedBy(owner, `lr:${CLUSTER_ROUTER}`) },
    join: attachment(owner, JOIN_SWITCH, joinNets, {}, CLUSTER_JOIN_PORTS),
  };
}

/** A node's rows: its switch (with subnets), the router link and the management port. */
export function nodeTopology(node: string, subnets: readonly string[]): SwitchAttachment & { mgmt: DesiredSwitchPort } {
  const owner: Owner = { type: 'Node', name: node };
  const { gateway, mgmt } = nodeAddresses(subnets);
  const otherConfig: Record<string, string> = {};
  for (const s of subnets.map(parseCidr)) {
    // northd's own IPAM stays out of the way: kovn's node agent allocates; exclude gateway and mgmt.
    if (s.family === 4) {
      otherConfig.subnet = formatCidr(s);
      otherConfig.exclude_ips = `${nthAddress(s, 1n)}..${nthAddress(s, 2n)}`;
    } else {
      otherConfig.ipv6_prefix = formatCidr(s).split('/')[0] ?? '';
    }
  }
  const att = attachment(owner, node, gateway, otherConfig);
  const mgmtMac = macFromIp(mgmt[0] ?? '');
  const mgmtIps = mgmt.map(bare);
  // No port security on the management port (as OVN-Kubernetes has it): pod -> node-IP traffic is
  // rerouted to it with the node's own IP as destination, which a port-secured port would drop.
  return {
    ...att,
    mgmt: {
      name: mgmtPort(node), type: '', addresses: [[mgmtMac, ...mgmtIps].join(' ')], port_security: [],
      options: { 'requested-chassis': node }, external_ids: ownedBy(owner, `lsp:${mgmtPort(node)}`),
    },
  };
}
