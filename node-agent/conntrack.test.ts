// Conntrack entries of stale UDP/SCTP flows, by tables: the datapath's dump parsed, the entries of a
// backend that left picked (and nothing else), and the flush that removes exactly one entry.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { flushArgs, parseConntrack, staleEntries } from './conntrack.ts';

const DUMP = [
  'udp,orig=(src=10.244.1.5,dst=10.96.0.10,sport=41234,dport=53),reply=(src=10.244.2.6,dst=10.244.1.5,sport=53,dport=41234),zone=7',
  'udp,orig=(src=10.244.1.5,dst=10.96.0.10,sport=41235,dport=53),reply=(src=10.244.2.9,dst=10.244.1.5,sport=53,dport=41235),zone=7',
  'udp,orig=(src=10.244.1.5,dst=10.244.2.6,sport=41234,dport=53),reply=(src=10.244.2.6,dst=10.244.1.5,sport=53,dport=41234),zone=12',
  'tcp,orig=(src=10.244.1.5,dst=10.96.0.10,sport=40000,dport=53),reply=(src=10.244.2.6,dst=10.244.1.5,sport=53,dport=40000),zone=7,protoinfo=(state=ESTABLISHED)',
  'udp,orig=(src=fd00:10:244:1::5,dst=fd00:10:96::a,sport=5000,dport=53),reply=(src=fd00:10:244:2::6,dst=fd00:10:244:1::5,sport=53,dport=5000),mark=2',
  'icmp,orig=(src=10.244.1.5,dst=10.244.2.6,id=1,type=8,code=0),reply=(src=10.244.2.6,dst=10.244.1.5,id=1,type=0,code=0),zone=7',
  '',
].join('\n');

test('the dump: ported entries with their zone (0 when the datapath leaves it out); ICMP and blank lines skipped', () => {
  const e = parseConntrack(DUMP);
  assert.equal(e.length, 5);
  assert.deepEqual(e[0], {
    protocol: 'udp', zone: 7,
    orig: { src: '10.244.1.5', dst: '10.96.0.10', sport: 41234, dport: 53 },
    reply: { src: '10.244.2.6', dst: '10.244.1.5', sport: 53, dport: 41234 },
  });
  assert.equal(e[3]?.protocol, 'tcp');
  assert.equal(e[4]?.zone, 0);
  assert.equal(e[4]?.orig.dst, 'fd00:10:96::a');
});

test('stale entries: to the VIP and port, answered by the backend that left; never the direct flow, TCP or another backend', () => {
  const entries = parseConntrack(DUMP);
  const cases = [
    { flow: { protocol: 'udp' as const, vip: '10.96.0.10', port: 53, backend: '10.244.2.6', backendPort: 53 }, want: [41234] },
    { flow: { protocol: 'udp' as const, vip: '10.96.0.10', port: 53, backend: '10.244.2.6', backendPort: 5353 }, want: [] },
    { flow: { protocol: 'sctp' as const, vip: '10.96.0.10', port: 53, backend: '10.244.2.6', backendPort: 53 }, want: [] },
    { flow: { protocol: 'udp' as const, vip: 'fd00:10:96::a', port: 53, backend: 'fd00:10:244:2::6', backendPort: 53 }, want: [5000] },
  ];
  for (const c of cases) assert.deepEqual(staleEntries(entries, [c.flow]).map((e) => e.orig.sport), c.want, JSON.stringify(c.flow));
});

test('a flush names the entry\'s zone and its original (pre-NAT) tuple, per family', () => {
  const [v4, , , , v6] = parseConntrack(DUMP);
  assert.deepEqual(flushArgs(v4!), ['dpctl/flush-conntrack', 'zone=7', 'ct_nw_src=10.244.1.5,ct_nw_dst=10.96.0.10,ct_nw_proto=17,ct_tp_src=41234,ct_tp_dst=53']);
  assert.deepEqual(flushArgs(v6!), ['dpctl/flush-conntrack', 'zone=0', 'ct_ipv6_src=fd00:10:244:1::5,ct_ipv6_dst=fd00:10:96::a,ct_nw_proto=17,ct_tp_src=5000,ct_tp_dst=53']);
});
