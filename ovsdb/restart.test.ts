// Server restarts and transports: the client waits (bounded) while the server is down, reconnects,
// and its cache converges to the restarted server's state, including changes made offline. TLS works.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { OvsdbClient } from './client.ts';
import { isRetryableOvsdbError } from './errors.ts';
import { ovnNorthboundModel } from './models/ovn-nb.ts';
import type { OvnNorthboundTables } from './models/ovn-nb.ts';
import { opsFor } from './ops.ts';
import { Sandbox, freePort } from './testing/ovsdb-server.ts';
import type { OvsdbServer } from './testing/ovsdb-server.ts';
import { cacheTables, dumpTables } from './testing/compare.ts';

type NB = OvnNorthboundTables;
const nb = opsFor<NB>();
const run = promisify(execFile);

describe('standalone server restart', { timeout: 90_000 }, () => {
  const sandbox = new Sandbox();
  let srv: OvsdbServer;
  const clients: OvsdbClient<NB>[] = [];

  before(async () => {
    srv = await sandbox.standalone({ tcp: true });
  });
  after(async () => {
    for (const c of clients) c.close();
    await sandbox.cleanup();
  });

  test('reconnects after a restart and converges to changes made while it was away', async () => {
    const c = await OvsdbClient.connect<NB>({ endpoints: [srv.tcpEndpoint], database: 'OVN_Northbound', model: ovnNorthboundModel, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
    const impatient = await OvsdbClient.connect<NB>({ endpoints: [srv.unixEndpoint], database: 'OVN_Northbound', model: ovnNorthboundModel, disconnectedWaitMs: 50, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
    clients.push(c, impatient);
    await c.monitor({ Logical_Switch: { externalIdIndexes: ['k'] } });
    await c.transact([nb.insert('Logical_Switch', { name: 'gone', external_ids: { k: 'x' } }), nb.insert('Logical_Switch', { name: 'kept' })]);
    assert.equal(c.cache.table('Logical_Switch').byExternalId('k', 'x').length, 1);

    await srv.stop();
    // Offline edit of the database file: one switch deleted, one added.
    await run('ovsdb-tool', ['transact', srv.db, JSON.stringify(['OVN_Northbound',
      { op: 'delete', table: 'Logical_Switch', where: [['name', '==', 'gone']] },
      { op: 'insert', table: 'Logical_Switch', row: { name: 'offline', external_ids: ['map', [['k', 'y']]] } }])]);
    const err = await impatient.transact([nb.insert('Logical_Switch', { name: 'never' })]).then(() => undefined, (e: unknown) => e);
    assert.equal((err as { name: string }).name, 'OvsdbDisconnectedError');
    assert.equal((err as { inDoubt: boolean }).inDoubt, false);
    assert.equal(isRetryableOvsdbError(err), true);

    // Issued while the server is down: waits for the reconnect instead of failing.
    const pending = c.transact([nb.insert('Logical_Switch', { name: 'queued' })]);
    await srv.start();
    await pending;
    assert.equal(c.connects, 2);
    const sync = c.monitors[0]!.lastSync;
    assert.equal(sync.found, false, 'a standalone database always resyncs fully');
    assert.deepEqual(cacheTables(c, ['Logical_Switch']), await dumpTables(srv, c, ['Logical_Switch']));
    assert.deepEqual(c.cache.table('Logical_Switch').all().map((s) => s.name).sort(), ['kept', 'offline', 'queued']);
    assert.deepEqual(c.cache.table('Logical_Switch').byExternalId('k', 'x'), []);
    assert.deepEqual(c.cache.table('Logical_Switch').byExternalId('k', 'y').map((s) => s.name), ['offline']);
  });
});

describe('TLS endpoint', { timeout: 90_000 }, () => {
  const sandbox = new Sandbox();
  after(() => sandbox.cleanup());

  test('connects over ssl: with client certificates and runs a transaction', async () => {
    const d = sandbox.dir;
    const f = (n: string): string => path.join(d, n);
    const ssl = (...args: string[]) => run('openssl', args, { cwd: d });
    await ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=kovn-test-ca', '-keyout', f('ca.key'), '-out', f('ca.pem'));
    for (const who of ['server', 'client']) {
      await ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${who}`, '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`));
      await run('bash', ['-c', `printf 'subjectAltName=IP:127.0.0.1\\n' > ${f('ext.cnf')} && openssl x509 -req -in ${f(`${who}.csr`)} -CA ${f('ca.pem')} -CAkey ${f('ca.key')} -CAcreateserial -days 1 -extfile ${f('ext.cnf')} -out ${f(`${who}.pem`)}`]);
    }
    const srv = await sandbox.standalone({ name: 'tls' });
    const port = await freePort();
    await srv.stop();
    await srv.start([`--remote=pssl:${port}:127.0.0.1`, `--private-key=${f('server.key')}`, `--certificate=${f('server.pem')}`, `--ca-cert=${f('ca.pem')}`]);
    const c = await OvsdbClient.connect<NB>({
      endpoints: [`ssl:127.0.0.1:${port}`], database: 'OVN_Northbound', model: ovnNorthboundModel,
      tls: { ca: readFileSync(f('ca.pem')), cert: readFileSync(f('client.pem')), key: readFileSync(f('client.key')) },
    });
    try {
      const [r] = await c.transact([nb.insert('Logical_Switch', { name: 'over-tls' })]);
      assert.match(r!.uuid!, /^[0-9a-f-]{36}$/);
    } finally {
      c.close();
    }
  });
});
