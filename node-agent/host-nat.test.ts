// The host's NAT rules for its own Service connections, by tables: SNAT to the masquerade address for
// other sources, its NodePorts DNATed to the ClusterIP per family, SCTP and headless left out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1Service } from '@kubernetes/client-node';
import { hostNatRules, hostNodePortsOf } from './host-nat.ts';

const svc = (type: string, clusterIPs: string[], ports: { port: number; nodePort?: number; protocol?: string }[]): V1Service => ({ spec: { type, clusterIPs, ports } });

test('the NodePorts the host reaches: NodePort and LoadBalancer Services, one per ClusterIP family, TCP and UDP only, sorted', () => {
  const cases: { name: string; services: V1Service[]; want: ReturnType<typeof hostNodePortsOf> }[] = [
    { name: 'a ClusterIP Service has none', services: [svc('ClusterIP', ['10.96.0.20'], [{ port: 80 }])], want: [] },
    { name: 'dual-stack, two ports', services: [svc('NodePort', ['10.96.0.20', 'fd00:10:96::20'], [{ port: 80, nodePort: 30080 }, { port: 53, nodePort: 30053, protocol: 'UDP' }])],
      want: [
        { protocol: 'udp', nodePort: 30053, clusterIp: '10.96.0.20', port: 53 }, { protocol: 'udp', nodePort: 30053, clusterIp: 'fd00:10:96::20', port: 53 },
        { protocol: 'tcp', nodePort: 30080, clusterIp: '10.96.0.20', port: 80 }, { protocol: 'tcp', nodePort: 30080, clusterIp: 'fd00:10:96::20', port: 80 },
      ] },
    { name: 'SCTP and a LoadBalancer without node ports', services: [svc('LoadBalancer', ['10.96.0.21'], [{ port: 80 }, { port: 9, nodePort: 31000, protocol: 'SCTP' }])], want: [] },
  ];
  for (const c of cases) assert.deepEqual(hostNodePortsOf(c.services), c.want, c.name);
});

test('the nat chains per family: SNAT of other sources to the masquerade address, NodePorts on local addresses but loopback to the ClusterIP, the gateway router\'s connections to this host as a backend to the node IP', () => {
  const nodePorts = hostNodePortsOf([svc('NodePort', ['10.96.0.20', 'fd00:10:96::20'], [{ port: 80, nodePort: 30080 }])]);
  const input = { bridge: 'breth0', serviceCidrs: ['10.96.0.0/16', 'fd00:10:96::/112'], nodePorts };
  const chains = ['*nat', ':KOVN-HOST-SNAT - [0:0]', ':KOVN-NODEPORTS - [0:0]', ':KOVN-HOST-BACKEND - [0:0]'];
  assert.equal(hostNatRules({ ...input, family: 4, nodeIp: '172.29.0.11' }), [
    ...chains,
    '-A KOVN-HOST-SNAT -o breth0 -d 10.96.0.0/16 ! -s 169.254.169.2 -j SNAT --to-source 169.254.169.2',
    '-A KOVN-NODEPORTS ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -p tcp -m tcp --dport 30080 -j DNAT --to-destination 10.96.0.20:80',
    '-A KOVN-HOST-BACKEND -i breth0 -s 169.254.169.1 -d 169.254.169.2 -j DNAT --to-destination 172.29.0.11',
    'COMMIT', '',
  ].join('\n'));
  assert.equal(hostNatRules({ ...input, family: 6, nodeIp: 'fd00:172:29::11' }), [
    ...chains,
    '-A KOVN-HOST-SNAT -o breth0 -d fd00:10:96::/112 ! -s fd69::2 -j SNAT --to-source fd69::2',
    '-A KOVN-NODEPORTS ! -d ::1/128 -m addrtype --dst-type LOCAL -p tcp -m tcp --dport 30080 -j DNAT --to-destination [fd00:10:96::20]:80',
    '-A KOVN-HOST-BACKEND -i breth0 -s fd69::1 -d fd69::2 -j DNAT --to-destination fd00:172:29::11',
    'COMMIT', '',
  ].join('\n'));
  // No NodePorts and no node address yet: the chains are still declared, so iptables-restore empties them.
  assert.equal(hostNatRules({ ...input, nodePorts: [], family: 4 }), [...chains, '-A KOVN-HOST-SNAT -o breth0 -d 10.96.0.0/16 ! -s 169.254.169.2 -j SNAT --to-source 169.254.169.2', 'COMMIT', ''].join('\n'));
});
