// A 3-member RAFT cluster on loopback: the leader is killed under a stream of writes and the client
// moves to the new leader without losing or duplicating acknowledged writes, then resumes its monitor
// with monitor_cond_since instead of a full resync.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { OvsdbClient } from './client.ts';
import { isRetryableOvsdbError } from './errors.ts';
import { ovnNorthboundModel } from './models/ovn-nb.ts';
import type { OvnNorthboundTables } from './models/ovn-nb.ts';
import { opsFor } from './ops.ts';
import { Sandbox } from './testing/ovsdb-server.ts';
import type { OvsdbServer } from './testing/ovsdb-server.ts';
import { cacheTables, dumpTables } from './testing/compare.ts';

type NB = OvnNorthboundTables;
const nb = opsFor<NB>();
const TABLES = ['Logical_Switch', 'Logical_Switch_Port'] as const;

describe('3-member RAFT cluster', { timeout: 90_000 }, () => {
  const sandbox = new Sandbox();
  let members: OvsdbServer[];
  let client: OvsdbClient<NB>;

  const leader = (): OvsdbServer => members.find((m) => m.running && m.tcpEndpoint === client.endpoint)!;

  before(async () => {
    members = await sandbox.cluster(3);
    client = await OvsdbClient.connect<NB>({
      endpoints: members.map((m) => m.tcpEndpoint), database: 'OVN_Northbound', model: ovnNorthboundModel,
      leaderOnly: true, reconnect: { initialDelayMs: 50, maxDelayMs: 400 }, inactivityProbeMs: 2000, disconnectedWaitMs: 20_000,
    });
    await client.monitor({ Logical_Switch: {}, Logical_Switch_Port: {} });
    await client.transact([nb.insert('Logical_Switch', { name: 'ls' })]);
  });
  after(async () => {
    client.close();
    await sandbox.cleanup();
  });

  /** Barrier: our own write comes back through the monitor, so the cache is current. */
  async function settle(tag: string): Promise<void> {
    const [r] = await client.transact([nb.insert('Logical_Switch', { name: `barrier-${tag}` })]);
    assert.ok(client.cache.table('Logical_Switch').get(r!.uuid!), 'update precedes the reply on one connection');
  }

  test('the client follows the new leader; acknowledged writes are kept exactly once', async (t) => {
    const first = leader();
    assert.match((await first.appctl('cluster/status', 'OVN_Northbound')), /Role: leader/);
    const acked = new Set<number>();
    let retries = 0;
    // Each write is guarded by a wait on its unique name, so a retry of a write that did commit fails
    // with "timed out" instead of applying twice.
    const write = async (i: number): Promise<void> => {
      for (;;) {
        try {
          await client.transact([
            nb.wait('Logical_Switch_Port', [['name', '==', `w${i}`]], { until: '==', rows: [], timeout: 0 }),
            nb.insert('Logical_Switch_Port', { name: `w${i}`, external_ids: { seq: String(i) } }, 'p'),
            nb.mutate('Logical_Switch', [['name', '==', 'ls']], [['ports', 'insert', ['p']]]),
          ]);
          acked.add(i);
          return;
        } catch (err) {
          const e = err as { name: string };
          if (e.name === 'OvsdbTimedOutError' && retries > 0) {
            acked.add(i); // an earlier attempt committed
            return;
          }
          if (!isRetryableOvsdbError(err)) throw err;
          retries++;
        }
      }
    };
    const N = 300;
    let next = 0;
    let killed = false;
    const worker = async (): Promise<void> => {
      while (next < N) {
        const i = next++;
        if (i === 60 && !killed) {
          killed = true;
          await first.stop(true); // SIGKILL: no goodbye to followers or clients
        }
        await write(i);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    assert.equal(acked.size, N);
    t.diagnostic(`retried writes: ${retries}, connections: ${client.connects}, now on ${client.endpoint}`);
    assert.ok(retries > 0 || client.connects > 1, 'the kill interrupted the stream');
    assert.notEqual(client.endpoint, first.tcpEndpoint);
    const now = leader();
    assert.match(await now.appctl('cluster/status', 'OVN_Northbound'), /Role: leader/);

    // Final state on the survivors: every write once, the switch references each port once.
    for (const m of members.filter((x) => x.running)) {
      const dump = await m.dump('OVN_Northbound', ['--no-leader-only']);
      const names = (dump.get('Logical_Switch_Port') ?? []).map((r) => r.name as string).filter((n) => n.startsWith('w'));
      // A follower may trail the leader by a few entries; the leader has everything.
      if (m === now) assert.deepEqual(names.sort(), [...acked].map((i) => `w${i}`).sort());
      assert.equal(new Set(names).size, names.length);
    }
    await settle('a');
    assert.deepEqual(cacheTables(client, TABLES), await dumpTables(now, client, TABLES));
  });

  test('after the leader restarts the monitor resumes with monitor_cond_since, no full resync', async (t) => {
    // Bring the killed member back so the cluster has 3 members again.
    for (const m of members.filter((x) => !x.running)) await m.start();
    const before = client.connects;
    const cached = client.cache.table('Logical_Switch_Port').size;
    assert.ok(cached >= 300);
    const old = leader();
    await old.stop(); // SIGTERM: a clean shutdown of the leader
    await client.transact([nb.insert('Logical_Switch', { name: 'after-restart' })]);
    assert.ok(client.connects > before);
    const monitorSync = client.monitors[0]!.lastSync;
    assert.equal(monitorSync.method, 'monitor_cond_since');
    t.diagnostic(`resume: found=${monitorSync.found} rows=${monitorSync.rows} (cache holds ${cached} ports)`);
    assert.equal(monitorSync.found, true, 'the new leader still had our last transaction id');
    assert.ok(monitorSync.rows < 10, `resume carried ${monitorSync.rows} rows, not the ${cached} cached`);
    await old.start();
    await settle('b');
    assert.deepEqual(cacheTables(client, TABLES), await dumpTables(leader(), client, TABLES));
  });
});
