// Schema parsing, converters and the model check, on pure data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseSchema } from './schema.ts';
import { modelProblems, modelSchema } from './model.ts';
import { ovnNorthboundModel, OVN_NORTHBOUND_SCHEMA_VERSION } from './models/ovn-nb.ts';
import type { OvnNorthboundTables } from './models/ovn-nb.ts';
import { encodeOperation, encodeOperationJson } from './encode.ts';
import { opsFor } from './ops.ts';
import { ovnSouthboundModel } from './models/ovn-sb.ts';
import { openVSwitchModel } from './models/vswitch.ts';

const read = (f: string): unknown => JSON.parse(readFileSync(f, 'utf8'));

test('generated models embed the installed schemas', () => {
  const cases = [
    [ovnNorthboundModel, '/usr/share/ovn/ovn-nb.ovsschema'],
    [ovnSouthboundModel, '/usr/share/ovn/ovn-sb.ovsschema'],
    [openVSwitchModel, '/usr/share/openvswitch/vswitch.ovsschema'],
  ] as const;
  for (const [model, file] of cases) {
    const installed = read(file) as { name: string; version: string; tables: unknown };
    assert.equal(model.name, installed.name);
    assert.equal(model.version, installed.version);
    assert.deepEqual((model.schema as { tables: unknown }).tables, installed.tables);
    assert.deepEqual(modelProblems(modelSchema(model), parseSchema(installed)), []);
  }
  assert.equal(OVN_NORTHBOUND_SCHEMA_VERSION, '7.0.0');
});

test('unknown types are reported with their path', () => {
  const bad = {
    name: 'X', version: '1.0.0',
    tables: { T: { columns: { a: { type: 'float128' }, b: { type: { key: 'string', value: { type: 'decimal' } } }, c: { type: 'integer' } } } },
  };
  assert.throws(() => parseSchema(bad), (err: Error & { name: string; problems: string[] }) => {
    assert.equal(err.name, 'OvsdbSchemaError');
    assert.deepEqual(err.problems, ['table T column a type: unknown type "float128"', 'table T column b value: unknown type "decimal"']);
    return true;
  });
});

test('column kinds and wire conversion follow libovsdb', () => {
  const lsp = modelSchema(ovnNorthboundModel).tables.get('Logical_Switch_Port')!;
  const col = (n: string) => lsp.columns.get(n)!;
  assert.equal(col('name').kind, 'scalar');
  assert.equal(col('tag').kind, 'optional');
  assert.equal(col('addresses').kind, 'set');
  assert.equal(col('options').kind, 'map');
  assert.deepEqual(col('tag').toWire(undefined), ['set', []]);
  assert.equal(col('tag').fromWire(['set', []]), undefined);
  assert.equal(col('tag').fromWire(7), 7);
  assert.deepEqual(col('addresses').fromWire('a'), ['a']);
  assert.deepEqual(col('options').toWire({ k: 'v' }), ['map', [['k', 'v']]]);
  assert.deepEqual(col('ha_chassis_group').toWire('new_group'), ['named-uuid', 'new_group']);
  assert.deepEqual(col('ha_chassis_group').toWire('2b2e0d7c-6f3e-4c5a-9f1e-1a2b3c4d5e6f'), ['uuid', '2b2e0d7c-6f3e-4c5a-9f1e-1a2b3c4d5e6f']);
  assert.throws(() => col('tag').toWire('x'), { name: 'OvsdbEncodeError' });
  const qos = modelSchema(openVSwitchModel).tables.get('QoS')!.columns.get('queues')!;
  const u = '2b2e0d7c-6f3e-4c5a-9f1e-1a2b3c4d5e6f';
  assert.deepEqual(qos.toWire({ 7: u }), ['map', [[7, ['uuid', u]]]]);
  assert.deepEqual(qos.fromWire(['map', [[7, ['uuid', u]]]]), { 7: u });
});

test('a server schema lacking what the model expects is a mismatch', () => {
  const nb = read('/usr/share/ovn/ovn-nb.ovsschema') as { tables: Record<string, { columns: Record<string, unknown> }> };
  delete nb.tables.ACL;
  delete nb.tables.Logical_Switch_Port!.columns.tag;
  nb.tables.Logical_Switch!.columns.name = { type: 'integer' };
  assert.deepEqual(modelProblems(modelSchema(ovnNorthboundModel), parseSchema(nb)), [
    'table ACL is absent on the server',
    'table Logical_Switch: column name is scalar<integer> on the server, scalar<string> in the model',
    'table Logical_Switch_Port: column tag is absent on the server',
  ]);
});

test('the direct JSON encoder writes exactly what the object encoder builds', () => {
  const nb = opsFor<OvnNorthboundTables>();
  const schema = modelSchema(ovnNorthboundModel);
  const u = '2b2e0d7c-6f3e-4c5a-9f1e-1a2b3c4d5e6f';
  const ops = [
    nb.insert('Logical_Switch_Port', { _uuid: u, name: 'p "1"', tag_request: 3, enabled: true, tag: undefined, addresses: ['a', 'b\\c'], options: { k: 'v' }, ha_chassis_group: 'g' }, 'p1'),
    nb.update('Logical_Switch_Port', [['name', '==', 'x'], ['_uuid', '!=', u]], { up: undefined, external_ids: {} }),
    nb.mutate('Logical_Switch', [['ports', 'includes', [u]]], [['ports', 'insert', ['p1']], ['external_ids', 'delete', ['k']]]),
    nb.delete('ACL', [['priority', '>', 5]]),
    nb.wait('ACL', [], { until: '==', rows: [{ action: 'drop' }], timeout: 0 }),
    nb.select('ACL', [], ['action']),
    nb.comment('c'),
    nb.assert('l'),
  ];
  for (const op of ops) assert.deepEqual(JSON.parse(encodeOperationJson(schema, op)), encodeOperation(schema, op));
});
