import assert from 'node:assert/strict';
import { test } from 'node:test';
import { contains, formatCidr, formatIp, normaliseCidr, nthAddress, nthSubnet, offsetOf, overlaps, parseCidr, parseIp, subtract } from './cidr.ts';

test('IPv4 and IPv6 addresses round-trip in canonical form', () => {
  const table: [string, string][] = [
    ['10.244.1.5', '10.244.1.5'],
    ['0.0.0.0', '0.0.0.0'],
    ['fd00:10:244:1::5', 'fd00:10:244:1::5'],
    ['fd00:0:0:0:0:0:0:1', 'fd00::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['FD00:10:244:0001:0000:0000:0000:0002', 'fd00:10:244:1::2'],
  ];
  for (const [input, want] of table) {
    const { family, value } = parseIp(input);
    assert.equal(formatIp(family, value), want, input);
  }
});

test('bad addresses and CIDRs are rejected with the input named', () => {
  for (const bad of ['10.244.1', '10.244.1.256', 'fd00::1::2', 'fd00:xyz::1', '1.2.3.4.5']) {
    assert.throws(() => parseIp(bad), new RegExp(bad.replaceAll('.', '\\.')));
  }
  for (const bad of ['10.244.0.0', '10.244.0.1/16', '10.244.0.0/33', 'fd00::/129', '10.0.0.0/8/1']) {
    assert.throws(() => parseCidr(bad), /invalid CIDR/);
  }
});

test('subnets are cut from the cluster CIDR by index', () => {
  const v4 = parseCidr('10.244.0.0/16');
  assert.equal(formatCidr(nthSubnet(v4, 24, 0n)), '10.244.0.0/24');
  assert.equal(formatCidr(nthSubnet(v4, 24, 3n)), '10.244.3.0/24');
  assert.throws(() => nthSubnet(v4, 24, 256n), /outside/);
  const v6 = parseCidr('fd00:10:244::/48');
  assert.equal(formatCidr(nthSubnet(v6, 64, 1n)), 'fd00:10:244:1::/64');
});

test('addresses, offsets, containment and overlap', () => {
  const s = parseCidr('10.244.3.0/24');
  assert.equal(nthAddress(s, 1n), '10.244.3.1');
  assert.equal(offsetOf(s, '10.244.3.17'), 17n);
  assert.equal(contains(s, '10.244.4.1'), false);
  assert.equal(contains(s, 'fd00::1'), false);
  assert.throws(() => nthAddress(s, 256n), /outside/);
  assert.equal(overlaps(parseCidr('10.244.0.0/16'), s), true);
  assert.equal(overlaps(parseCidr('10.245.0.0/16'), s), false);
  const v6 = parseCidr('fd00:10:244:3::/64');
  assert.equal(nthAddress(v6, 2n), 'fd00:10:244:3::2');
});

test('a block minus its excepts is the fewest positive prefixes; normalising clears host bits', () => {
  const table: [string, string[], string[]][] = [
    ['10.0.0.0/8', ['10.0.0.0/9'], ['10.128.0.0/9']],
    ['10.0.0.0/24', ['10.0.0.128/25', '10.0.0.0/26'], ['10.0.0.64/26']],
    ['10.0.0.0/30', ['10.0.0.1/32'], ['10.0.0.0/32', '10.0.0.2/31']],
    ['10.0.0.0/24', ['10.0.0.0/16'], []],
    ['10.0.0.0/24', ['192.168.0.0/16', 'fd00::/8'], ['10.0.0.0/24']],
    ['fd00::/64', ['fd00::/65'], ['fd00::8000:0:0:0/65']],
  ];
  for (const [block, holes, want] of table) {
    assert.deepEqual(subtract(parseCidr(block), holes.map(parseCidr)).map(formatCidr), want, `${block} - ${holes.join(',')}`);
  }
  assert.deepEqual(normaliseCidr('10.1.2.3/8'), { cidr: parseCidr('10.0.0.0/8'), hostBits: true });
  assert.deepEqual(normaliseCidr('fd00::1/64'), { cidr: parseCidr('fd00::/64'), hostBits: true });
  assert.equal(normaliseCidr('10.0.0.0/8').hostBits, false);
  assert.throws(() => normaliseCidr('10.0.0.0/33'), /prefix longer/);
});
