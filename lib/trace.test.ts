// ovn-trace's output (recorded from the box: a pod to another node's pod under a namespace's default
// deny) read back: the ACL stages passed, with their datapath and logical flow, and the drop.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { microflow, parseTrace } from './trace.ts';

const DENIED = String.raw`ingress(dp="node-2", inport="np-a_c1")
--------------------------------------
 0. ls_in_check_port_sec (northd.c:8432): 1, priority 50, uuid 37baddea
    reg0[15] = check_in_port_sec();
    next;
 4. ls_in_pre_acl (northd.c:5922): ip, priority 100, uuid aac3f2c5
    reg0[0] = 1;
    next;
 5. ls_in_pre_lb (northd.c:6109): ip, priority 100, uuid b27c4dfd
    reg0[2] = 1;
    next;
 6. ls_in_pre_stateful (northd.c:6132): reg0[2] == 1, priority 110, uuid 203252e5
    ct_lb_mark;

ct_lb_mark
----------
 7. ls_in_acl_hint (northd.c:6190): ct.new && !ct.est, priority 7, uuid 62914166
    reg0[7] = 1;
    reg0[9] = 1;
    next;
 8. ls_in_acl (northd.c:6809): ip && !ct.est, priority 1, uuid fc727949
    reg0[1] = 1;
    next;
14. ls_in_pre_hairpin (northd.c:7633): ip && ct.trk, priority 100, uuid 47ab3472
    reg0[6] = chk_lb_hairpin();
    reg0[12] = chk_lb_hairpin_reply();
    next;
18. ls_in_stateful (northd.c:7607): reg0[1] == 1 && reg0[13] == 0, priority 100, uuid e9b5bc01
egress(dp="node-1", inport="stor-node-1", outport="np-a_s1")
------------------------------------------------------------
 0. ls_out_pre_acl (northd.c:5924): ip, priority 100, uuid 8d3d4a2e
    reg0[0] = 1;
    next;
 1. ls_out_pre_lb (northd.c:6111): ip, priority 100, uuid 9829b0ba
    reg0[2] = 1;
    next;
 2. ls_out_pre_stateful (northd.c:6135): reg0[2] == 1, priority 110, uuid b8b1ab08
    ct_lb_mark;

ct_lb_mark
----------
 3. ls_out_acl_hint (northd.c:6190): ct.new && !ct.est, priority 7, uuid d0108e63
    reg0[7] = 1;
    reg0[9] = 1;
    next;
 4. ls_out_acl (northd.c:6543): reg0[9] == 1 && (outport == @a11907705531641437256), priority 2000, uuid 35276d88
    drop;`;

test('the ACL stages a trace passed and the one that dropped it', () => {
  const t = parseTrace(DENIED);
  assert.deepEqual(t.acls.map((a) => [a.datapath, a.stage, a.priority, a.lflow, a.drop]), [
    ['node-2', 'ls_in_acl', 1, 'fc727949', false],
    ['node-1', 'ls_out_acl', 2000, '35276d88', true],
  ]);
  assert.equal(t.acls[1]?.match, 'reg0[9] == 1 && (outport == @a11907705531641437256)');
  assert.deepEqual(t.dropped, { stage: 'ls_out_acl', datapath: 'node-1' });
  // A logged drop prints only its log action.
  const logged = parseTrace(DENIED.replace('    drop;', '    log(name="NP:np-a:Ingress:deny", verdict=drop, severity=alert, meter="acl-logging");'));
  assert.deepEqual(logged.dropped, { stage: 'ls_out_acl', datapath: 'node-1' });
  assert.equal(logged.acls[1]?.drop, true);
  // A stage no flow matches drops the packet there.
  assert.deepEqual(parseTrace(DENIED.replace('    drop;', '    next;').replace(/ 3\. ls_out_acl_hint[^]*$/, ' 3. ls_out_acl_hint: no match (implicit drop)')).dropped?.stage, 'ls_out_acl_hint');
  const allowed = parseTrace(DENIED.replace('    drop;', '    next;'));
  assert.equal(allowed.dropped, undefined);
  assert.equal(allowed.acls.some((a) => a.drop), false);
});

test('the microflow: per family and protocol', () => {
  const base = { inport: 'x_a', ethSrc: '0a:58:0a:f4:01:04', ethDst: '0a:58:0a:f4:01:01', port: 80 };
  assert.equal(microflow({ ...base, src: '10.244.1.4', dst: '10.244.0.4', protocol: 'tcp' }),
    'inport == "x_a" && eth.src == 0a:58:0a:f4:01:04 && eth.dst == 0a:58:0a:f4:01:01 && ip4.src == 10.244.1.4 && ip4.dst == 10.244.0.4 && ip.ttl == 64 && tcp && tcp.src == 40000 && tcp.dst == 80');
  assert.match(microflow({ ...base, src: 'fd00::4', dst: 'fd00::5', protocol: 'icmp' }), /ip6\.src == fd00::4 && ip6\.dst == fd00::5 && ip\.ttl == 64 && icmp6 && icmp6\.type == 128/);
  assert.match(microflow({ ...base, src: '10.0.0.1', dst: '10.0.0.2', protocol: 'udp', port: 53 }), /udp && udp\.src == 40000 && udp\.dst == 53$/);
});
