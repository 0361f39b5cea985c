// A broken peer: malformed bytes, replies for unknown ids, silence, and a server whose schema lacks
// what the model expects. The client reports a clear error and stays usable or reconnects cleanly.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { filter, firstValueFrom } from 'rxjs';
import { OvsdbClient } from './client.ts';
import { ovnNorthboundModel } from './models/ovn-nb.ts';
import type { OvnNorthboundTables } from './models/ovn-nb.ts';
import { opsFor } from './ops.ts';
import { RpcConnection } from './rpc.ts';
import { FaultyProxy } from './testing/faulty-proxy.ts';
import { NB_SCHEMA, Sandbox } from './testing/ovsdb-server.ts';
import type { OvsdbServer } from './testing/ovsdb-server.ts';
import { cacheTables, dumpTables } from './testing/compare.ts';

type NB = OvnNorthboundTables;
const nb = opsFor<NB>();

/** A raw socket server that answers any bytes with `reply`. */
async function rawPeer(file: string, reply: string[]): Promise<net.Server> {
  const srv = net.createServer((s) => {
    s.once('data', () => {
      for (const r of reply) s.write(r);
    });
  });
  await new Promise<void>((r) => srv.listen(file, r));
  return srv;
}

function rpcTo(file: string, warnings: Error[], closed: (Error | undefined)[]): Promise<RpcConnection> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ path: file }, () => resolve(new RpcConnection(s, {
      onNotification: () => undefined, onClose: (e) => closed.push(e), onWarning: (e) => warnings.push(e),
    })));
    s.once('error', reject);
  });
}

describe('bad input', { timeout: 90_000 }, () => {
  const sandbox = new Sandbox();
  let srv: OvsdbServer;
  let proxy: FaultyProxy;
  const clients: OvsdbClient<NB>[] = [];

  before(async () => {
    srv = await sandbox.standalone();
    proxy = new FaultyProxy(path.join(sandbox.dir, 'proxy.sock'), srv.sock);
    await proxy.start();
  });
  after(async () => {
    for (const c of clients) c.close();
    await proxy.close();
    await sandbox.cleanup();
  });

  test('RPC layer: a reply for an unknown id is a warning, then the real reply is delivered', async () => {
    const file = path.join(sandbox.dir, 'raw1.sock');
    const peer = await rawPeer(file, ['{"id":99,"result":[],"error":null}{"id":1,', '"result":["ok {]\\""],"error":null}']);
    const warnings: Error[] = [];
    const rpc = await rpcTo(file, warnings, []);
    assert.deepEqual(await rpc.request('list_dbs', []), ['ok {]"']);
    assert.equal(rpc.unknownReplies, 1);
    assert.match(warnings[0]!.message, /unknown id 99/);
    assert.equal(rpc.closed, false);
    rpc.close();
    peer.close();
  });

  test('RPC layer: the server\'s echo request is answered with its params', async () => {
    const file = path.join(sandbox.dir, 'raw-echo.sock');
    let answered: (v: unknown) => void = () => undefined;
    const answer = new Promise((r) => (answered = r));
    const peer = net.createServer((s) => {
      s.write('{"id":"echo-7","method":"echo","params":["ping",{"n":1}]}');
      s.on('data', (b: Buffer) => answered(JSON.parse(b.toString())));
    });
    await new Promise<void>((r) => peer.listen(file, r));
    const rpc = await rpcTo(file, [], []);
    assert.deepEqual(await answer, { id: 'echo-7', result: ['ping', { n: 1 }], error: null });
    rpc.close();
    peer.close();
  });

  test('RPC layer: malformed bytes fail pending requests with a protocol error and close', async () => {
    const file = path.join(sandbox.dir, 'raw2.sock');
    const peer = await rawPeer(file, ['{"id":1,"result":[1,2,,3]}']);
    const closed: (Error | undefined)[] = [];
    const rpc = await rpcTo(file, [], closed);
    await assert.rejects(rpc.request('list_dbs', []), { name: 'OvsdbProtocolError', code: 'protocol error', message: /malformed JSON value/ });
    assert.equal(rpc.closed, true);
    assert.equal(closed[0]?.name, 'OvsdbProtocolError');
    peer.close();
  });

  test('client: unknown-id reply keeps the connection; garbage makes it reconnect and resync', async () => {
    const c = await OvsdbClient.connect<NB>({ endpoints: [proxy.endpoint], database: 'OVN_Northbound', model: ovnNorthboundModel, reconnect: { initialDelayMs: 20 } });
    clients.push(c);
    await c.monitor({ Logical_Switch: {} });
    await c.transact([nb.insert('Logical_Switch', { name: 'before' })]);
    const warned = firstValueFrom(c.warnings$);
    proxy.inject('{"id":424242,"result":[],"error":null}');
    assert.match((await warned).message, /unknown id 424242/);
    await c.transact([nb.insert('Logical_Switch', { name: 'still-usable' })]);
    assert.equal(c.connects, 1);

    const down = firstValueFrom(c.connection$.pipe(filter((e) => e.state === 'disconnected')));
    proxy.inject('{"method":"update2","params":["kovn-1",{"Logical_Switch":}]}');
    assert.equal((await down).error?.name, 'OvsdbProtocolError');
    // Written by another session while ours is re-established.
    const other = await OvsdbClient.connect<NB>({ endpoints: [srv.unixEndpoint], database: 'OVN_Northbound', model: ovnNorthboundModel });
    clients.push(other);
    await other.transact([nb.insert('Logical_Switch', { name: 'during' })]);
    await c.transact([nb.insert('Logical_Switch', { name: 'after' })]);
    assert.equal(c.connects, 2);
    assert.deepEqual(cacheTables(c, ['Logical_Switch']), await dumpTables(srv, c, ['Logical_Switch']));
    assert.deepEqual(c.cache.table('Logical_Switch').all().map((s) => s.name).sort(), ['after', 'before', 'during', 'still-usable']);
  });

  test('client: a silent server is detected by the inactivity probe and the connection replaced', async () => {
    const c = await OvsdbClient.connect<NB>({ endpoints: [proxy.endpoint], database: 'OVN_Northbound', model: ovnNorthboundModel, inactivityProbeMs: 200, reconnect: { initialDelayMs: 20 } });
    clients.push(c);
    const down = firstValueFrom(c.connection$.pipe(filter((e) => e.state === 'disconnected')));
    proxy.muteCurrent();
    const err = (await down).error;
    assert.match(err?.message ?? '', /inactivity probe/);
    assert.deepEqual(await c.echo('back'), ['back']);
    assert.equal(c.connects, 2);
  });

  test('client: a server schema lacking a modelled column is a clear, non-retryable error', async () => {
    const schema = JSON.parse(readFileSync(NB_SCHEMA, 'utf8')) as { tables: Record<string, { columns: Record<string, unknown> }> };
    delete schema.tables.Logical_Switch_Port!.columns.tag;
    const file = path.join(sandbox.dir, 'old-nb.ovsschema');
    writeFileSync(file, JSON.stringify(schema));
    const old = await sandbox.standalone({ schema: file, name: 'old' });
    await assert.rejects(
      OvsdbClient.connect<NB>({ endpoints: [old.unixEndpoint], database: 'OVN_Northbound', model: ovnNorthboundModel }),
      { name: 'OvsdbSchemaError', code: 'schema mismatch', retryable: false, message: /table Logical_Switch_Port: column tag is absent on the server/ },
    );
  });
});
