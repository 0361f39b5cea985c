// Column indexes of the cache (lookups by a non-unique column, and reverse references through a set of
// uuids) against a real Northbound ovsdb-server: they follow inserts, modifies, renames and deletes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { OvsdbClient } from './client.ts';
import { ovnNorthboundModel } from './models/ovn-nb.ts';
import type { LogicalSwitch, OvnNorthboundTables } from './models/ovn-nb.ts';
import { opsFor } from './ops.ts';
import { Sandbox } from './testing/ovsdb-server.ts';
import type { OvsdbServer } from './testing/ovsdb-server.ts';

type NB = OvnNorthboundTables;
const nb = opsFor<NB>();

describe('column indexes', { timeout: 60_000 }, () => {
  const sandbox = new Sandbox();
  let srv: OvsdbServer;
  let c: OvsdbClient<NB>;

  before(async () => {
    srv = await sandbox.standalone();
    c = await OvsdbClient.connect<NB>({ endpoints: [srv.unixEndpoint], database: 'OVN_Northbound', model: ovnNorthboundModel });
    await c.monitor({ Logical_Switch: { columns: ['name', 'ports', 'other_config'], columnIndexes: ['name', 'ports'] }, Logical_Switch_Port: {} });
  });
  after(async () => {
    c.close();
    await sandbox.cleanup();
  });

  const names = (rows: LogicalSwitch[]): string[] => rows.map((r) => r.name).sort();
  /** Every value's index answer equals a scan of the table. */
  const consistent = (): void => {
    const t = c.cache.table('Logical_Switch');
    for (const r of t.all()) {
      assert.deepEqual(names(t.byColumn('name', r.name)), names(t.find((s) => s.name === r.name)), `name ${r.name}`);
      for (const p of r.ports) assert.deepEqual(names(t.byColumn('ports', p)), names(t.find((s) => s.ports.includes(p))), `port ${p}`);
    }
  };

  test('byColumn answers by a scalar value and by an element of a reference set, through changes', async () => {
    const [p1, p2, p3] = await c.transact([
      nb.insert('Logical_Switch_Port', { name: 'p1' }, 'p1'),
      nb.insert('Logical_Switch_Port', { name: 'p2' }, 'p2'),
      nb.insert('Logical_Switch_Port', { name: 'p3' }, 'p3'),
      nb.insert('Logical_Switch', { name: 'a', ports: ['p1', 'p2'] }),
      nb.insert('Logical_Switch', { name: 'b', ports: ['p3'] }),
      nb.insert('Logical_Switch', { name: 'a' }), // switch names are not unique in the NB schema
    ]);
    const t = c.cache.table('Logical_Switch');
    assert.equal(t.byColumn('name', 'a').length, 2);
    assert.deepEqual(names(t.byColumn('ports', p1!.uuid!)), ['a']);
    assert.deepEqual(names(t.byColumn('ports', p3!.uuid!)), ['b']);
    consistent();

    // p2 moves from a to b; b is renamed c; only other_config of a changes (its ports stay indexed).
    const a = t.byColumn('ports', p1!.uuid!)[0]!;
    const b = t.byColumn('name', 'b')[0]!;
    await c.transact([
      nb.mutate('Logical_Switch', [['_uuid', '==', a._uuid]], [['ports', 'delete', [p2!.uuid!]]]),
      nb.mutate('Logical_Switch', [['_uuid', '==', b._uuid]], [['ports', 'insert', [p2!.uuid!]]]),
      nb.update('Logical_Switch', [['_uuid', '==', b._uuid]], { name: 'c' }),
    ]);
    await c.transact([nb.update('Logical_Switch', [['_uuid', '==', a._uuid]], { other_config: { k: 'v' } })]);
    assert.deepEqual(names(t.byColumn('ports', p2!.uuid!)), ['c']);
    assert.deepEqual(names(t.byColumn('ports', p1!.uuid!)), ['a']);
    assert.deepEqual(t.byColumn('name', 'b'), []);
    assert.deepEqual(t.byColumn('name', 'c').map((r) => r._uuid), [b._uuid]);
    consistent();

    await c.transact([nb.delete('Logical_Switch', [['_uuid', '==', a._uuid]])]);
    assert.deepEqual(t.byColumn('ports', p1!.uuid!), []);
    assert.equal(t.byColumn('name', 'a').length, 1);
    consistent();
  });

  test('an index on an unmonitored column, a map column or an unindexed lookup is a clear error', async () => {
    await assert.rejects(c.monitor({ Logical_Router: { columns: ['name'], columnIndexes: ['ports'] } }), /cannot index Logical_Router\.ports: not a monitored column/);
    await assert.rejects(c.monitor({ Logical_Router: { columnIndexes: ['options'] } }), /map columns have no column index/);
    assert.throws(() => c.cache.table('Logical_Switch_Port').byColumn('name', 'p1'), /no column index on name/);
    assert.equal(c.cache.table('Logical_Switch').hasColumnIndex('ports'), true);
  });
});
