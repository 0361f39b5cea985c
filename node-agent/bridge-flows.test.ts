// The external bridge's flows, by table: what each kind of traffic hits, with and without the patch port.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1Service } from '@kubernetes/client-node';
import { announcedBy, bridgeFlows, externalVipsOf, gratuitousArp, loadBalancerIpsOf, nodePortsOf, unsolicitedNa } from './bridge-flows.ts';

const base = { mac: '0a:00:00:00:00:11', phys: 1, families: [4] as (4 | 6)[], serviceCidrs: ['10.96.0.0/16'] };
const has = (flows: string[], match: string, actions: string): boolean => flows.some((f) => f.includes(match) && f.endsWith(`actions=${actions}`));

test('before OVN made its patch port: the host\'s traffic only, GENEVE past conntrack', () => {
  const f = bridgeFlows(base);
  assert.ok(has(f, 'table=0,priority=205,in_port=1,dl_dst=0a:00:00:00:00:11,udp,tp_dst=6081', 'LOCAL'));
  assert.ok(has(f, 'priority=200,in_port=LOCAL,udp,tp_dst=6081', 'output:1'));
  assert.ok(has(f, 'priority=100,in_port=LOCAL,ip', 'ct(commit,zone=64000,exec(set_field:0x2->ct_mark)),output:1'));
  assert.ok(has(f, 'table=1,priority=100,ip,ct_state=+trk+est,ct_mark=0x2', 'LOCAL'));
  assert.ok(!f.some((x) => x.includes('ct_mark=0x1') || x.includes('10.96.0.0/16')), 'nothing toward OVN');
});

test('with the patch port: pod traffic committed toward its replies, host -> Service masqueraded', () => {
  const table: [string, string][] = [
    ['priority=100,in_port=7,dl_src=0a:00:00:00:00:11,ip', 'ct(commit,zone=64000,exec(set_field:0x1->ct_mark)),output:1'],
    ['table=1,priority=100,ip,ct_state=+trk+est,ct_mark=0x1', 'output:7'],
    ['table=1,priority=100,ip,ct_state=+trk+rel,ct_mark=0x1', 'output:7'],
    ['priority=501,in_port=LOCAL,ip,nw_src=169.254.169.2,nw_dst=10.96.0.0/16', 'resubmit(,2)'],
    ['priority=500,in_port=7,ip,nw_src=10.96.0.0/16,nw_dst=169.254.169.2', 'resubmit(,3)'],
    ['priority=500,in_port=LOCAL,ip,nw_dst=10.96.0.0/16', 'drop'],
    ['priority=105,in_port=7,ip,nw_dst=10.96.0.0/16', 'drop'],
    // To a backend on this host (a host-network endpoint) from the gateway router, and the host's answers.
    ['priority=490,in_port=7,ip,nw_dst=169.254.169.2', 'ct(commit,zone=64001,nat(src=169.254.169.1),table=3)'],
    ['priority=500,in_port=LOCAL,ip,nw_src=169.254.169.2,nw_dst=169.254.169.1', 'ct(zone=64001,nat,table=2)'],
    ['table=0,priority=10,in_port=1,dl_dst=0a:00:00:00:00:11', 'LOCAL,output:7'],
    ['table=0,priority=9,in_port=7', 'drop'],
    ['table=2,priority=100', 'set_field:0a:00:00:00:00:11->eth_dst,output:7'],
  ];
  const f = bridgeFlows({ ...base, patch: 7 });
  for (const [match, actions] of table) assert.ok(has(f, match, actions), `${match} -> ${actions}`);
  assert.equal(new Set(f).size, f.length, 'no flow twice');
});

test('dual-stack adds the IPv6 twins and floods advertisements', () => {
  const f = bridgeFlows({ ...base, patch: 7, families: [4, 6], serviceCidrs: ['10.96.0.0/16', 'fd00:10:96::/112'] });
  assert.ok(has(f, 'priority=490,in_port=7,ipv6,ipv6_dst=fd69::2', 'ct(commit,zone=64001,nat(src=fd69::1),table=3)'));
  assert.ok(has(f, 'priority=501,in_port=LOCAL,ipv6,ipv6_src=fd69::2,ipv6_dst=fd00:10:96::/112', 'resubmit(,2)'));
  assert.ok(has(f, 'table=1,priority=100,ipv6,ct_state=+trk+est,ct_mark=0x1', 'output:7'));
  assert.ok(has(f, 'icmp6,icmpv6_type=136', 'FLOOD'));
});

test('NodePorts: in to the gateway router and its replies out, per protocol and family, outside conntrack; none before the patch port', () => {
  const nodePorts = [{ protocol: 'tcp' as const, port: 30080 }, { protocol: 'udp' as const, port: 30053 }];
  const f = bridgeFlows({ ...base, patch: 7, families: [4, 6], serviceCidrs: ['10.96.0.0/16', 'fd00:10:96::/112'], nodePorts });
  const table: [string, string][] = [
    ['table=0,priority=110,in_port=1,dl_dst=0a:00:00:00:00:11,tcp,tp_dst=30080', 'output:7'],
    ['table=0,priority=110,in_port=7,tcp,tp_src=30080', 'output:1'],
    ['table=0,priority=110,in_port=1,dl_dst=0a:00:00:00:00:11,udp,tp_dst=30053', 'output:7'],
    ['table=0,priority=110,in_port=1,dl_dst=0a:00:00:00:00:11,tcp6,tp_dst=30080', 'output:7'],
    ['table=0,priority=110,in_port=7,udp6,tp_src=30053', 'output:1'],
  ];
  for (const [match, actions] of table) assert.ok(has(f, match, actions), `${match} -> ${actions}`);
  assert.ok(!bridgeFlows({ ...base, nodePorts }).some((x) => x.includes('30080')), 'no patch port: nowhere to send them');
});

test('the NodePorts of a cluster: NodePort and LoadBalancer Services only, each port once, sorted', () => {
  const svc = (type: string, ports: { nodePort?: number; protocol?: string }[]) => ({ spec: { type, ports: ports.map((p, i) => ({ port: 80 + i, ...p })) } });
  const cases = [
    { name: 'none', services: [svc('ClusterIP', [{}])], want: [] },
    { name: 'NodePort and LoadBalancer', services: [svc('NodePort', [{ nodePort: 30080 }, { nodePort: 30053, protocol: 'UDP' }]), svc('LoadBalancer', [{ nodePort: 31000, protocol: 'SCTP' }])],
      want: [{ protocol: 'udp', port: 30053 }, { protocol: 'tcp', port: 30080 }, { protocol: 'sctp', port: 31000 }] },
    { name: 'the same port for TCP and UDP is two', services: [svc('NodePort', [{ nodePort: 30053 }, { nodePort: 30053, protocol: 'UDP' }])],
      want: [{ protocol: 'tcp', port: 30053 }, { protocol: 'udp', port: 30053 }] },
    { name: 'a LoadBalancer without node ports (allocateLoadBalancerNodePorts: false)', services: [svc('LoadBalancer', [{}])], want: [] },
  ];
  for (const c of cases) assert.deepEqual(nodePortsOf(c.services), c.want, c.name);
});

test('external addresses: their Service ports to the gateway router and back on every node; ARP for LoadBalancer addresses answered only where announced, dropped elsewhere; an ExternalIP\'s ARP left to its owner', () => {
  const externalVips = [{ ip: '172.29.0.241', protocol: 'tcp' as const, port: 80 }, { ip: '198.51.100.10', protocol: 'udp' as const, port: 53 }];
  const input = { ...base, patch: 7, externalVips, loadBalancerIps: ['172.29.0.241', '172.29.0.242'], announce: ['172.29.0.241'] };
  const f = bridgeFlows(input);
  const table: [string, string][] = [
    ['table=0,priority=110,in_port=1,dl_dst=0a:00:00:00:00:11,udp,nw_dst=198.51.100.10,tp_dst=53', 'output:7'],
    ['table=0,priority=110,in_port=7,udp,nw_src=198.51.100.10,tp_src=53', 'output:1'],
    ['table=0,priority=110,in_port=1,dl_dst=0a:00:00:00:00:11,tcp,nw_dst=172.29.0.241,tp_dst=80', 'output:7'],
    ['table=0,priority=300,in_port=1,arp,arp_op=1,arp_tpa=172.29.0.242', 'drop'],
    ['table=0,priority=300,in_port=1,arp,arp_op=1,arp_tpa=172.29.0.241', 'move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:0a:00:00:00:00:11->eth_src,set_field:2->arp_op,'
      + 'move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:0a:00:00:00:00:11->arp_sha,set_field:172.29.0.241->arp_spa,IN_PORT'],
  ];
  for (const [match, actions] of table) assert.ok(has(f, match, actions), `${match} -> ${actions}`);
  assert.ok(has(bridgeFlows({ ...input, announce: [] }), 'arp_tpa=172.29.0.241', 'drop'), 'another node announces it');
  assert.ok(!f.some((x) => x.includes('arp_tpa=198.51.100.10')), 'an ExternalIP (maybe some host\'s own address): its ARP untouched');
  assert.ok(!f.some((x) => x.includes('nw_dst=198.51.100.10') && !x.includes('tp_dst=53')), 'only the Service\'s ports of it');
});

test('IPv6 external addresses: NDP answered in two steps where announced (a solicited, overriding advertisement with the bridge\'s MAC), dropped elsewhere, DAD never answered', () => {
  const externalVips = ['fd00:172:29::f1', 'fd00:172:29::f2'].map((ip) => ({ ip, protocol: 'tcp' as const, port: 80 }));
  const input = { ...base, families: [4, 6] as const, patch: 7, externalVips, loadBalancerIps: ['fd00:172:29::f1', 'fd00:172:29::f2'], announce: ['fd00:172:29::f1'] };
  const f = bridgeFlows(input);
  const table: [string, string][] = [
    ['table=0,priority=110,in_port=1,dl_dst=0a:00:00:00:00:11,tcp6,ipv6_dst=fd00:172:29::f1,tp_dst=80', 'output:7'],
    ['table=0,priority=300,in_port=1,icmp6,icmpv6_type=135,nd_target=fd00:172:29::f1', 'move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:0a:00:00:00:00:11->eth_src,'
      + 'move:NXM_NX_IPV6_SRC[]->NXM_NX_IPV6_DST[],set_field:fd00:172:29::f1->ipv6_src,set_field:136->icmpv6_type,set_field:0x60000000->nd_reserved,set_field:2->nd_options_type,resubmit(,4)'],
    ['table=4,priority=100,icmp6,icmpv6_type=136,icmpv6_code=0,nd_target=fd00:172:29::f1', 'set_field:0a:00:00:00:00:11->nd_tll,IN_PORT'],
    ['table=0,priority=301,in_port=1,icmp6,icmpv6_type=135,nd_target=fd00:172:29::f1,ipv6_src=::', 'drop'],
    ['table=0,priority=300,in_port=1,icmp6,icmpv6_type=135,nd_target=fd00:172:29::f2', 'drop'],
  ];
  for (const [match, actions] of table) assert.ok(has(f, match, actions), `${match} -> ${actions}`);
  assert.ok(!f.some((x) => x.includes('nd_target=fd00:172:29::f2') && x.includes('table=4')), 'no advertisement for an address another node announces');
  assert.ok(!bridgeFlows({ ...input, families: [4] }).some((x) => x.includes('icmp6')), 'an IPv4 cluster has no NDP flows');
});

test('an unsolicited neighbour advertisement: to all nodes, override set, target and its link-layer address, a valid ICMPv6 checksum, 86 bytes', () => {
  // Built independently (Python's struct and ipaddress) from RFC 4861 4.4.
  const want = '3333000000010a000000001186dd6000000000203afffd0001720029000000000000000000f1ff020000000000000000000000000001'
    + '88004d7520000000fd0001720029000000000000000000f102010a0000000011';
  assert.equal(unsolicitedNa('0a:00:00:00:00:11', 'fd00:172:29::f1'), want);
});

test('a gratuitous ARP: broadcast, a request for the address from the bridge\'s MAC, 42 bytes', () => {
  const g = gratuitousArp('0a:00:00:00:00:11', '172.29.0.241');
  assert.equal(g, 'ffffffffffff0a00000000110806000108000604000' + '10a0000000011ac1d00f1000000000000ac1d00f1');
  assert.equal(g.length, 84);
});

test('which addresses a node announces, and every external address', () => {
  const lb = (name: string, ip: string, node?: string, type = 'LoadBalancer'): V1Service => ({
    metadata: { name, annotations: node ? { 'kovn.local/announcing-node': node } : {} },
    spec: { type, externalIPs: name === 'a' ? ['198.51.100.10'] : [], ports: [{ port: 80 }, ...(name === 'a' ? [{ port: 53, protocol: 'UDP' }] : [])] },
    status: { loadBalancer: { ingress: [{ ip }] } },
  });
  const services = [lb('a', '172.29.0.241', 'node-1'), lb('b', '172.29.0.242', 'node-2'), lb('c', '172.29.0.243'), lb('d', '172.29.0.244', 'node-1', 'ClusterIP'), lb('e', 'fd00:172:29::f1', 'node-1')];
  assert.deepEqual(announcedBy(services, 'node-1', 'kovn.local/announcing-node'), ['172.29.0.241', 'fd00:172:29::f1']);
  assert.deepEqual(loadBalancerIpsOf(services), ['172.29.0.241', '172.29.0.242', '172.29.0.243', 'fd00:172:29::f1']);
  const v = (ip: string, port = 80, protocol = 'tcp') => ({ ip, protocol, port });
  assert.deepEqual(externalVipsOf(services), [v('172.29.0.241', 53, 'udp'), v('172.29.0.241'), v('172.29.0.242'), v('172.29.0.243'), v('198.51.100.10', 53, 'udp'), v('198.51.100.10'), v('fd00:172:29::f1')]);
});
