// A cache that missed an update heals itself: an update naming a row the cache does not have (a
// modify or a delete) makes the client re-request the monitor's full snapshot on the same connection.
// Real ovsdb-server behind a relay that injects the lost (or bogus) update, for each monitor method.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { filter, firstValueFrom } from 'rxjs';
import { OvsdbClient } from './client.ts';
import type { MonitorMethod } from './monitor.ts';
import { ovnNorthboundModel } from './models/ovn-nb.ts';
import type { OvnNorthboundTables } from './models/ovn-nb.ts';
import { opsFor } from './ops.ts';
import { FaultyProxy } from './testing/faulty-proxy.ts';
import { Sandbox } from './testing/ovsdb-server.ts';
import type { OvsdbServer } from './testing/ovsdb-server.ts';
import { cacheTables, dumpTables } from './testing/compare.ts';
import { until } from './testing/until.ts';

type NB = OvnNorthboundTables;
const nb = opsFor<NB>();

describe('resync of an out-of-sync cache', { timeout: 90_000 }, () => {
  const sandbox = new Sandbox();
  let srv: OvsdbServer;
  let proxy: FaultyProxy;
  let other: OvsdbClient<NB>;
  const clients: OvsdbClient<NB>[] = [];

  before(async () => {
    srv = await sandbox.standalone();
    proxy = new FaultyProxy(path.join(sandbox.dir, 'proxy.sock'), srv.sock);
    await proxy.start();
    other = await OvsdbClient.connect<NB>({ endpoints: [srv.unixEndpoint], database: 'OVN_Northbound', model: ovnNorthboundModel });
    clients.push(other);
  });
  after(async () => {
    for (const c of clients) c.close();
    await proxy.close();
    await sandbox.cleanup();
  });

  const methods: MonitorMethod[] = ['monitor_cond_since', 'monitor_cond', 'monitor'];
  for (const method of methods) {
    test(`${method}: a lost delete, then a modify of that row, restores the row by a resync`, async () => {
      const c = await OvsdbClient.connect<NB>({ endpoints: [proxy.endpoint], database: 'OVN_Northbound', model: ovnNorthboundModel, monitorMethod: method });
      clients.push(c);
      const h = await c.monitor({ Logical_Switch: { columnIndexes: ['name'] } });
      const name = `kept-${method}`;
      const [ins] = await other.transact([nb.insert('Logical_Switch', { name })]);
      const uuid = ins!.uuid!;
      const sws = c.cache.table('Logical_Switch');
      await until('the switch cached', () => sws.get(uuid) !== undefined);

      // The cache loses the row as if an update had gone astray (the server never deleted it).
      const gone = method === 'monitor' ? { old: { name } } : { delete: null };
      const verb = method === 'monitor' ? 'update' : 'update2';
      proxy.inject(JSON.stringify({ id: null, method: verb, params: [h.id, { Logical_Switch: { [uuid]: gone } }] }));
      await until('the row dropped from the cache', () => sws.get(uuid) === undefined);
      assert.equal(h.resyncs, 0, 'a delete of a cached row is in sync');

      // The server modifies the row the cache no longer has: the modify cannot be applied.
      const warned = firstValueFrom(c.warnings$.pipe(filter((e) => /out of sync/.test(e.message))));
      await other.transact([nb.update('Logical_Switch', [['_uuid', '==', uuid]], { other_config: { seen: 'yes' } })]);
      assert.match((await warned).message, new RegExp(`(modify|delete) of Logical_Switch ${uuid}`));
      await until('the row restored', () => sws.get(uuid)?.other_config.seen === 'yes');
      assert.equal(h.resyncs, 1);
      assert.equal(c.connects, 1, 'resynced on the same connection');
      assert.deepEqual(sws.byColumn('name', name).map((r) => r._uuid), [uuid], 'indexes rebuilt');
      assert.deepEqual(cacheTables(c, ['Logical_Switch']), await dumpTables(srv, c, ['Logical_Switch']));

      // Updates after the resync apply as usual.
      await other.transact([nb.insert('Logical_Switch', { name: `after-${method}` })]);
      await until('a later insert cached', () => sws.byColumn('name', `after-${method}`).length === 1);
      assert.deepEqual(cacheTables(c, ['Logical_Switch']), await dumpTables(srv, c, ['Logical_Switch']));
      c.close();
    });
  }

  test('a delete of an unknown row resyncs too, and bogus rows it brought are dropped', async () => {
    const c = await OvsdbClient.connect<NB>({ endpoints: [proxy.endpoint], database: 'OVN_Northbound', model: ovnNorthboundModel, monitorMethod: 'monitor' });
    clients.push(c);
    const h = await c.monitor({ Logical_Switch: {} });
    const bogus = '5f0b7c3e-0000-4000-8000-000000000001';
    // A v1 modify of an unknown row carries its new state: it lands in the cache until the resync.
    proxy.inject(JSON.stringify({ id: null, method: 'update', params: [h.id, { Logical_Switch: { [bogus]: { old: { name: 'x' }, new: { name: 'ghost' } } } }] }));
    await until('a resync', () => h.resyncs === 1);
    await until('the bogus row dropped', () => c.cache.table('Logical_Switch').get(bogus) === undefined);
    proxy.inject(JSON.stringify({ id: null, method: 'update', params: [h.id, { Logical_Switch: { [bogus]: { old: { name: 'ghost' } } } }] }));
    await until('a second resync', () => h.resyncs === 2);
    await until('the cache equal to the server', async () =>
      isDeepStrictEqual(cacheTables(c, ['Logical_Switch']), await dumpTables(srv, c, ['Logical_Switch'])));
    assert.equal(c.cache.table('Logical_Switch').get(bogus), undefined);
    c.close();
  });

  test('without initial rows a monitor cannot tell a lost update: no resync', async () => {
    const [ins] = await other.transact([nb.insert('Logical_Switch', { name: 'before-no-initial' })]);
    const c = await OvsdbClient.connect<NB>({ endpoints: [proxy.endpoint], database: 'OVN_Northbound', model: ovnNorthboundModel });
    clients.push(c);
    const h = await c.monitor({ Logical_Switch: { select: { initial: false } } });
    await other.transact([nb.update('Logical_Switch', [['_uuid', '==', ins!.uuid!]], { other_config: { x: '1' } })]);
    await c.echo('barrier');
    assert.equal(h.resyncs, 0);
    assert.equal(c.cache.table('Logical_Switch').get(ins!.uuid!), undefined, 'the modify of an uncached row is not applied');
    c.close();
  });
});
