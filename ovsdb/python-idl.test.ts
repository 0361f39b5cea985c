// Cross-check with an independent client: the OVS project's Python IDL writes rows that kovn's cache
// must decode identically, and reads rows kovn wrote back with the same values.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { filter, firstValueFrom } from 'rxjs';
import { OvsdbClient } from './client.ts';
import { ovnNorthboundModel } from './models/ovn-nb.ts';
import type { LogicalSwitchPort, OvnNorthboundTables } from './models/ovn-nb.ts';
import { opsFor } from './ops.ts';
import { Sandbox } from './testing/ovsdb-server.ts';
import type { OvsdbServer } from './testing/ovsdb-server.ts';

type NB = OvnNorthboundTables;
const nb = opsFor<NB>();
const run = promisify(execFile);
const script = new URL('./testing/python-idl.py', import.meta.url).pathname;

interface PyPort {
  uuid: string;
  name: string;
  tag_request: number | null;
  enabled: boolean | null;
  addresses: string[];
  options: Record<string, string>;
  external_ids: Record<string, string>;
}

async function python(sock: string, mode: 'read' | 'write'): Promise<unknown> {
  const r = await run('/usr/bin/python3', [script, sock, mode]);
  return JSON.parse(r.stdout);
}

function asPy(p: LogicalSwitchPort): PyPort {
  return {
    uuid: p._uuid, name: p.name, tag_request: p.tag_request ?? null, enabled: p.enabled ?? null,
    addresses: [...p.addresses].sort(), options: { ...p.options }, external_ids: { ...p.external_ids },
  };
}

describe('against the OVS Python IDL', { timeout: 60_000 }, () => {
  const sandbox = new Sandbox();
  let srv: OvsdbServer;
  let client: OvsdbClient<NB>;

  before(async () => {
    srv = await sandbox.standalone();
    client = await OvsdbClient.connect<NB>({ endpoints: [srv.unixEndpoint], database: 'OVN_Northbound', model: ovnNorthboundModel });
    await client.monitor({ Logical_Switch: {}, Logical_Switch_Port: {} });
  });
  after(async () => {
    client.close();
    await sandbox.cleanup();
  });

  test('rows written by the Python IDL reach the cache with the same values', async () => {
    const seen = firstValueFrom(client.events$.pipe(filter((e) => e.table === 'Logical_Switch' && e.op === 'insert')));
    assert.deepEqual(await python(srv.sock, 'write'), { status: 'success' });
    await seen; // the switch and its port arrive in one update
    const p = client.cache.table('Logical_Switch_Port').byIndex({ name: 'py-p1' })!;
    assert.deepEqual(asPy(p), {
      uuid: p._uuid, name: 'py-p1', tag_request: 7, enabled: false, addresses: ['00:00:00:00:00:07 10.0.0.7', 'dynamic'],
      options: { 'requested-chassis': 'node-1' }, external_ids: { by: 'python' },
    });
    assert.deepEqual(client.cache.table('Logical_Switch').find((s) => s.name === 'py-ls')[0]?.ports, [p._uuid]);
  });

  test('rows written by kovn read back identically through the Python IDL', async () => {
    await client.transact([
      nb.update('Logical_Switch_Port', [['name', '==', 'py-p1']], { tag_request: undefined, enabled: true }),
      nb.mutate('Logical_Switch_Port', [['name', '==', 'py-p1']], [['addresses', 'delete', ['dynamic']], ['options', 'insert', { 'x': 'y' }]]),
      nb.insert('Logical_Switch_Port', { name: 'ts-p2', tag_request: 4095, addresses: ['unknown'], external_ids: { by: 'kovn', 'with space': 'and "quotes"' } }, 'p2'),
      nb.mutate('Logical_Switch', [['name', '==', 'py-ls']], [['ports', 'insert', ['p2']]]),
    ]);
    const ours = client.cache.table('Logical_Switch_Port').all().map(asPy).sort((a, b) => a.name.localeCompare(b.name));
    assert.equal(ours.length, 2);
    assert.deepEqual(await python(srv.sock, 'read'), ours);
  });
});
