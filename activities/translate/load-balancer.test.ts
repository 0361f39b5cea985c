// kovn's LoadBalancer allocator, by tables: which Services it serves, the addresses it picks (kept,
// asked for, first free, per family, exhausted) and the node that announces them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { announcer, announcingCandidates, ownLoadBalancer, pickAddresses } from './load-balancer.ts';

const svc = (spec: V1Service['spec'], ingress: string[] = []): V1Service => ({
  metadata: { namespace: 'default', name: 'lb' }, spec: { type: 'LoadBalancer', clusterIPs: ['10.96.0.20'], ...spec },
  status: { loadBalancer: { ingress: ingress.map((ip) => ({ ip })) } },
});

test('served: LoadBalancer with no class or kovn\'s own; never another class or another type', () => {
  const cases: [V1Service['spec'], boolean][] = [
    [{}, true], [{ loadBalancerClass: 'kovn.local/load-balancer' }, true], [{ loadBalancerClass: 'metallb.io/metallb' }, false],
    [{ type: 'NodePort' }, false], [{ type: 'ClusterIP' }, false],
  ];
  for (const [spec, want] of cases) assert.equal(ownLoadBalancer(svc(spec)), want, JSON.stringify(spec));
});

test('picking addresses: kept, asked for, the first free one (never the pool\'s network or broadcast), per family; exhausted says why', () => {
  const pools = ['172.29.0.240/30', 'fd00:172:29::f0/126'];
  const cases: { name: string; s: V1Service; used?: string[]; want: unknown }[] = [
    { name: 'first free skips the network address', s: svc({}), want: { ips: ['172.29.0.241'] } },
    { name: 'used ones are skipped', s: svc({}), used: ['172.29.0.241'], want: { ips: ['172.29.0.242'] } },
    { name: 'a pool of two usable addresses, both used', s: svc({}), used: ['172.29.0.241', '172.29.0.242'], want: { exhausted: 'no free address in the IPv4 pool 172.29.0.240/30' } },
    { name: 'the one it has is kept', s: svc({}, ['172.29.0.242']), want: { ips: ['172.29.0.242'] } },
    { name: 'one it has outside the pool is replaced', s: svc({}, ['10.0.0.1']), want: { ips: ['172.29.0.241'] } },
    { name: 'the one asked for', s: svc({ loadBalancerIP: '172.29.0.242' }), want: { ips: ['172.29.0.242'] } },
    { name: 'the one asked for, taken', s: svc({ loadBalancerIP: '172.29.0.242' }), used: ['172.29.0.242'], want: { exhausted: 'spec.loadBalancerIP 172.29.0.242 is not a free address of the pool 172.29.0.240/30, fd00:172:29::f0/126' } },
    { name: 'dual-stack: one per family (IPv6 pools have no broadcast)', s: svc({ clusterIPs: ['10.96.0.20', 'fd00:10:96::20'] }), used: ['fd00:172:29::f0'], want: { ips: ['172.29.0.241', 'fd00:172:29::f1'] } },
    { name: 'a family with no pool gets nothing', s: svc({ clusterIPs: ['fd00:10:96::20'] }), want: { ips: ['fd00:172:29::f0'] } },
  ];
  for (const c of cases) assert.deepEqual(pickAddresses(c.s, c.name.includes('no pool') ? [pools[1]!] : pools, new Set(c.used ?? [])), c.want, c.name);
  assert.deepEqual(pickAddresses(svc({ clusterIPs: ['fd00:10:96::20'] }), ['172.29.0.240/28'], new Set()), { ips: [] }, 'no IPv6 pool');
});

test('the announcing node: one of the nodes, the same for the same inputs, moved only when it goes', () => {
  const nodes = ['node-1', 'node-2', 'node-3'];
  const a = announcer('172.29.0.241', nodes);
  assert.ok(a && nodes.includes(a));
  assert.equal(announcer('172.29.0.241', [...nodes].reverse()), a, 'order does not matter');
  const others = nodes.filter((n) => n !== a);
  const b = announcer('172.29.0.241', others);
  assert.ok(b && others.includes(b), 'another node when it goes');
  // Removing a node that does not announce it changes nothing.
  assert.equal(announcer('172.29.0.241', nodes.filter((n) => n !== b)), a);
  assert.equal(announcer('172.29.0.241', []), undefined);
  // Addresses spread over the nodes.
  const spread = new Set(Array.from({ length: 20 }, (_, i) => announcer(`172.29.0.${i}`, nodes)));
  assert.ok(spread.size > 1, `20 addresses over ${spread.size} node(s)`);
});

test('announcing candidates: every node; with ETP=Local those with a ready endpoint, unless none has one', () => {
  const nodes = ['node-1', 'node-2', 'node-3'];
  const sl = (eps: { node: string; ready?: boolean }[]): V1EndpointSlice => ({ addressType: 'IPv4', endpoints: eps.map((e, i) => ({ addresses: [`10.244.0.${i}`], nodeName: e.node, conditions: { ready: e.ready ?? true } })) });
  const slices = [sl([{ node: 'node-2' }, { node: 'node-3', ready: false }])];
  assert.deepEqual(announcingCandidates(svc({}), nodes, slices), nodes);
  assert.deepEqual(announcingCandidates(svc({ externalTrafficPolicy: 'Local' }), nodes, slices), ['node-2']);
  assert.deepEqual(announcingCandidates(svc({ externalTrafficPolicy: 'Local' }), nodes, []), nodes);
});
