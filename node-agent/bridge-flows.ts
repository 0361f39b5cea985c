/**
 * Pure translation: the OpenFlow rules of a node's external bridge (OVN-Kubernetes' shared-gateway
 * `breth0` flows, the parts kovn needs). The node's own traffic (kubelet, the agent, GENEVE) stays on
 * the host; pod traffic that the gateway router SNATed to the node's IP leaves through the physical
 * port, committed in conntrack zone 64000 with ct_mark 1 so its replies go back to OVN (mark 2: the
 * host's). Host -> Service traffic comes from the host's masquerade IP and is handed to the gateway
 * router; the gateway router's connections to this host's own endpoints are SNATed in zone 64001. Replies of what goes out are matched in table 1.
 */
import type { V1Service } from '@kubernetes/client-node';
import { parseCidr, parseIp } from '../lib/cidr.ts';
import { MASQUERADE } from '../activities/translate/gateway.ts';
import { ingressIps } from '../activities/translate/load-balancer.ts';

export const COOKIE = '0x6b6f766e'; // "kovn"
/** Conntrack zones of OVN-Kubernetes' shared gateway: the bridge's own, and the host masquerade's. */
export const CT_ZONE = 64000;
export const HOST_MASQ_CT_ZONE = 64001;
const CT_MARK_OVN = '0x1';
const CT_MARK_HOST = '0x2';
const GENEVE_PORT = 6081;

export interface BridgeFlowInput {
  /** The bridge's (and the gateway router's external port's) MAC. */
  mac: string;
  /** OpenFlow port numbers: the physical port, and the patch port to br-int once ovn-controller made it. */
  phys: number;
  patch?: number;
  /** The IP families the cluster has. */
  families: readonly (4 | 6)[];
  serviceCidrs: readonly string[];
  /** The cluster's NodePorts: from outside they go to the gateway router, whose load balancers answer them. */
  nodePorts?: readonly NodePort[];
  /**
   * ExternalIPs and LoadBalancer addresses, per Service port: to the gateway router too, wherever they
   * arrive. Per port, so an ExternalIP that is some host's own address (a node's, say) takes only the
   * Service's ports from it.
   */
  externalVips?: readonly ExternalVip[];
  /** Every LoadBalancer address (of any node): ARP and NDP for them are the announcing node's alone. */
  loadBalancerIps?: readonly string[];
  /** The LoadBalancer addresses this node answers ARP (IPv4) and NDP (IPv6) for (one node per address). */
  announce?: readonly string[];
}

/** What the cluster's Services ask of the bridge. */
export type ServiceFlows = Required<Pick<BridgeFlowInput, 'nodePorts' | 'externalVips' | 'loadBalancerIps' | 'announce'>>;

export interface ExternalVip {
  ip: string;
  protocol: NodePort['protocol'];
  port: number;
}

export interface NodePort {
  protocol: 'tcp' | 'udp' | 'sctp';
  port: number;
}

const lbIngress = (s: V1Service): string[] => (s.spec?.type === 'LoadBalancer' ? ingressIps(s) : []);

/** ExternalIPs and LoadBalancer ingress addresses of every Service, with each of its ports, each once, sorted. */
export function externalVipsOf(services: readonly V1Service[]): ExternalVip[] {
  const seen = new Map<string, ExternalVip>();
  for (const s of services) {
    for (const ip of [...(s.spec?.externalIPs ?? []), ...lbIngress(s)]) {
      for (const p of s.spec?.ports ?? []) {
        const protocol = (p.protocol ?? 'TCP').toLowerCase() as NodePort['protocol'];
        seen.set(`${ip} ${protocol} ${p.port}`, { ip, protocol, port: p.port });
      }
    }
  }
  return [...seen.values()].sort((a, b) => a.ip.localeCompare(b.ip) || a.port - b.port || a.protocol.localeCompare(b.protocol));
}

/** Every LoadBalancer ingress address, each once, sorted. */
export const loadBalancerIpsOf = (services: readonly V1Service[]): string[] => [...new Set(services.flatMap(lbIngress))].sort();

/** The LoadBalancer addresses `node` announces: those of the Services whose announcing node it is. */
export function announcedBy(services: readonly V1Service[], node: string, key: string): string[] {
  return [...new Set(services.filter((s) => s.metadata?.annotations?.[key] === node).flatMap(lbIngress))].sort();
}

/** Every NodePort of the Services that have one (NodePort and LoadBalancer), each once, sorted. */
export function nodePortsOf(services: readonly V1Service[]): NodePort[] {
  const seen = new Map<string, NodePort>();
  for (const s of services) {
    if (s.spec?.type !== 'NodePort' && s.spec?.type !== 'LoadBalancer') continue;
    for (const p of s.spec.ports ?? []) {
      if (!p.nodePort) continue;
      const protocol = (p.protocol ?? 'TCP').toLowerCase() as NodePort['protocol'];
      seen.set(`${protocol}/${p.nodePort}`, { protocol, port: p.nodePort });
    }
  }
  return [...seen.values()].sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol));
}

/** An ARP responder: the request turned into a reply from `mac` for `ip`, sent back where it came from. */
const arpReply = (mac: string, ip: string): string => [
  'move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]', `set_field:${mac}->eth_src`, 'set_field:2->arp_op',
  'move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[]', 'move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[]',
  `set_field:${mac}->arp_sha`, `set_field:${ip}->arp_spa`, 'IN_PORT',
].join(',');

/**
 * An NDP responder, in two steps: a solicitation for `ip` turned into a solicited, overriding
 * advertisement from `mac`, sent back to its sender (table 0), then its target link-layer address set
 * (table 4: OpenFlow lets a flow set `nd_tll` only where it matches an advertisement).
 */
const ndReply = (mac: string, ip: string): string => [
  'move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]', `set_field:${mac}->eth_src`,
  'move:NXM_NX_IPV6_SRC[]->NXM_NX_IPV6_DST[]', `set_field:${ip}->ipv6_src`,
  `set_field:${ND_ADVERT}->icmpv6_type`, 'set_field:0x60000000->nd_reserved', 'set_field:2->nd_options_type', `resubmit(,${ND_TABLE})`,
].join(',');
const ND_SOLICIT = 135;
const ND_ADVERT = 136;
const ND_TABLE = 4;

/** A gratuitous ARP (a request for `ip` from `mac`, to everyone) as hex, for `ovs-ofctl packet-out`. */
export function gratuitousArp(mac: string, ip: string): string {
  const m = mac.split(':').join('');
  const a = ipHex(ip);
  return `ffffffffffff${m}0806` + `0001080006040001${m}${a}000000000000${a}`;
}

/**
 * An unsolicited neighbour advertisement (RFC 4861 7.2.6: to all nodes, override set, with the target
 * link-layer address) of `ip` at `mac`, as hex for `ovs-ofctl packet-out`: the IPv6 twin of the
 * gratuitous ARP, so neighbours move a taken-over address at once.
 */
export function unsolicitedNa(mac: string, ip: string): string {
  const m = mac.split(':').join('');
  const src = ipHex(ip);
  const dst = ipHex('ff02::1');
  const icmp = (sum: string): string => `${ND_ADVERT.toString(16)}00${sum}20000000${src}0201${m}`;
  const len = icmp('0000').length / 2;
  // The checksum covers the pseudo-header (addresses, length, next header 58) and the message.
  const sum = checksum(`${src}${dst}${len.toString(16).padStart(8, '0')}0000003a${icmp('0000')}`);
  return `333300000001${m}86dd` + `60000000${len.toString(16).padStart(4, '0')}3aff${src}${dst}` + icmp(sum);
}

/** An IP address as hex digits (8 or 32). */
const ipHex = (ip: string): string => {
  const { family, value } = parseIp(ip);
  return value.toString(16).padStart(family === 4 ? 8 : 32, '0');
};

/** The Internet checksum (RFC 1071) of hex bytes, as 4 hex digits. */
function checksum(hex: string): string {
  let sum = 0;
  for (let i = 0; i < hex.length; i += 4) sum += parseInt(hex.slice(i, i + 4).padEnd(4, '0'), 16);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return (~sum & 0xffff).toString(16).padStart(4, '0');
}

/** The flows, one `ovs-ofctl` flow per line, in a stable order (replace-flows diffs them). */
export function bridgeFlows(i: BridgeFlowInput): string[] {
  const f: string[] = [];
  const add = (table: number, priority: number, match: string, actions: string): void => {
    f.push(`cookie=${COOKIE},table=${table},priority=${priority}${match ? `,${match}` : ''},actions=${actions}`);
  };
  const { mac, phys, patch } = i;
  for (const fam of i.families) {
    const ip = fam === 4 ? 'ip' : 'ipv6';
    const nw = fam === 4 ? 'nw' : 'ipv6';
    const udp = fam === 4 ? 'udp' : 'udp6';
    // GENEVE between nodes skips conntrack: to the host (the datapath decapsulates it there), and out.
    add(0, 205, `in_port=${phys},dl_dst=${mac},${udp},tp_dst=${GENEVE_PORT}`, 'LOCAL');
    add(0, 200, `in_port=${phys},${udp},tp_dst=${GENEVE_PORT}`, 'NORMAL');
    add(0, 200, `in_port=LOCAL,${udp},tp_dst=${GENEVE_PORT}`, `output:${phys}`);
    if (patch !== undefined) {
      const masq = MASQUERADE[fam].host;
      for (const svc of i.serviceCidrs.filter((c) => parseCidr(c).family === fam)) {
        // Host -> Service: from the masquerade IP (the route's source; the host's kernel SNATs a socket
        // bound to another address to it, host-nat.ts) straight to the gateway router, and the replies
        // back. Outside conntrack: a bridge ct() ahead of OVN's in the same datapath pass breaks the
        // userspace datapath's NAT when the backend is on this node (the GR's SNAT is lost at the pod's port).
        add(0, 501, `in_port=LOCAL,${ip},${nw}_src=${masq},${nw}_dst=${svc}`, 'resubmit(,2)');
        // Any other source (the kernel's SNAT missing or not yet made) stops here, never onto the wire.
        add(0, 500, `in_port=LOCAL,${ip},${nw}_dst=${svc}`, 'drop');
        add(0, 500, `in_port=${patch},${ip},${nw}_src=${svc},${nw}_dst=${masq}`, 'resubmit(,3)');
        // A Service address that OVN did not translate never leaves the node.
        add(0, 105, `in_port=${patch},${ip},${nw}_dst=${svc}`, 'drop');
      }
      // A Service's backend on this host (a host-network endpoint): the gateway router sends it to the
      // host's masquerade address, from the node's own IP (its SNAT); SNATed to OVN's masquerade address
      // so the host answers back here rather than to itself, and the answer un-NATed to the router.
      const ovnMasq = MASQUERADE[fam].ovn;
      add(0, 490, `in_port=${patch},${ip},${nw}_dst=${masq}`, `ct(commit,zone=${HOST_MASQ_CT_ZONE},nat(src=${ovnMasq}),table=3)`);
      add(0, 500, `in_port=LOCAL,${ip},${nw}_src=${masq},${nw}_dst=${ovnMasq}`, `ct(zone=${HOST_MASQ_CT_ZONE},nat,table=2)`);
      // NodePorts, as OVN-Kubernetes' shared gateway: in to the gateway router (its per-node load
      // balancer DNATs, and SNATs to its own address so replies come back through it), and its replies
      // out, both outside conntrack. No host process listens in the NodePort range.
      for (const np of i.nodePorts ?? []) {
        const proto = fam === 4 ? np.protocol : `${np.protocol}6`;
        add(0, 110, `in_port=${phys},dl_dst=${mac},${proto},tp_dst=${np.port}`, `output:${patch}`);
        add(0, 110, `in_port=${patch},${proto},tp_src=${np.port}`, `output:${phys}`);
      }
      for (const v of (i.externalVips ?? []).filter((x) => x.ip.includes(':') === (fam === 6))) {
        const proto = fam === 4 ? v.protocol : `${v.protocol}6`;
        add(0, 110, `in_port=${phys},dl_dst=${mac},${proto},${nw}_dst=${v.ip},tp_dst=${v.port}`, `output:${patch}`);
        add(0, 110, `in_port=${patch},${proto},${nw}_src=${v.ip},tp_src=${v.port}`, `output:${phys}`);
      }
      add(0, 100, `in_port=${patch},dl_src=${mac},${ip}`, `ct(commit,zone=${CT_ZONE},exec(set_field:${CT_MARK_OVN}->ct_mark)),output:${phys}`);
    }
    add(0, 100, `in_port=LOCAL,${ip}`, `ct(commit,zone=${CT_ZONE},exec(set_field:${CT_MARK_HOST}->ct_mark)),output:${phys}`);
    add(0, 50, `in_port=${phys},${ip}`, `ct(zone=${CT_ZONE},nat,table=1)`);
    for (const state of ['+trk+est', '+trk+rel']) {
      if (patch !== undefined) add(1, 100, `${ip},ct_state=${state},ct_mark=${CT_MARK_OVN}`, `output:${patch}`);
      add(1, 100, `${ip},ct_state=${state},ct_mark=${CT_MARK_HOST}`, 'LOCAL');
    }
    if (fam === 6) {
      // Router and neighbour advertisements make no conntrack entry: both the host and OVN get them.
      for (const type of [134, 136]) add(1, 14, `icmp6,icmpv6_type=${type}`, 'FLOOD');
    }
  }
  if (patch !== undefined) {
    // ARP and NDP for a LoadBalancer address: answered here by the bridge on the one node that
    // announces it (with the gateway router's MAC, which the bridge shares); elsewhere dropped, never
    // flooded to the gateway router or the host.
    const announce = new Set(i.announce ?? []);
    for (const vip of i.loadBalancerIps ?? []) {
      const mine = announce.has(vip);
      if (!vip.includes(':')) {
        add(0, 300, `in_port=${phys},arp,arp_op=1,arp_tpa=${vip}`, mine ? arpReply(mac, vip) : 'drop');
        continue;
      }
      if (!i.families.includes(6)) continue;
      const ns = `in_port=${phys},icmp6,icmpv6_type=${ND_SOLICIT},nd_target=${vip}`;
      // Duplicate address detection (from ::) is not answered: no node uses the address itself.
      add(0, 301, `${ns},ipv6_src=::`, 'drop');
      add(0, 300, ns, mine ? ndReply(mac, vip) : 'drop');
      if (mine) add(ND_TABLE, 100, `icmp6,icmpv6_type=${ND_ADVERT},icmpv6_code=0,nd_target=${vip}`, `set_field:${mac}->nd_tll,IN_PORT`);
    }
  }
  // Non-IP (ARP) to the shared MAC reaches both the host and the gateway router, which share it.
  add(0, 10, `in_port=${phys},dl_dst=${mac}`, patch !== undefined ? `LOCAL,output:${patch}` : 'LOCAL');
  if (patch !== undefined) {
    add(0, 10, `in_port=${patch},dl_src=${mac}`, 'NORMAL');
    add(0, 9, `in_port=${patch}`, 'drop');
    add(2, 100, '', `set_field:${mac}->eth_dst,output:${patch}`);
    add(3, 100, '', `move:NXM_OF_ETH_DST[]->NXM_OF_ETH_SRC[],set_field:${mac}->eth_dst,LOCAL`);
  }
  add(0, 0, '', 'NORMAL');
  add(1, 10, `dl_dst=${mac}`, 'LOCAL');
  add(1, 0, '', 'NORMAL');
  return f;
}
