// A Service's load balancers, by tables: names and owners, VIPs per family, endpoint choice, options,
// per-node rows for NodePort and the traffic policies, and the Services that get none.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { backendsFor, hintedBackends, serviceLoadBalancers, staleFlows, unreachable } from './service.ts';
import type { LbVips, Reach, ServiceNode, StaleFlow } from './service.ts';
import { ownerOf } from './ownership.ts';

const svc = (spec: V1Service['spec'], name = 'web'): V1Service => ({ metadata: { namespace: 'default', name, uid: 'u1' }, spec: { selector: { app: 'web' }, ...spec } });
type Ep = { ip: string; node?: string; ready?: boolean; serving?: boolean; terminating?: boolean };
const slice = (eps: Ep[], ports: { name?: string; port: number; protocol?: string }[], addressType = 'IPv4'): V1EndpointSlice => ({
  addressType, metadata: { namespace: 'default', name: `web-${addressType}` },
  ports: ports.map((p) => ({ name: p.name ?? '', port: p.port, protocol: p.protocol ?? 'TCP' })),
  endpoints: eps.map((e) => ({
    addresses: [e.ip], ...(e.node ? { nodeName: e.node } : {}),
    conditions: { ...(e.ready !== undefined ? { ready: e.ready } : {}), ...(e.serving !== undefined ? { serving: e.serving } : {}), ...(e.terminating !== undefined ? { terminating: e.terminating } : {}) },
  })),
});
const nodes = [{ name: 'node-1', ips: ['172.29.0.11'] }, { name: 'node-2', ips: ['172.29.0.12'] }];
const reach: Reach = {
  serviceNetworks: ['10.96.0.0/16', 'fd00:10:96::/112'], joinSubnets: ['100.64.0.0/16'], clusterNetworks: ['10.244.0.0/16', 'fd00:10:244::/48'],
  nodeSubnets: new Map([['node-1', ['10.244.1.0/24', 'fd00:10:244:1::/64']], ['node-2', ['10.244.2.0/24']]]),
};
const rowsOf = (s: V1Service, sl: V1EndpointSlice[], n: ServiceNode[] = nodes) => serviceLoadBalancers(s, sl, n, reach).rows;
const cols = (r: ReturnType<typeof rowsOf>[number]) => r.columns as { vips: Record<string, string>; options: Record<string, string>; protocol: string; external_ids: Record<string, string> };

test('ClusterIP: one row per protocol, every port, in the cluster group, owned as OVN-Kubernetes does', () => {
  const s = svc({ clusterIP: '10.96.0.20', clusterIPs: ['10.96.0.20'], ports: [{ name: 'http', port: 80, targetPort: 8080 }, { name: 'dns', port: 53, protocol: 'UDP' }] });
  const sl = [slice([{ ip: '10.244.1.5', node: 'node-1' }, { ip: '10.244.2.3', node: 'node-2' }], [{ name: 'http', port: 8080 }, { name: 'dns', port: 5353, protocol: 'UDP' }])];
  const rows = rowsOf(s, sl);
  assert.deepEqual(rows.map((r) => r.name), ['Service_default/web_TCP_cluster', 'Service_default/web_UDP_cluster']);
  const [tcp, udp] = rows.map(cols);
  assert.deepEqual(tcp?.vips, { '10.96.0.20:80': '10.244.1.5:8080,10.244.2.3:8080' });
  assert.deepEqual(udp?.vips, { '10.96.0.20:53': '10.244.1.5:5353,10.244.2.3:5353' });
  assert.equal(udp?.protocol, 'udp');
  assert.deepEqual(rows[0]?.parent, { table: 'Load_Balancer_Group', name: 'clusterLBGroup', column: 'load_balancer' });
  assert.equal(tcp?.external_ids['k8s.ovn.org/kind'], 'Service');
  assert.equal(tcp?.external_ids['k8s.ovn.org/owner'], 'default/web');
  assert.deepEqual(ownerOf(tcp?.external_ids), { type: 'Service', name: 'default/web' });
  assert.deepEqual(tcp?.options, { reject: 'true', event: 'false', neighbor_responder: 'none', hairpin_snat_ip: '169.254.169.5 fd69::5' });
});

test('dual-stack: a VIP per family, each to its own family of endpoints', () => {
  const s = svc({ clusterIPs: ['10.96.0.20', 'fd00:10:96::20'], ports: [{ port: 80, targetPort: 8080 }] });
  const sl = [slice([{ ip: '10.244.1.5' }], [{ port: 8080 }]), slice([{ ip: 'fd00:10:244:1::5' }], [{ port: 8080 }], 'IPv6')];
  assert.deepEqual(cols(rowsOf(s, sl)[0]!).vips, { '10.96.0.20:80': '10.244.1.5:8080', '[fd00:10:96::20]:80': '[fd00:10:244:1::5]:8080' });
});

test('endpoint choice: ready; else serving and terminating; never the rest', () => {
  const ports = [{ port: 80 }];
  const cases: { eps: Ep[]; want: string[] }[] = [
    { eps: [{ ip: '10.0.0.1' }, { ip: '10.0.0.2', ready: false }], want: ['10.0.0.1'] },
    { eps: [{ ip: '10.0.0.1', ready: false, serving: true, terminating: true }, { ip: '10.0.0.2', ready: false }], want: ['10.0.0.1'] },
    { eps: [{ ip: '10.0.0.1', ready: true }, { ip: '10.0.0.2', ready: false, serving: true, terminating: true }], want: ['10.0.0.1'] },
    { eps: [{ ip: '10.0.0.1', ready: false, serving: false, terminating: true }], want: [] },
    { eps: [], want: [] },
  ];
  for (const c of cases) assert.deepEqual(backendsFor([slice(c.eps, ports)], '', 'TCP').map((b) => b.ip), c.want, JSON.stringify(c.eps));
});

test('no endpoint: the VIP stays with no backends, so OVN rejects (a reset at once, not a timeout)', () => {
  const rows = rowsOf(svc({ clusterIPs: ['10.96.0.20'], ports: [{ port: 80 }] }), []);
  assert.deepEqual(cols(rows[0]!).vips, { '10.96.0.20:80': '' });
  assert.equal(cols(rows[0]!).options.reject, 'true');
});

test('sessionAffinity ClientIP sets affinity_timeout (its timeout, else 10800)', () => {
  const a = rowsOf(svc({ clusterIPs: ['10.96.0.20'], ports: [{ port: 80 }], sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } }), []);
  assert.equal(cols(a[0]!).options.affinity_timeout, '60');
  const b = rowsOf(svc({ clusterIPs: ['10.96.0.20'], ports: [{ port: 80 }], sessionAffinity: 'ClientIP' }), []);
  assert.equal(cols(b[0]!).options.affinity_timeout, '10800');
});

test('headless and ExternalName Services get no load balancer', () => {
  assert.deepEqual(rowsOf(svc({ clusterIP: 'None', clusterIPs: ['None'], ports: [{ port: 80 }] }), []), []);
  assert.deepEqual(rowsOf(svc({ type: 'ExternalName', externalName: 'example.com' }), []), []);
});

test('NodePort: per node, the node IPs on its router and its switch; ETP=Local: local endpoints and skip_snat on the router\'s own row (node_local_router)', () => {
  const sl = [slice([{ ip: '10.244.1.5', node: 'node-1' }, { ip: '10.244.2.3', node: 'node-2' }], [{ port: 8080 }])];
  const np = rowsOf(svc({ type: 'NodePort', clusterIPs: ['10.96.0.20'], ports: [{ port: 80, nodePort: 30080 }] }), sl);
  assert.deepEqual(np.map((r) => r.name), ['Service_default/web_TCP_cluster', 'Service_default/web_TCP_node_router_node-1', 'Service_default/web_TCP_node_switch_node-1',
    'Service_default/web_TCP_node_router_node-2', 'Service_default/web_TCP_node_switch_node-2']);
  assert.deepEqual(cols(np[1]!).vips, { '172.29.0.11:30080': '10.244.1.5:8080,10.244.2.3:8080' });
  assert.deepEqual(np[1]?.parent, { table: 'Logical_Router', name: 'GR_node-1', column: 'load_balancer' });
  assert.deepEqual(np[2]?.parent, { table: 'Logical_Switch', name: 'node-1', column: 'load_balancer' });
  const local = rowsOf(svc({ type: 'NodePort', externalTrafficPolicy: 'Local', clusterIPs: ['10.96.0.20'], ports: [{ port: 80, nodePort: 30080 }] }), sl);
  const r1 = cols(local.find((r) => r.name.endsWith('node_local_router_node-1'))!);
  assert.deepEqual(r1.vips, { '172.29.0.11:30080': '10.244.1.5:8080' });
  assert.equal(r1.options.skip_snat, 'true');
  assert.ok(!local.some((r) => r.name.endsWith('_node_router_node-1')), 'no SNATed router row: the ClusterIP stays in the cluster row');
  // ETP=Local with per-node ClusterIPs too (ITP=Local here): the ClusterIP on the router row that SNATs,
  // so a host's connection comes back through its own router; only the NodePort keeps the client's address.
  const both = rowsOf(svc({ type: 'NodePort', externalTrafficPolicy: 'Local', internalTrafficPolicy: 'Local', clusterIPs: ['10.96.0.20'], ports: [{ port: 80, nodePort: 30080 }] }), sl);
  const snat = cols(both.find((r) => r.name.endsWith('_node_router_node-1'))!);
  const keep = cols(both.find((r) => r.name.endsWith('_node_local_router_node-1'))!);
  assert.deepEqual([snat.vips, snat.options.skip_snat], [{ '10.96.0.20:80': '10.244.1.5:8080' }, undefined]);
  assert.deepEqual([keep.vips, keep.options.skip_snat], [{ '172.29.0.11:30080': '10.244.1.5:8080' }, 'true']);
  assert.deepEqual(cols(local.find((r) => r.name.endsWith('node_switch_node-1'))!).vips, { '172.29.0.11:30080': '10.244.1.5:8080,10.244.2.3:8080' });
});

test('internalTrafficPolicy Local: the ClusterIP per node switch and gateway router (its host), local endpoints only', () => {
  const sl = [slice([{ ip: '10.244.1.5', node: 'node-1' }], [{ port: 8080 }])];
  const rows = rowsOf(svc({ internalTrafficPolicy: 'Local', clusterIPs: ['10.96.0.20'], ports: [{ port: 80 }] }), sl);
  assert.deepEqual(rows.map((r) => [r.name, cols(r).vips]), [
    ['Service_default/web_TCP_node_router_node-1', { '10.96.0.20:80': '10.244.1.5:8080' }],
    ['Service_default/web_TCP_node_switch_node-1', { '10.96.0.20:80': '10.244.1.5:8080' }],
    ['Service_default/web_TCP_node_router_node-2', { '10.96.0.20:80': '' }],
    ['Service_default/web_TCP_node_switch_node-2', { '10.96.0.20:80': '' }],
  ]);
});

test('an endpoint on a node\'s own IP (a host-network pod): per node, that node\'s gateway router reaches it at the host\'s masquerade address, every switch and the other routers at the node IP', () => {
  const sl = [slice([{ ip: '172.29.0.11', node: 'node-1' }, { ip: '10.244.2.3', node: 'node-2' }], [{ port: 18080 }])];
  const s = svc({ type: 'NodePort', clusterIPs: ['10.96.0.20'], externalIPs: ['198.51.100.10'], ports: [{ port: 80, nodePort: 30080 }] });
  const rows = rowsOf(s, sl);
  const both = '10.244.2.3:18080,172.29.0.11:18080';
  const viaMasq = '10.244.2.3:18080,169.254.169.2:18080';
  assert.deepEqual(rows.map((r) => [r.name, cols(r).vips]), [
    ['Service_default/web_TCP_node_router_node-1', { '10.96.0.20:80': viaMasq, '198.51.100.10:80': viaMasq, '172.29.0.11:30080': viaMasq }],
    ['Service_default/web_TCP_node_switch_node-1', { '10.96.0.20:80': both, '198.51.100.10:80': both, '172.29.0.11:30080': both }],
    ['Service_default/web_TCP_node_router_node-2', { '10.96.0.20:80': both, '198.51.100.10:80': both, '172.29.0.12:30080': both }],
    ['Service_default/web_TCP_node_switch_node-2', { '10.96.0.20:80': both, '198.51.100.10:80': both, '172.29.0.12:30080': both }],
  ]);
  assert.equal(cols(rows[0]!).options.skip_snat, undefined, 'the router SNATs, so the host answers it back through the bridge');
  const v6 = rowsOf(svc({ clusterIPs: ['fd00:10:96::20'], ports: [{ port: 80 }] }), [slice([{ ip: 'fd00:172:29::11', node: 'node-1' }], [{ port: 18080 }], 'IPv6')],
    [{ name: 'node-1', ips: ['fd00:172:29::11'] }]);
  assert.deepEqual(cols(v6.find((r) => r.name.endsWith('node_router_node-1'))!).vips, { '[fd00:10:96::20]:80': '[fd69::2]:18080' });
});

test('ExternalIPs and LoadBalancer addresses join the cluster row', () => {
  const rows = rowsOf(svc({ clusterIPs: ['10.96.0.20'], externalIPs: ['203.0.113.50'], ports: [{ port: 80 }] }), [slice([{ ip: '10.244.1.5' }], [{ port: 80 }])]);
  assert.deepEqual(cols(rows[0]!).vips, { '10.96.0.20:80': '10.244.1.5:80', '203.0.113.50:80': '10.244.1.5:80' });
  const lb = { ...svc({ type: 'LoadBalancer', clusterIPs: ['10.96.0.20'], ports: [{ port: 80, nodePort: 30080 }] }), status: { loadBalancer: { ingress: [{ ip: '172.29.0.241' }] } } };
  const lbRows = rowsOf(lb, [slice([{ ip: '10.244.1.5' }], [{ port: 80 }])]);
  assert.deepEqual(cols(lbRows[0]!).vips, { '10.96.0.20:80': '10.244.1.5:80', '172.29.0.241:80': '10.244.1.5:80' });
  // An ingress address of a Service that is no longer a LoadBalancer is not balanced.
  const was = { ...lb, spec: { ...lb.spec, type: 'ClusterIP' } };
  assert.deepEqual(cols(rowsOf(was, [slice([{ ip: '10.244.1.5' }], [{ port: 80 }])])[0]!).vips, { '10.96.0.20:80': '10.244.1.5:80' });
});

test('a named target port no endpoint has is a problem of the Service; its other ports are programmed', () => {
  const s = svc({ clusterIPs: ['10.96.0.20'], ports: [{ name: 'http', port: 80, targetPort: 'web' }, { name: 'admin', port: 81, targetPort: 'nope' }] });
  const r = serviceLoadBalancers(s, [slice([{ ip: '10.244.1.5' }], [{ name: 'http', port: 8080 }])], nodes, reach);
  assert.deepEqual(cols(r.rows[0]!).vips, { '10.96.0.20:80': '10.244.1.5:8080', '10.96.0.20:81': '' });
  assert.deepEqual(r.problems.map((p) => p.reason), ['TargetPortNotFound']);
});

test('stale UDP/SCTP flows: a backend that left a VIP, every backend of a VIP gone; none for TCP or a backend that stays', () => {
  const cases: { name: string; before: LbVips[]; after: LbVips[]; want: StaleFlow[] }[] = [
    { name: 'nothing changed', before: [{ protocol: 'udp', vips: { '10.96.0.10:53': '10.244.1.5:53,10.244.2.3:53' } }],
      after: [{ protocol: 'udp', vips: { '10.96.0.10:53': '10.244.2.3:53,10.244.1.5:53' } }], want: [] },
    { name: 'a backend replaced', before: [{ protocol: 'udp', vips: { '10.96.0.10:53': '10.244.1.5:53' } }],
      after: [{ protocol: 'udp', vips: { '10.96.0.10:53': '10.244.1.9:53' } }],
      want: [{ protocol: 'udp', vip: '10.96.0.10', port: 53, backend: '10.244.1.5', backendPort: 53 }] },
    { name: 'the Service gone', before: [{ protocol: 'sctp', vips: { '[fd00:10:96::a]:9': '[fd00:10:244:1::5]:99' } }], after: [],
      want: [{ protocol: 'sctp', vip: 'fd00:10:96::a', port: 9, backend: 'fd00:10:244:1::5', backendPort: 99 }] },
    { name: 'TCP is left to its resets', before: [{ protocol: 'tcp', vips: { '10.96.0.20:80': '10.244.1.5:8080' } }], after: [], want: [] },
    { name: 'a backend that moved to another row of the same VIP stays', before: [{ protocol: 'udp', vips: { '172.29.0.11:30053': '10.244.1.5:53' } }],
      after: [{ protocol: 'udp', vips: {} }, { protocol: 'udp', vips: { '172.29.0.11:30053': '10.244.1.5:53' } }], want: [] },
    { name: 'a target port changed', before: [{ protocol: 'udp', vips: { '10.96.0.10:53': '10.244.1.5:53' } }],
      after: [{ protocol: 'udp', vips: { '10.96.0.10:53': '10.244.1.5:5353' } }],
      want: [{ protocol: 'udp', vip: '10.96.0.10', port: 53, backend: '10.244.1.5', backendPort: 53 }] },
  ];
  for (const c of cases) assert.deepEqual(staleFlows(c.before, c.after), c.want, c.name);
});

test('trafficDistribution: each node\'s clients go to the endpoints hinted for the node, else its zone, else all', () => {
  const b = (ip: string, forZones?: string[], forNodes?: string[]) => ({ ip, port: 80, ...(forZones ? { forZones } : {}), ...(forNodes ? { forNodes } : {}) });
  const n1 = { name: 'node-1', ips: [], zone: 'zone-1' };
  const cases = [
    { name: 'zone hints: the zone\'s', bs: [b('a', ['zone-1']), b('b', ['zone-2'])], want: ['a'] },
    { name: 'no endpoint for the zone: all', bs: [b('a', ['zone-2']), b('b', ['zone-2'])], want: ['a', 'b'] },
    { name: 'an endpoint without hints: all', bs: [b('a', ['zone-1']), b('b')], want: ['a', 'b'] },
    { name: 'node hints first', bs: [b('a', ['zone-1'], ['node-2']), b('b', ['zone-1'], ['node-1'])], want: ['b'] },
    { name: 'node hints for other nodes: the zone\'s', bs: [b('a', ['zone-1'], ['node-2']), b('b', ['zone-2'], ['node-3'])], want: ['a'] },
  ];
  for (const c of cases) assert.deepEqual(hintedBackends(c.bs, n1).map((x) => x.ip), c.want, c.name);
  assert.deepEqual(hintedBackends([b('a', ['zone-1']), b('b', ['zone-2'])], { name: 'node-9', ips: [] }).map((x) => x.ip), ['a', 'b'], 'a node without a zone: all');

  // The ClusterIP moves to each node switch and router, with that node's endpoints; nothing stays in the cluster row.
  const s = svc({ clusterIPs: ['10.96.0.20'], trafficDistribution: 'PreferSameZone', ports: [{ port: 80 }] });
  const sl = slice([{ ip: '10.244.1.5', node: 'node-1' }, { ip: '10.244.2.5', node: 'node-2' }], [{ port: 80 }]);
  sl.endpoints![0]!.hints = { forZones: [{ name: 'zone-1' }] };
  sl.endpoints![1]!.hints = { forZones: [{ name: 'zone-2' }] };
  const rows = rowsOf(s, [sl], [{ name: 'node-1', ips: ['172.29.0.11'], zone: 'zone-1' }, { name: 'node-2', ips: ['172.29.0.12'], zone: 'zone-2' }]);
  assert.deepEqual(rows.map((r) => [r.name, cols(r).vips]), [
    ['Service_default/web_TCP_node_router_node-1', { '10.96.0.20:80': '10.244.1.5:80' }],
    ['Service_default/web_TCP_node_switch_node-1', { '10.96.0.20:80': '10.244.1.5:80' }],
    ['Service_default/web_TCP_node_router_node-2', { '10.96.0.20:80': '10.244.2.5:80' }],
    ['Service_default/web_TCP_node_switch_node-2', { '10.96.0.20:80': '10.244.2.5:80' }],
  ]);
});


test('unreachable endpoints: special addresses, kovn\'s own networks, a cluster address no node holds; host networks and node subnets are reachable', () => {
  const cases: { ip: string; node?: string; want: RegExp | undefined }[] = [
    { ip: '10.244.1.5', node: 'node-1', want: undefined },
    { ip: '10.244.2.5', want: undefined }, // no nodeName: any node's subnet
    { ip: 'fd00:10:244:1::5', node: 'node-1', want: undefined },
    { ip: '172.29.0.11', node: 'node-1', want: undefined }, // a host-network endpoint: routed
    { ip: '192.0.2.7', want: undefined }, // a selectorless Service's outside address: routed
    { ip: '10.244.1.9', node: 'node-3', want: undefined }, // a node NB does not know: any node's subnet will do
    { ip: '10.244.9.5', node: 'node-3', want: /no node's pod subnet/ },
    { ip: '127.0.0.1', want: /loopback/ },
    { ip: '::1', want: /loopback/ },
    { ip: '169.254.169.2', want: /link-local/ },
    { ip: 'fe80::1', want: /link-local/ },
    { ip: '224.0.0.5', want: /multicast/ },
    { ip: 'ff02::1', want: /multicast/ },
    { ip: '0.0.0.0', want: /unspecified/ },
    { ip: '255.255.255.255', want: /reserved/ },
    { ip: '10.96.0.10', want: /service network/ },
    { ip: '100.64.0.2', want: /join subnet/ },
    { ip: '10.244.2.5', node: 'node-1', want: /node node-1's pod subnets/ },
    { ip: '10.244.200.5', want: /no node's pod subnet/ },
    { ip: 'fd00:10:244:9::5', want: /no node's pod subnet/ },
    { ip: 'not-an-ip', want: /not an IP/ },
  ];
  for (const c of cases) {
    const got = unreachable(c.ip, c.node, reach);
    if (c.want) assert.match(got ?? '', c.want, c.ip);
    else assert.equal(got, undefined, c.ip);
  }
});

test('endpoints no node can reach are left out of every VIP, named in one problem; the others are programmed', () => {
  const s = svc({ clusterIPs: ['10.96.0.20'], ports: [{ name: 'a', port: 80 }, { name: 'b', port: 81 }] }, 'web');
  const sl = [slice([{ ip: '10.244.1.5', node: 'node-1' }, { ip: '127.0.0.1' }], [{ name: 'a', port: 8080 }, { name: 'b', port: 8081 }])];
  const r = serviceLoadBalancers(s, sl, nodes, reach);
  assert.deepEqual(cols(r.rows[0]!).vips, { '10.96.0.20:80': '10.244.1.5:8080', '10.96.0.20:81': '10.244.1.5:8081' });
  assert.deepEqual(r.problems.map((p) => p.reason), ['UnreachableEndpoint']);
  assert.equal(r.problems[0]!.message, 'no node can reach endpoint 127.0.0.1 (a loopback address): left out of the load balancer');
  // Every endpoint unreachable: the VIP rejects, and it is not a missing named port.
  const named = svc({ clusterIPs: ['10.96.0.20'], ports: [{ name: 'a', port: 80, targetPort: 'http' }] });
  const only = serviceLoadBalancers(named, [slice([{ ip: '10.244.200.5' }, { ip: '10.96.0.10' }], [{ name: 'a', port: 8080 }])], nodes, reach);
  assert.deepEqual(cols(only.rows[0]!).vips, { '10.96.0.20:80': '' });
  assert.deepEqual(only.problems.map((p) => p.reason), ['UnreachableEndpoint']);
  assert.match(only.problems[0]!.message, /^no node can reach endpoints 10\.244\.200\.5 \(.*no node's pod subnet\), 10\.96\.0\.10 \(.*service network\)/);
});
