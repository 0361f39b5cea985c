import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Ipam } from './ipam.ts';

const dir = mkdtempSync(join(tmpdir(), 'kovn-ipam-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = (): string => join(dir, `ipam-${n++}.json`);

test('one address per family, idempotent per pod UID, skipping network, gateway and management addresses', () => {
  const ipam = Ipam.open(file(), ['10.244.1.0/24', 'fd00:10:244:1::/64']);
  const a = ipam.allocate('uid-a', 'default/a');
  assert.deepEqual(a.ips, ['10.244.1.3/24', 'fd00:10:244:1::3/64']);
  assert.deepEqual(ipam.allocate('uid-a', 'default/a').ips, a.ips);
  assert.deepEqual(ipam.allocate('uid-b', 'default/b').ips, ['10.244.1.4/24', 'fd00:10:244:1::4/64']);
});

test('allocations survive a restart (a new Ipam on the same file)', () => {
  const f = file();
  const first = Ipam.open(f, ['10.244.2.0/24']);
  const a = first.allocate('uid-a', 'ns/a');
  const again = Ipam.open(f, ['10.244.2.0/24']);
  assert.deepEqual(again.get('uid-a')?.ips, a.ips);
  assert.notDeepEqual(again.allocate('uid-b', 'ns/b').ips, a.ips);
});

test('never two pods with one address; a released address comes back only after the pool wraps', () => {
  const ipam = Ipam.open(file(), ['10.244.3.0/29']); // offsets 3..6 usable: 4 addresses
  const got = ['a', 'b', 'c', 'd'].map((u) => ipam.allocate(u, `ns/${u}`).ips[0]);
  assert.equal(new Set(got).size, 4);
  assert.throws(() => ipam.allocate('e', 'ns/e'), /no free address left in 10\.244\.3\.0\/29/);
  assert.equal(ipam.release('b'), true);
  assert.equal(ipam.release('b'), false);
  assert.equal(ipam.allocate('e', 'ns/e').ips[0], got[1]);
  const fresh = Ipam.open(file(), ['10.244.4.0/24']);
  const x = fresh.allocate('x', 'ns/x').ips[0];
  fresh.release('x');
  assert.notEqual(fresh.allocate('y', 'ns/y').ips[0], x, 'next-fit: not reused at once');
});

test('a changed node subnet drops allocations outside it; a corrupt store is a clear error', () => {
  const f = file();
  Ipam.open(f, ['10.244.5.0/24']).allocate('a', 'ns/a');
  assert.equal(Ipam.open(f, ['10.244.6.0/24']).get('a'), undefined);
  const bad = file();
  writeFileSync(bad, '{"subnets":"nope"}');
  assert.throws(() => Ipam.open(bad, ['10.244.7.0/24']), /IPAM store .* is corrupt/);
});

test('load keeps the persisted subnets and allocations (a release after a restart never re-keys the store)', () => {
  const f = file();
  const a = Ipam.open(f, ['10.244.8.0/24']).allocate('a', 'ns/a');
  assert.equal(Ipam.load(join(dir, 'none.json')), undefined);
  const loaded = Ipam.load(f);
  assert.deepEqual(loaded?.subnets, ['10.244.8.0/24']);
  assert.equal(loaded?.release('nope'), false);
  assert.deepEqual(Ipam.load(f)?.get('a')?.ips, a.ips, 'other allocations survive');
});

test('stale lists old allocations of pods that are gone, and not fresh or live ones', async () => {
  const ipam = Ipam.open(file(), ['10.244.9.0/24']);
  ipam.allocate('live', 'ns/live');
  ipam.allocate('gone', 'ns/gone');
  assert.deepEqual(ipam.stale(new Set(['live']), 60_000), [], 'too fresh to sweep');
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(ipam.stale(new Set(['live']), 10).map((a) => a.uid), ['gone']);
  assert.ok(ipam.get('gone'), 'listing releases nothing');
});

test('an allocation whose port is gone is stale at any age, survives a restart so marked, and a hold unmarks it', () => {
  const f = file();
  const ipam = Ipam.open(f, ['10.244.10.0/24']);
  const a = ipam.allocate('gone', 'ns/gone');
  ipam.allocate('other', 'ns/other');
  assert.deepEqual(ipam.stale(new Set(), 60_000), []);
  ipam.setPortGone('gone', true);
  ipam.setPortGone('nope', true);
  const again = Ipam.load(f);
  assert.equal(again?.portGone('gone'), true);
  assert.deepEqual(again?.stale(new Set(), 60_000).map((x) => x.uid), ['gone']);
  assert.deepEqual(again?.stale(new Set(['gone']), 60_000), [], 'not while its pod is live');
  assert.equal(again?.hold(a), true);
  assert.equal(again?.portGone('gone'), false, 'published again');
  assert.equal(Ipam.load(f)?.portGone('gone'), false);
});
