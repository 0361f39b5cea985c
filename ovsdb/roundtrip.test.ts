// Every operation and column kind against a real standalone Northbound ovsdb-server; caches kept by
// all three monitor methods equal `ovsdb-client dump` after a seeded random sequence of transactions.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { filter, firstValueFrom } from 'rxjs';
import { OvsdbClient } from './client.ts';
import { isRetryableOvsdbError } from './errors.ts';
import type { MonitorMethod } from './monitor.ts';
import { ovnNorthboundModel } from './models/ovn-nb.ts';
import type { OvnNorthboundTables } from './models/ovn-nb.ts';
import { opsFor } from './ops.ts';
import type { Operation } from './ops.ts';
import { Sandbox } from './testing/ovsdb-server.ts';
import type { OvsdbServer } from './testing/ovsdb-server.ts';
import { cacheTables, dumpTables } from './testing/compare.ts';

type NB = OvnNorthboundTables;
const nb = opsFor<NB>();
const TABLES = ['NB_Global', 'Logical_Switch', 'Logical_Switch_Port', 'ACL', 'HA_Chassis_Group'] as const;
const spec = { NB_Global: {}, Logical_Switch: {}, Logical_Switch_Port: { externalIdIndexes: ['owner'] }, ACL: {}, HA_Chassis_Group: {} };

/** Rejection of `p`, as the plain error object callers classify. */
async function rejection(p: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await p;
  } catch (err) {
    return err as Error & Record<string, unknown>;
  }
  assert.fail('expected a rejection');
}

/** Mulberry32: a small seeded PRNG so the random sequence is reproducible. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('round trips on OVN_Northbound', { timeout: 90_000 }, () => {
  const sandbox = new Sandbox();
  let srv: OvsdbServer;
  let w: OvsdbClient<NB>;
  const clients: OvsdbClient<NB>[] = [];

  before(async () => {
    srv = await sandbox.standalone({ tcp: true });
    w = await OvsdbClient.connect<NB>({ endpoints: [srv.tcpEndpoint], database: 'OVN_Northbound', model: ovnNorthboundModel });
    clients.push(w);
    await w.monitor(spec);
    await w.transact([nb.insert('NB_Global', {})]);
  });
  after(async () => {
    for (const c of clients) c.close();
    await sandbox.cleanup();
  });

  test('list_dbs, get_schema, get_server_id, echo', async () => {
    assert.deepEqual((await w.listDbs()).sort(), ['OVN_Northbound', '_Server']);
    assert.equal((await w.getSchema() as { version: string }).version, '7.0.0');
    assert.match(await w.getServerId(), /^[0-9a-f-]{36}$/);
    assert.deepEqual(await w.echo('a', 1), ['a', 1]);
  });

  test('insert with named-uuid references, select back every column kind', async () => {
    const [hcg, lsp, , acl] = await w.transact([
      nb.insert('HA_Chassis_Group', { name: 'hcg1' }, 'hcg'),
      nb.insert('Logical_Switch_Port', {
        name: 'rt-p1', type: 'localnet', tag_request: 42, enabled: false, addresses: ['00:00:00:00:00:01 10.0.0.1', 'unknown'],
        options: { network_name: 'phys' }, external_ids: { owner: 'rt' }, ha_chassis_group: 'hcg',
      }, 'p1'),
      nb.insert('Logical_Switch', { name: 'rt-ls', ports: ['p1'], acls: ['a1'] }),
      nb.insert('ACL', { priority: 1001, direction: 'to-lport', match: 'ip4', action: 'allow-related', log: true, severity: 'info', label: 7 }, 'a1'),
      nb.comment('kovn round trip'),
    ]);
    const [sel] = await w.transact([nb.select('Logical_Switch_Port', [['_uuid', '==', lsp!.uuid!]])]);
    const row = sel!.rows![0]!;
    assert.equal(row.name, 'rt-p1');
    assert.equal(row.tag_request, 42);
    assert.equal(row.enabled, false);
    assert.equal(row.tag, undefined);
    assert.deepEqual([...(row.addresses as string[])].sort(), ['00:00:00:00:00:01 10.0.0.1', 'unknown']);
    assert.deepEqual(row.options, { network_name: 'phys' });
    assert.equal(row.ha_chassis_group, hcg!.uuid);
    const [aclSel] = await w.transact([nb.select('ACL', [['_uuid', '==', acl!.uuid!]], ['action', 'direction', 'severity', 'log', 'label'])]);
    assert.deepEqual(aclSel!.rows![0], { action: 'allow-related', direction: 'to-lport', severity: 'info', log: true, label: 7 });
    // The cache has it too, by _uuid, by schema index and by external_ids index.
    const cached = w.cache.table('Logical_Switch_Port');
    assert.equal(cached.get(lsp!.uuid!)?.name, 'rt-p1');
    assert.equal(cached.byIndex({ name: 'rt-p1' })?._uuid, lsp!.uuid);
    assert.deepEqual(cached.byExternalId('owner', 'rt').map((r) => r.name), ['rt-p1']);
  });

  test('update, mutate, wait, delete', async () => {
    const where = [['name', '==', 'rt-p1'] as const];
    const [u] = await w.transact([nb.update('Logical_Switch_Port', where, { tag_request: undefined, addresses: [], options: { a: '1', b: '2' } })]);
    assert.equal(u!.count, 1);
    const [m] = await w.transact([
      nb.mutate('Logical_Switch_Port', where, [['addresses', 'insert', ['x', 'y']], ['options', 'delete', ['a']], ['external_ids', 'insert', { extra: 'e' }]]),
      nb.mutate('ACL', [['priority', '==', 1001]], [['priority', '+=', 5]]),
    ]);
    assert.equal(m!.count, 1);
    const p = w.cache.table('Logical_Switch_Port').byIndex({ name: 'rt-p1' })!;
    assert.equal(p.tag_request, undefined);
    assert.deepEqual([...p.addresses].sort(), ['x', 'y']);
    assert.deepEqual(p.options, { b: '2' });
    assert.deepEqual(p.external_ids, { owner: 'rt', extra: 'e' });
    assert.equal(w.cache.table('ACL').find((a) => a.match === 'ip4')[0]?.priority, 1006);
    const ok = await w.transact([nb.wait('Logical_Switch_Port', where, { until: '==', rows: [{ options: { b: '2' } }], timeout: 0 })]);
    assert.equal(ok.length, 1);
    const [d] = await w.transact([
      nb.mutate('Logical_Switch', [['name', '==', 'rt-ls']], [['ports', 'delete', [p._uuid]]]),
      nb.delete('ACL', [['priority', '==', 1006]]),
      nb.mutate('Logical_Switch', [['name', '==', 'rt-ls']], [['acls', 'delete', w.cache.table('Logical_Switch').find((s) => s.name === 'rt-ls')[0]!.acls]]),
    ]).then((r) => r.slice(1));
    assert.equal(d!.count, 1);
    assert.equal(w.cache.table('Logical_Switch_Port').byIndex({ name: 'rt-p1' }), undefined, 'unreferenced port is garbage collected');
  });

  test('RFC 7047 errors become typed errors naming the failed operation', async () => {
    const timedOut = await rejection(w.transact([
      nb.comment('first'),
      nb.wait('Logical_Switch', [['name', '==', 'rt-ls']], { until: '==', rows: [], timeout: 0 }),
    ]));
    assert.equal(timedOut.name, 'OvsdbTimedOutError');
    assert.equal(timedOut.code, 'timed out');
    assert.deepEqual(timedOut.failed, { index: 1, op: 'wait', table: 'Logical_Switch' });
    assert.equal(isRetryableOvsdbError(timedOut), true);

    const dup = await rejection(w.transact([
      nb.insert('Logical_Switch_Port', { name: 'dup' }, 'a'),
      nb.insert('Logical_Switch_Port', { name: 'dup' }, 'b'),
      nb.mutate('Logical_Switch', [['name', '==', 'rt-ls']], [['ports', 'insert', ['a', 'b']]]),
    ]));
    assert.equal(dup.name, 'OvsdbConstraintViolationError');
    assert.deepEqual(dup.failed, { index: 3, op: 'commit', table: undefined });
    assert.equal(isRetryableOvsdbError(dup), false);

    const ref = await rejection(w.transact([nb.insert('Logical_Switch', { name: 'bad', ports: ['6c8a4b1e-0000-4000-8000-000000000001'] })]));
    assert.equal(ref.name, 'OvsdbReferentialIntegrityError');

    const syntax = await rejection(w.transact([nb.assert('never-requested')]));
    assert.equal(syntax.name, 'OvsdbSyntaxError');
    assert.deepEqual(syntax.failed, { index: 0, op: 'assert', table: undefined });

    const enc = await rejection(w.transact([nb.insert('Logical_Switch', { name: 5 as unknown as string })]));
    assert.equal(enc.name, 'OvsdbEncodeError');
  });

  test('cancel aborts a transaction blocked in wait', async () => {
    const ac = new AbortController();
    const p = w.transact([nb.wait('Logical_Switch', [['name', '==', 'never']], { until: '!=', rows: [], timeout: 600_000 })], { signal: ac.signal });
    await w.echo();
    ac.abort();
    const err = await rejection(p);
    assert.equal(err.code, 'canceled');
  });

  test('lock, steal, unlock with locked/stolen notifications', async () => {
    const a = await OvsdbClient.connect<NB>({ endpoints: [srv.unixEndpoint], database: 'OVN_Northbound', model: ovnNorthboundModel });
    const b = await OvsdbClient.connect<NB>({ endpoints: [srv.unixEndpoint], database: 'OVN_Northbound', model: ovnNorthboundModel });
    clients.push(a, b);
    assert.equal(await a.lock('leader'), true);
    assert.equal(await b.lock('leader'), false);
    await a.transact([nb.assert('leader')]);
    const stolen = firstValueFrom(a.locks$.pipe(filter((e) => e.state === 'stolen')));
    await b.unlock('leader'); // RFC 7047: a waiting lock request must be withdrawn before stealing
    await b.steal('leader');
    assert.deepEqual(await stolen, { lock: 'leader', state: 'stolen' });
    await b.transact([nb.assert('leader')]);
    const notOwner = await rejection(a.transact([nb.comment('c'), nb.assert('leader')]));
    assert.equal(notOwner.name, 'OvsdbNotOwnerError');
    assert.deepEqual(notOwner.failed, { index: 1, op: 'assert', table: undefined });
    await b.unlock('leader');
    await a.unlock('leader');
  });

  test('conditional monitor with column selection', async () => {
    const c = await OvsdbClient.connect<NB>({ endpoints: [srv.unixEndpoint], database: 'OVN_Northbound', model: ovnNorthboundModel });
    clients.push(c);
    await w.transact([
      nb.insert('Logical_Switch_Port', { name: 'cond-a', external_ids: { owner: 'a' } }, 'a'),
      nb.insert('Logical_Switch_Port', { name: 'cond-b', external_ids: { owner: 'b' } }, 'b'),
      nb.mutate('Logical_Switch', [['name', '==', 'rt-ls']], [['ports', 'insert', ['a', 'b']]]),
    ]);
    const h = await c.monitor({ Logical_Switch_Port: { columns: ['name', 'external_ids'], where: [['external_ids', 'includes', { owner: 'a' }]] } });
    assert.deepEqual(c.cache.table('Logical_Switch_Port').all().map((r) => ({ ...r, _uuid: '' })), [{ _uuid: '', name: 'cond-a', external_ids: { owner: 'a' } }]);
    const inserted = firstValueFrom(c.events$.pipe(filter((e) => e.op === 'insert')));
    await w.transact([
      nb.insert('Logical_Switch_Port', { name: 'cond-a2', external_ids: { owner: 'a' } }, 'a'),
      nb.insert('Logical_Switch_Port', { name: 'cond-b2', external_ids: { owner: 'b' } }, 'b'),
      nb.mutate('Logical_Switch', [['name', '==', 'rt-ls']], [['ports', 'insert', ['a', 'b']]]),
    ]);
    assert.equal((await inserted).new?.name, 'cond-a2');
    await h.cancel();
  });

  test('caches of monitor, monitor_cond and monitor_cond_since equal the dump after 400 random transactions', async () => {
    const methods: MonitorMethod[] = ['monitor', 'monitor_cond', 'monitor_cond_since'];
    const watchers: OvsdbClient<NB>[] = [];
    for (const method of methods) {
      const c = await OvsdbClient.connect<NB>({ endpoints: [srv.unixEndpoint], database: 'OVN_Northbound', model: ovnNorthboundModel });
      clients.push(c);
      watchers.push(c);
      const h = await c.monitor(spec, { method });
      assert.equal(h.lastSync.method, method);
    }
    // A watcher's event stream replayed onto an empty map must give its cache.
    const replay = new Map<string, unknown>();
    watchers[2]!.events$.subscribe((e) => (e.op === 'delete' ? replay.delete(e.uuid) : replay.set(e.uuid, e.new)));
    for (const r of ['Logical_Switch', 'Logical_Switch_Port', 'ACL', 'NB_Global', 'HA_Chassis_Group'] as const) {
      for (const row of watchers[2]!.cache.table(r).all()) replay.set(row._uuid, row);
    }

    const rnd = prng(4711);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const word = (): string => pick(['a', 'b', 'c', 'd', 'e', 'f']);
    let seq = 0;
    const randomPort = (): Partial<NB['Logical_Switch_Port']> => ({
      name: `r${seq++}`,
      ...(rnd() < 0.5 ? { tag_request: Math.floor(rnd() * 4096) } : {}),
      ...(rnd() < 0.5 ? { enabled: rnd() < 0.5 } : {}),
      addresses: [...new Set(Array.from({ length: Math.floor(rnd() * 3) }, () => `${word()}${word()}`))],
      options: Object.fromEntries(Array.from({ length: Math.floor(rnd() * 3) }, () => [word(), word()])),
      external_ids: { owner: word() },
      type: pick(['', 'router', 'localnet']),
    });
    for (let i = 0; i < 400; i++) {
      const switches = w.cache.table('Logical_Switch').all();
      const ports = w.cache.table('Logical_Switch_Port').all();
      const acls = w.cache.table('ACL').all();
      const r = rnd();
      let ops: Operation[];
      if (r < 0.1 || switches.length === 0) {
        ops = [nb.insert('Logical_Switch_Port', randomPort(), 'p'), nb.insert('Logical_Switch', { name: `s${i}`, ports: ['p'], external_ids: { n: word() } })];
      } else if (r < 0.35) {
        const s = pick(switches);
        ops = [nb.insert('Logical_Switch_Port', randomPort(), 'p'), nb.mutate('Logical_Switch', [['_uuid', '==', s._uuid]], [['ports', 'insert', ['p']]])];
      } else if (r < 0.55 && ports.length > 0) {
        const p = pick(ports);
        const { name: _name, ...cols } = randomPort();
        const subset = Object.fromEntries(Object.entries(cols).filter(() => rnd() < 0.5));
        if (rnd() < 0.3) Object.assign(subset, { tag_request: undefined, enabled: undefined });
        ops = [nb.update('Logical_Switch_Port', [['_uuid', '==', p._uuid]], subset)];
      } else if (r < 0.7 && ports.length > 0) {
        const p = pick(ports);
        ops = [nb.mutate('Logical_Switch_Port', [['_uuid', '==', p._uuid]], [
          ['addresses', pick(['insert', 'delete'] as const), [...new Set([`${word()}${word()}`, ...p.addresses.slice(0, 1)])]],
          ['options', 'insert', { [word()]: word() }],
          ['external_ids', 'delete', [word()]],
        ])];
      } else if (r < 0.8 && ports.length > 0) {
        const p = pick(ports);
        const owner = switches.find((s) => s.ports.includes(p._uuid));
        ops = owner ? [nb.mutate('Logical_Switch', [['_uuid', '==', owner._uuid]], [['ports', 'delete', [p._uuid]]])] : [];
      } else if (r < 0.9) {
        const s = pick(switches);
        ops = [
          nb.insert('ACL', { priority: Math.floor(rnd() * 32768), direction: pick(['from-lport', 'to-lport'] as const), match: `ip4.src == 10.0.0.${i % 250}`, action: pick(['allow', 'drop', 'reject'] as const), log: rnd() < 0.5, ...(rnd() < 0.5 ? { severity: pick(['alert', 'info'] as const) } : {}) }, 'a'),
          nb.mutate('Logical_Switch', [['_uuid', '==', s._uuid]], [['acls', 'insert', ['a']]]),
        ];
      } else if (r < 0.95 && acls.length > 0) {
        const a = pick(acls);
        ops = [nb.update('ACL', [['_uuid', '==', a._uuid]], { action: pick(['allow-related', 'drop'] as const), severity: rnd() < 0.5 ? undefined : 'warning' })];
      } else {
        ops = [nb.delete('Logical_Switch', [['_uuid', '==', pick(switches)._uuid]])];
      }
      if (ops.length > 0) await w.transact(ops);
    }
    // Barrier: each watcher's own write comes back through its monitor.
    for (const [i, c] of [w, ...watchers].entries()) {
      const seen = firstValueFrom(c.events$.pipe(filter((e) => e.table === 'NB_Global' && (e.new?.external_ids as Record<string, string> | undefined)?.barrier === String(i))));
      await c.transact([nb.update('NB_Global', [], { external_ids: { barrier: String(i) } })]);
      await seen;
    }
    const barrier = { external_ids: { barrier: String(watchers.length) } };
    const expected = await dumpTables(srv, w, TABLES);
    assert.ok(Object.keys(expected.Logical_Switch_Port!).length > 20, 'the sequence left ports behind');
    for (const c of [w, ...watchers]) assert.deepEqual(cacheTables(c, TABLES), expected);
    assert.equal(replay.size, TABLES.reduce((n, t) => n + Object.keys(expected[t]!).length, 0));
    assert.ok(barrier);
  });
});
