/** Pure translation: a pod's logical switch port and its `k8s.ovn.org/pod-networks` annotation. */
import type { PodNetworks } from '../../lib/annotations.ts';
import { ownedBy } from './ownership.ts';
import type { DesiredSwitchPort } from './topology.ts';
import { bare, macFromIp, nodeAddresses } from './topology.ts';

export const podPortName = (namespace: string, name: string): string => `${namespace}_${name}`;

export interface PodRef {
  namespace: string;
  name: string;
  uid: string;
  node: string;
}


/** The pod's MAC: derived from its first address, as OVN-Kubernetes does, so it is stable per address. */
export const podMac = (ips: readonly string[]): string => macFromIp(ips[0] ?? '');

export function podPort(pod: PodRef, ips: readonly string[]): DesiredSwitchPort {
  const mac = podMac(ips);
  const addr = [mac, ...ips.map(bare)].join(' ');
  return {
    name: podPortName(pod.namespace, pod.name),
    type: '',
    addresses: [addr],
    port_security: [addr],
    // requested-chassis binds the port to its node only; iface-id-ver to this pod incarnation only.
    options: { 'requested-chassis': pod.node, 'iface-id-ver': pod.uid },
    external_ids: ownedBy({ type: 'Pod', name: `${pod.namespace}/${pod.name}` }, `lsp:${podPortName(pod.namespace, pod.name)}`,
      { namespace: pod.namespace, pod: 'true' }),
  };
}

/** The annotation value OVN-Kubernetes writes for a pod on the default network. */
export function podNetworks(ips: readonly string[], nodeSubnets: readonly string[]): PodNetworks {
  const { gateway } = nodeAddresses(nodeSubnets);
  const gateways = gateway.map(bare);
  const fam = (ip: string): number => (ip.includes(':') ? 6 : 4);
  // Gateways in the same family order as the pod's addresses.
  const gatewayIps = ips.map((ip) => gateways.find((g) => fam(g) === fam(ip)) ?? '').filter(Boolean);
  return {
    default: {
      ip_addresses: [...ips],
      mac_address: podMac(ips),
      gateway_ips: gatewayIps,
      ip_address: ips[0],
      gateway_ip: gatewayIps[0],
      role: 'primary',
    },
  };
}
