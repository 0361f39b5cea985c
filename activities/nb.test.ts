// The owner-scoped Northbound layer against a real ovsdb-server with the real NB schema: creates with
// parents in one call, per-key map updates beside foreign keys, moves, owner-scoped prunes, idempotence,
// stale plans that commit nothing and are re-planned, and rows kovn does not own left alone.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { OvsdbClient, opsFor } from '../ovsdb/index.ts';
import { ovnNorthboundModel } from '../ovsdb/models/ovn-nb.ts';
import type { OvnNorthboundTables } from '../ovsdb/models/ovn-nb.ts';
import { FaultyProxy } from '../ovsdb/testing/faulty-proxy.ts';
import { Sandbox } from '../ovsdb/testing/ovsdb-server.ts';
import type { OvsdbServer } from '../ovsdb/testing/ovsdb-server.ts';
import { IPV4_CLUSTER } from '../lib/cluster-config.ts';
import { classify } from '../lib/errors.ts';
import {
  connectNb, deleteOwned, desired, ensureClusterTopology, ensureNodeGateway, ensureNodeTopology, ensurePodPort, noRouterWithNodeId, noSwitchWithSubnet,
  ensureServiceLoadBalancers, ownedPodPorts, planSync, routerNodeIds, serviceOwners, syncMacBindings, syncOwned,
} from './nb.ts';
import { serviceLoadBalancers } from './translate/service.ts';
import { NODE_ID_KEY, nodeGateway, routerToExternal } from './translate/gateway.ts';
import type { Change, NbClient } from './nb.ts';
import { ownedBy } from './translate/ownership.ts';
import { podPort } from './translate/pod.ts';
import { clusterTopology, nodeTopology } from './translate/topology.ts';
import { until } from '../ovsdb/testing/until.ts';

type NB = OvnNorthboundTables;
const ops = opsFor<NB>();
const run = promisify(execFile);

const sorted = (changes: Change[]): string[] => changes.map((c) => `${c.op} ${c.table} ${c.row}`).sort();

describe('Northbound layer', { timeout: 120_000 }, () => {
  const sandbox = new Sandbox();
  let srv: OvsdbServer;
  let proxy: FaultyProxy;
  let nb: NbClient;
  let other: OvsdbClient<NB>;
  const clients: OvsdbClient<NB>[] = [];

  /** ovn-nbctl against the test server: someone else's writes. */
  const nbctl = async (...args: string[]): Promise<string> => (await run('ovn-nbctl', [`--db=${srv.unixEndpoint}`, ...args])).stdout.trim();
  /** A row as the server holds it (not the cache). */
  const server = async <T extends 'Logical_Switch' | 'Logical_Switch_Port' | 'Logical_Router' | 'Logical_Router_Port'>(table: T, name: string): Promise<NB[T] | undefined> => {
    const [r] = await other.transact([{ op: 'select', table, where: [['name', '==', name]] }]);
    assert.ok((r!.rows ?? []).length <= 1, `one ${table} ${name}`);
    return r!.rows![0] as NB[T] | undefined;
  };
  const portsOf = async (table: 'Logical_Switch' | 'Logical_Router', name: string): Promise<string[]> => {
    const row = await server(table, name);
    const names = await Promise.all((row?.ports ?? []).map(async (u) => {
      const [r] = await other.transact([ops.select(table === 'Logical_Switch' ? 'Logical_Switch_Port' : 'Logical_Router_Port', [['_uuid', '==', u]], ['name'])]);
      return r!.rows![0]!.name as string;
    }));
    return names.sort();
  };
  const node = (name: string, subnet: string) => ensureNodeTopology(nb, name, nodeTopology(name, [subnet]), [noSwitchWithSubnet('subnet', subnet)]);
  const pod = (name: string, node: string, uid = 'u1', ip = '10.244.1.5/24') => podPort({ namespace: 'default', name, uid, node }, [ip]);

  before(async () => {
    srv = await sandbox.standalone();
    proxy = new FaultyProxy(path.join(sandbox.dir, 'proxy.sock'), srv.sock);
    await proxy.start();
    other = await OvsdbClient.connect<NB>({ endpoints: [srv.unixEndpoint], database: 'OVN_Northbound', model: ovnNorthboundModel });
    await other.transact([ops.insert('NB_Global', {})]);
    // kovn's client goes through the relay, so that a test can hold its monitor updates back.
    nb = await connectNb([proxy.endpoint]);
    clients.push(other, nb);
  });
  after(async () => {
    for (const c of clients) c.close();
    await proxy.close();
    await sandbox.cleanup();
  });

  test('creates a router with its port and a switch with its ports in one call; a second call changes nothing', async () => {
    const topo = clusterTopology(IPV4_CLUSTER);
    assert.deepEqual(sorted(await ensureClusterTopology(nb, topo)), [
      'insert Load_Balancer_Group clusterLBGroup', 'insert Logical_Router ovn_cluster_router', 'insert Logical_Router_Port rtoj-ovn_cluster_router', 'insert Logical_Switch join', 'insert Logical_Switch_Port jtor-ovn_cluster_router',
      'insert Meter acl-logging', 'insert Meter_Band meter:acl-logging:drop',
    ]);
    assert.deepEqual(await portsOf('Logical_Switch', 'join'), ['jtor-ovn_cluster_router']);
    assert.deepEqual(await portsOf('Logical_Router', 'ovn_cluster_router'), ['rtoj-ovn_cluster_router']);
    assert.deepEqual((await server('Logical_Router_Port', 'rtoj-ovn_cluster_router'))?.networks, ['100.64.0.1/16']);
    assert.deepEqual(await ensureClusterTopology(nb, topo), []);
    assert.match(await nbctl('meter-list'), /acl-logging: \(fair\) bands:\s+drop: 20 pktps/);

    assert.deepEqual(sorted(await node('node-1', '10.244.1.0/24')), [
      'insert ACL acl:node-1:allow-from-node', 'insert Logical_Router_Port rtos-node-1', 'insert Logical_Switch node-1', 'insert Logical_Switch_Port k8s-node-1', 'insert Logical_Switch_Port stor-node-1',
    ]);
    assert.deepEqual(await portsOf('Logical_Switch', 'node-1'), ['k8s-node-1', 'stor-node-1']);
    assert.deepEqual(await portsOf('Logical_Router', 'ovn_cluster_router'), ['rtoj-ovn_cluster_router', 'rtos-node-1']);
    assert.deepEqual((await server('Logical_Switch', 'node-1'))?.other_config, { subnet: '10.244.1.0/24', exclude_ips: '10.244.1.1..10.244.1.2' });
    assert.deepEqual(await node('node-1', '10.244.1.0/24'), []);
    assert.equal((await node('node-2', '10.244.2.0/24')).length, 5);
  });

  test('a node gateway: router, ports, routes, NAT and policies (rows keyed by row id) in one transaction; idempotent; pruned by owner', async () => {
    const gw = (id: number, ip = '172.29.0.11/24') => nodeGateway(IPV4_CLUSTER, {
      node: 'node-1', nodeId: id, chassisId: 'node-1', subnets: ['10.244.1.0/24'], internalIps: [ip.split('/')[0] ?? ''],
      facts: { bridge: 'breth0', mac: '0a:00:00:00:00:11', ipAddresses: [ip], nextHops: ['172.29.0.2'] },
    });
    const apply = (id: number, ip?: string) => ensureNodeGateway(nb, 'node-1', nodeTopology('node-1', ['10.244.1.0/24']), gw(id, ip).rows, [noRouterWithNodeId(NODE_ID_KEY, id)]);
    const changes = sorted(await apply(2));
    for (const want of [
      'insert Logical_Router GR_node-1', 'insert Logical_Router_Port rtoj-GR_node-1', 'insert Logical_Switch_Port jtor-GR_node-1',
      'insert Logical_Switch ext_node-1', 'insert Logical_Switch_Port breth0_node-1', 'insert NAT GR_node-1:snat:10.244.0.0/16',
      'insert Logical_Router_Static_Route GR_node-1:default:v4', 'insert Logical_Router_Static_Route ovn_cluster_router:node:node-1:10.244.1.0/24',
      'insert Logical_Router_Policy ovn_cluster_router:node-ip:node-1:172.29.0.11',
    ]) assert.ok(changes.includes(want), `${want} in ${changes.join(', ')}`);
    assert.deepEqual(await apply(2), [], 'a second call changes nothing');
    assert.equal(routerNodeIds(nb, NODE_ID_KEY).get('GR_node-1'), 2);
    assert.match(await nbctl('lr-route-list', 'GR_node-1'), /0\.0\.0\.0\/0\s+172\.29\.0\.2 dst-ip rtoe-GR_node-1/);
    assert.match(await nbctl('lr-route-list', 'ovn_cluster_router'), /10\.244\.1\.0\/24\s+100\.64\.0\.2 src-ip/);
    assert.match(await nbctl('lr-nat-list', 'GR_node-1'), /snat\s+172\.29\.0\.11\s+10\.244\.0\.0\/16/);
    assert.match(await nbctl('lr-policy-list', 'ovn_cluster_router'), /1004 inport == "rtos-node-1" && ip4\.dst == 172\.29\.0\.11 \/\* node-1 \*\/\s+reroute\s+10\.244\.1\.2/);
    // The node's IP changed: the NAT is updated in place, the old policy pruned, a new one added.
    const moved = sorted(await apply(2, '172.29.0.21/24'));
    assert.ok(moved.includes('update NAT GR_node-1:snat:10.244.0.0/16'), moved.join(', '));
    assert.ok(moved.includes('delete Logical_Router_Policy ovn_cluster_router:node-ip:node-1:172.29.0.11'), moved.join(', '));
    // A second router cannot claim the same id: the guard fails the transaction.
    const other = nodeGateway(IPV4_CLUSTER, {
      node: 'node-7', nodeId: 2, chassisId: 'node-7', subnets: ['10.244.7.0/24'], internalIps: ['172.29.0.17'],
      facts: { bridge: 'breth0', mac: '0a:00:00:00:00:17', ipAddresses: ['172.29.0.17/24'], nextHops: ['172.29.0.2'] },
    });
    await node('node-7', '10.244.7.0/24');
    await assert.rejects(ensureNodeGateway(nb, 'node-7', nodeTopology('node-7', ['10.244.7.0/24']), other.rows, [noRouterWithNodeId(NODE_ID_KEY, 2)]), /create guard/);
    assert.equal(await nbctl('--bare', '--columns=name', 'find', 'Logical_Router', 'name=GR_node-7'), '');
    // Static MAC bindings: written, idempotent, removed with the node.
    assert.equal((await syncMacBindings(nb, routerToExternal('node-1'), gw(2).macBindings)).length, 1);
    await until('binding cached', () => nb.cache.table('Static_MAC_Binding').all().length === 1);
    assert.deepEqual(await syncMacBindings(nb, routerToExternal('node-1'), gw(2).macBindings), []);
    const gone = sorted([...(await syncMacBindings(nb, routerToExternal('node-1'), [])), ...(await deleteOwned(nb, { type: 'Node', name: 'node-1' }))]);
    assert.ok(gone.includes('delete Logical_Router GR_node-1') && gone.includes('delete Logical_Router_Policy ovn_cluster_router:node-ip:node-1:172.29.0.21'), gone.join(', '));
    assert.equal(await nbctl('lr-route-list', 'ovn_cluster_router'), '');
    assert.equal(await nbctl('lr-policy-list', 'ovn_cluster_router'), '');
    assert.equal(await nbctl('--bare', '--columns=_uuid', 'list', 'Static_MAC_Binding'), '');
    assert.equal(await nbctl('--bare', '--columns=_uuid', 'list', 'NAT'), '', 'the router\'s NAT went with it');
    await deleteOwned(nb, { type: 'Node', name: 'node-7' });
    await node('node-1', '10.244.1.0/24'); // as the tests after this one expect it
  });

  test('the cluster\'s join ports under their old names are replaced in one transaction', async () => {
    const owner = { type: 'Cluster', name: 'default' } as const;
    await syncOwned(nb, owner, [
      desired('Logical_Router_Port', 'rtos-join', { mac: '0a:58:64:40:00:01', networks: ['100.64.0.1/16'], external_ids: ownedBy(owner, 'lrp:rtos-join') },
        { parent: { table: 'Logical_Router', name: 'ovn_cluster_router', column: 'ports' } }),
    ]);
    const changes = sorted(await ensureClusterTopology(nb, clusterTopology(IPV4_CLUSTER)));
    assert.deepEqual(changes, ['delete Logical_Router_Port rtos-join']);
    assert.deepEqual(await portsOf('Logical_Router', 'ovn_cluster_router'), ['rtoj-ovn_cluster_router', 'rtos-node-1', 'rtos-node-2']);
  });

  test('the generic layer: a new switch and a new router, each with new ports, in one transaction', async () => {
    const owner = { type: 'Cluster', name: 'generic' } as const;
    const rows = [
      desired('Logical_Router', 'g-lr', { external_ids: ownedBy(owner, 'lr:g-lr') }),
      desired('Logical_Router_Port', 'g-lrp1', { mac: '0a:58:00:00:00:01', networks: ['10.9.0.1/24'], external_ids: ownedBy(owner, 'lrp:1') }, { parent: { table: 'Logical_Router', name: 'g-lr', column: 'ports' } }),
      desired('Logical_Router_Port', 'g-lrp2', { mac: '0a:58:00:00:00:02', networks: ['10.9.1.1/24'], external_ids: ownedBy(owner, 'lrp:2') }, { parent: { table: 'Logical_Router', name: 'g-lr', column: 'ports' } }),
      desired('Logical_Switch', 'g-ls', { other_config: { subnet: '10.9.0.0/24' }, external_ids: ownedBy(owner, 'ls:g-ls') }),
      desired('Logical_Switch_Port', 'g-lsp1', { addresses: ['router'], type: 'router', options: { 'router-port': 'g-lrp1' }, external_ids: ownedBy(owner, 'lsp:1') }, { parent: { table: 'Logical_Switch', name: 'g-ls', column: 'ports' } }),
      desired('Logical_Switch_Port', 'g-lsp2', { external_ids: ownedBy(owner, 'lsp:2') }, { parent: { table: 'Logical_Switch', name: 'g-ls', column: 'ports' } }),
    ];
    const plan = planSync(nb, owner, rows);
    assert.equal(plan.ops.filter((o) => o.op === 'insert').length, 6);
    assert.equal(plan.ops.filter((o) => o.op === 'wait').length, 6, 'each create is guarded');
    assert.equal((await syncOwned(nb, owner, rows)).length, 6);
    assert.deepEqual(await portsOf('Logical_Switch', 'g-ls'), ['g-lsp1', 'g-lsp2']);
    assert.deepEqual(await portsOf('Logical_Router', 'g-lr'), ['g-lrp1', 'g-lrp2']);
    assert.deepEqual(await syncOwned(nb, owner, rows, { prune: true }), []);
    assert.deepEqual(sorted(await deleteOwned(nb, owner)), [
      'delete Logical_Router g-lr', 'delete Logical_Router_Port g-lrp1', 'delete Logical_Router_Port g-lrp2',
      'delete Logical_Switch g-ls', 'delete Logical_Switch_Port g-lsp1', 'delete Logical_Switch_Port g-lsp2',
    ]);
    assert.equal(await server('Logical_Switch', 'g-ls'), undefined);
    assert.equal(await server('Logical_Router_Port', 'g-lrp1'), undefined);
  });

  test('a changed kovn key is updated on its own; a key someone else set beside it survives', async () => {
    assert.deepEqual(sorted(await ensurePodPort(nb, 'node-1', pod('web', 'node-1'))), ['insert Logical_Switch_Port default_web']);
    await nbctl('set', 'Logical_Switch_Port', 'default_web', 'external_ids:other-feature=1', 'options:foreign-opt=x');
    await until('the foreign keys cached', () => nb.cache.table('Logical_Switch_Port').byIndex({ name: 'default_web' })?.external_ids['other-feature'] === '1');

    const plan = planSync(nb, { type: 'Pod', name: 'default/web' }, [desired('Logical_Switch_Port', 'default_web', { options: { 'iface-id-ver': 'u2', 'requested-chassis': 'node-1' } })]);
    const writes = plan.ops.filter((o) => o.op === 'mutate' || o.op === 'update');
    assert.deepEqual(writes.map((o) => o.op === 'mutate' ? o.mutations : o.row), [[['options', 'delete', ['iface-id-ver']], ['options', 'insert', { 'iface-id-ver': 'u2' }]]],
      'only the changed key is written');

    assert.deepEqual(sorted(await ensurePodPort(nb, 'node-1', pod('web', 'node-1', 'u2'))), ['update Logical_Switch_Port default_web']);
    const row = await server('Logical_Switch_Port', 'default_web');
    assert.deepEqual(row?.options, { 'requested-chassis': 'node-1', 'iface-id-ver': 'u2', 'foreign-opt': 'x' });
    assert.equal(row?.external_ids['other-feature'], '1');
    assert.equal(row?.external_ids['k8s.ovn.org/owner-controller'], 'kovn');
    assert.deepEqual(await ensurePodPort(nb, 'node-1', pod('web', 'node-1', 'u2')), []);
    assert.deepEqual(ownedPodPorts(nb).find((p) => p.name === 'default_web'), { name: 'default_web', owner: 'default/web', uid: 'u2', node: 'node-1' });
  });

  test('a port whose node changed moves to the other switch in the same transaction', async () => {
    await ensurePodPort(nb, 'node-1', pod('mover', 'node-1', 'u1', '10.244.1.6/24'));
    assert.deepEqual(await portsOf('Logical_Switch', 'node-1'), ['default_mover', 'default_web', 'k8s-node-1', 'stor-node-1']);
    const moved = pod('mover', 'node-2', 'u9', '10.244.2.9/24');
    assert.deepEqual(sorted(await ensurePodPort(nb, 'node-2', moved)), ['update Logical_Switch_Port default_mover']);
    assert.deepEqual(await portsOf('Logical_Switch', 'node-1'), ['default_web', 'k8s-node-1', 'stor-node-1']);
    assert.deepEqual(await portsOf('Logical_Switch', 'node-2'), ['default_mover', 'k8s-node-2', 'stor-node-2']);
    assert.deepEqual((await server('Logical_Switch_Port', 'default_mover'))?.addresses, ['0a:58:0a:f4:02:09 10.244.2.9']);
    assert.deepEqual(await ensurePodPort(nb, 'node-2', moved), []);
  });

  test('a pod port is created only while no other port holds its address: a wait in the same transaction', async () => {
    // default_web holds 10.244.1.5; a second pod handed that address (a lost allocation) is refused at commit.
    assert.equal((await server('Logical_Switch_Port', 'default_web'))?.addresses[0]?.endsWith(' 10.244.1.5'), true);
    await assert.rejects(ensurePodPort(nb, 'node-1', pod('twin', 'node-1', 'u7')), (err: Error) => err.name === 'StalePlanError' && /create guard/.test(err.message));
    assert.equal(await server('Logical_Switch_Port', 'default_twin'), undefined);
    assert.deepEqual(sorted(await ensurePodPort(nb, 'node-1', pod('twin', 'node-1', 'u7', '10.244.1.7/24'))), ['insert Logical_Switch_Port default_twin']);
    assert.deepEqual(await deleteOwned(nb, { type: 'Pod', name: 'default/twin' }), [{ db: 'nb', table: 'Logical_Switch_Port', row: 'default_twin', op: 'delete' }]);
  });

  test('a prune deletes the owner\'s extra rows only: foreign rows, even on the same switch, stay as they were', async () => {
    const owner = { type: 'Node', name: 'node-1' } as const;
    const extra = desired('Logical_Switch_Port', 'extra-node-1', { external_ids: ownedBy(owner, 'lsp:extra-node-1') }, { parent: { table: 'Logical_Switch', name: 'node-1', column: 'ports' } });
    assert.deepEqual(await syncOwned(nb, owner, [extra]), [{ db: 'nb', table: 'Logical_Switch_Port', row: 'extra-node-1', op: 'insert' }]);
    await nbctl('lsp-add', 'node-1', 'foreign-1');
    // Looks like kovn's, but another controller owns it.
    await nbctl('lsp-add', 'node-1', 'lookalike', '--', 'set', 'Logical_Switch_Port', 'lookalike',
      'external_ids:k8s.ovn.org/owner-controller=other', 'external_ids:k8s.ovn.org/owner-type=Node', 'external_ids:k8s.ovn.org/name=node-1');
    await until('foreign ports cached', () => nb.cache.table('Logical_Switch_Port').byIndex({ name: 'lookalike' }) !== undefined);

    // The node's whole state (here without a gateway) is synced with a prune.
    const whole = () => ensureNodeGateway(nb, 'node-1', nodeTopology('node-1', ['10.244.1.0/24']), [], []);
    // (The switch takes the cluster's load balancer group on its first whole sync.)
    assert.deepEqual(await whole(), [{ db: 'nb', table: 'Logical_Switch', row: 'node-1', op: 'update' }, { db: 'nb', table: 'Logical_Switch_Port', row: 'extra-node-1', op: 'delete' }]);
    assert.equal((await server('Logical_Switch', 'node-1'))?.load_balancer_group?.length, 1);
    assert.equal(await server('Logical_Switch_Port', 'extra-node-1'), undefined);
    assert.deepEqual(await portsOf('Logical_Switch', 'node-1'), ['default_web', 'foreign-1', 'k8s-node-1', 'lookalike', 'stor-node-1']);
    assert.deepEqual((await server('Logical_Switch_Port', 'foreign-1'))?.external_ids, {});
    assert.deepEqual(await whole(), []);

    // Deleting a pod's rows touches nothing else.
    assert.deepEqual(await deleteOwned(nb, { type: 'Pod', name: 'default/web' }), [{ db: 'nb', table: 'Logical_Switch_Port', row: 'default_web', op: 'delete' }]);
    assert.deepEqual(await portsOf('Logical_Switch', 'node-1'), ['foreign-1', 'k8s-node-1', 'lookalike', 'stor-node-1']);
    assert.deepEqual(await deleteOwned(nb, { type: 'Pod', name: 'default/web' }), []);
  });

  test('a foreign port of the wanted name fails with ForeignPort and is left untouched', async () => {
    await nbctl('lsp-add', 'node-1', 'default_clash');
    await until('the foreign port cached', () => nb.cache.table('Logical_Switch_Port').byIndex({ name: 'default_clash' }) !== undefined);
    const err = await ensurePodPort(nb, 'node-2', pod('clash', 'node-2')).then(() => assert.fail('expected ForeignPort'), (e: unknown) => e);
    assert.equal((err as { name: string }).name, 'InvalidInputError');
    assert.equal((err as { reason: string }).reason, 'ForeignPort');
    assert.match((err as Error).message, /^logical switch port default_clash exists and is not owned by kovn/);
    assert.deepEqual([classify(err).retryable, classify(err).reason], [false, 'ForeignPort']);
    const row = await server('Logical_Switch_Port', 'default_clash');
    assert.deepEqual([row?.external_ids, row?.options, row?.addresses], [{}, {}, []]);
    assert.ok((await portsOf('Logical_Switch', 'node-1')).includes('default_clash'));
    assert.ok(!(await portsOf('Logical_Switch', 'node-2')).includes('default_clash'));

    await nbctl('ls-add', 'node-9');
    await until('the foreign switch cached', () => nb.cache.table('Logical_Switch').byColumn('name', 'node-9').length === 1);
    await assert.rejects(node('node-9', '10.244.9.0/24'), { name: 'InvalidInputError', reason: 'ForeignSwitch', message: /^logical switch node-9 exists and is not owned by kovn/ });
    assert.deepEqual((await server('Logical_Switch', 'node-9'))?.other_config, {});
  });

  test('a plan from a stale cache commits nothing: its wait fails', async () => {
    await ensurePodPort(nb, 'node-2', pod('stale', 'node-2', 'u1', '10.244.2.20/24'));
    proxy.hold(); // kovn's cache stops hearing from the server
    try {
      await nbctl('set', 'Logical_Switch_Port', 'default_stale', 'options:iface-id-ver=theirs', 'addresses="0a:58:0a:f4:02:63 10.244.2.99"');
      const plan = planSync(nb, { type: 'Pod', name: 'default/stale' }, [desired('Logical_Switch_Port', 'default_stale', {
        options: { 'iface-id-ver': 'u2' }, addresses: ['0a:58:0a:f4:02:14 10.244.2.20'],
      })]);
      // From the stale cache only the uid differs; the wait carries the cached options it read.
      assert.deepEqual(plan.changes, [{ db: 'nb', table: 'Logical_Switch_Port', row: 'default_stale', op: 'update' }]);
      const sent = nb.transact(plan.ops);
      setTimeout(() => proxy.release(), 100);
      const err = await sent.then(() => assert.fail('expected the wait to fail'), (e: unknown) => e as { name: string; failed: { op: string } });
      assert.equal(err.name, 'OvsdbTimedOutError');
      assert.equal(err.failed.op, 'wait');
    } finally {
      proxy.release();
    }
    const row = await server('Logical_Switch_Port', 'default_stale');
    assert.equal(row?.options['iface-id-ver'], 'theirs', 'nothing of the stale plan was committed');
    assert.deepEqual(row?.addresses, ['0a:58:0a:f4:02:63 10.244.2.99']);
  });

  test('a stale plan is re-planned from the refreshed cache and converges: row changed, row deleted, connection lost', async () => {
    const cases: { what: string; meanwhile: () => Promise<unknown>; lose?: boolean; expect: string[]; error: string }[] = [
      { what: 'changed', meanwhile: () => nbctl('set', 'Logical_Switch_Port', 'default_stale', 'options:iface-id-ver=again', 'external_ids:other-feature=2'),
        expect: ['update Logical_Switch_Port default_stale'], error: 'OvsdbTimedOutError' },
      { what: 'deleted', meanwhile: () => nbctl('lsp-del', 'default_stale'), expect: ['insert Logical_Switch_Port default_stale'], error: 'OvsdbTimedOutError' },
      { what: 'connection lost', meanwhile: () => nbctl('set', 'Logical_Switch_Port', 'default_stale', 'options:iface-id-ver=lost'), lose: true,
        expect: ['update Logical_Switch_Port default_stale'], error: 'OvsdbDisconnectedError' },
    ];
    let uid = 10;
    for (const c of cases) {
      const want = pod('stale', 'node-2', `u${uid++}`, '10.244.2.20/24');
      await ensurePodPort(nb, 'node-2', want); // in sync to begin with
      const next = pod('stale', 'node-2', `u${uid++}`, '10.244.2.20/24');
      proxy.hold();
      const retries: string[] = [];
      let changes: Change[];
      try {
        await c.meanwhile();
        const synced = syncOwned(nb, { type: 'Pod', name: 'default/stale' }, [desired('Logical_Switch_Port', next.name, {
          type: next.type, addresses: next.addresses, port_security: next.port_security, options: next.options, external_ids: next.external_ids,
        }, { parent: { table: 'Logical_Switch', name: 'node-2', column: 'ports' } })], {
          prune: true, onRetry: ({ error }) => retries.push((error as Error).name),
        });
        setTimeout(() => (c.lose ? proxy.dropCurrent() : proxy.release()), 100);
        changes = await synced;
      } finally {
        proxy.release();
      }
      assert.deepEqual(retries, [c.error], `${c.what}: one stale attempt, then a fresh plan`);
      assert.deepEqual(sorted(changes), c.expect, c.what);
      const row = await server('Logical_Switch_Port', 'default_stale');
      assert.equal(row?.options['iface-id-ver'], next.options['iface-id-ver'], c.what);
      assert.deepEqual(row?.addresses, next.addresses, c.what);
      if (c.what === 'changed') assert.equal(row?.external_ids['other-feature'], '2', 'their key survives the re-plan');
      assert.ok((await portsOf('Logical_Switch', 'node-2')).includes('default_stale'), c.what);
      assert.deepEqual(await ensurePodPort(nb, 'node-2', next), [], c.what);
    }
  });

  test('a plan still stale after its last attempt gives up with a retryable StalePlanError, committing nothing', async () => {
    const owner = { type: 'Pod', name: 'default/stale' } as const;
    const retries: number[] = [];
    proxy.hold();
    let err: Error;
    try {
      await nbctl('set', 'Logical_Switch_Port', 'default_stale', 'options:iface-id-ver=busy');
      const synced = syncOwned(nb, owner, [desired('Logical_Switch_Port', 'default_stale', { options: { 'iface-id-ver': 'never' } })],
        { attempts: 1, onRetry: ({ attempt }) => retries.push(attempt) });
      setTimeout(() => proxy.release(), 100);
      err = await synced.then(() => assert.fail('expected StalePlanError'), (e: unknown) => e as Error);
    } finally {
      proxy.release();
    }
    assert.equal(err.name, 'StalePlanError');
    assert.deepEqual(retries, []);
    assert.equal((err.cause as Error).name, 'OvsdbTimedOutError');
    assert.deepEqual([classify(err).retryable, classify(err).reason], [true, 'StalePlan']);
    assert.equal((await server('Logical_Switch_Port', 'default_stale'))?.options['iface-id-ver'], 'busy');
  });

  test('a Service\'s load balancers: the cluster row in the group, a per-node row on its switch, one transaction each change; pruned by owner', async () => {
    const owner = { type: 'Service', name: 'default/web' } as const;
    const svc = { metadata: { namespace: 'default', name: 'web' }, spec: { type: 'NodePort', clusterIPs: ['10.96.0.20'], ports: [{ port: 80, nodePort: 30080, protocol: 'SCTP' }] } };
    const slice = (ips: string[]) => [{ addressType: 'IPv4', endpoints: ips.map((ip) => ({ addresses: [ip] })), ports: [{ name: '', port: 8080, protocol: 'SCTP' }] }];
    const nodes = [{ name: 'node-1', ips: ['172.29.0.11'] }];
    // node-1 has a switch but no gateway router here: only its switch row is wanted.
    const reach = { ...IPV4_CLUSTER, clusterNetworks: IPV4_CLUSTER.clusterNetworks.map((c) => c.cidr), nodeSubnets: new Map([['node-1', ['10.244.1.0/24']]]) };
    const rows = (ips: string[]) => serviceLoadBalancers(svc, slice(ips), nodes, reach).rows.filter((r) => r.parent?.table !== 'Logical_Router');
    const lb = async (name: string) => {
      const [r] = await other.transact([ops.select('Load_Balancer', [['name', '==', name]])]);
      return r!.rows![0] as NB['Load_Balancer'] | undefined;
    };
    assert.deepEqual(sorted(await ensureServiceLoadBalancers(nb, owner, rows(['10.244.1.5']))), [
      'insert Load_Balancer Service_default/web_SCTP_cluster', 'insert Load_Balancer Service_default/web_SCTP_node_switch_node-1',
    ]);
    const cluster = await lb('Service_default/web_SCTP_cluster');
    assert.equal(cluster?.protocol, 'sctp');
    assert.deepEqual(cluster?.vips, { '10.96.0.20:80': '10.244.1.5:8080' });
    const [g] = await other.transact([ops.select('Load_Balancer_Group', [['name', '==', 'clusterLBGroup']])]);
    assert.ok((g!.rows![0]!.load_balancer as string[]).includes(cluster._uuid), 'in the cluster group');
    const perNode = await lb('Service_default/web_SCTP_node_switch_node-1');
    assert.ok((await server('Logical_Switch', 'node-1'))?.load_balancer?.includes(perNode!._uuid), 'on the node switch');
    assert.deepEqual(await ensureServiceLoadBalancers(nb, owner, rows(['10.244.1.5'])), []);
    assert.deepEqual(serviceOwners(nb), ['default/web']);
    // An endpoint change rewrites the two rows in one transaction.
    assert.deepEqual(sorted(await ensureServiceLoadBalancers(nb, owner, rows(['10.244.1.5', '10.244.1.6']))), [
      'update Load_Balancer Service_default/web_SCTP_cluster', 'update Load_Balancer Service_default/web_SCTP_node_switch_node-1',
    ]);
    assert.deepEqual((await lb('Service_default/web_SCTP_cluster'))?.vips, { '10.96.0.20:80': '10.244.1.5:8080,10.244.1.6:8080' });
    // The Service becomes ClusterIP: its per-node row goes.
    assert.deepEqual(await ensureServiceLoadBalancers(nb, owner, rows(['10.244.1.5', '10.244.1.6']).filter((r) => r.name.endsWith('_cluster'))),
      [{ db: 'nb', table: 'Load_Balancer', row: 'Service_default/web_SCTP_node_switch_node-1', op: 'delete' }]);
    assert.equal((await server('Logical_Switch', 'node-1'))?.load_balancer?.length, 0);
    assert.deepEqual(await deleteOwned(nb, owner), [{ db: 'nb', table: 'Load_Balancer', row: 'Service_default/web_SCTP_cluster', op: 'delete' }]);
    assert.equal(await lb('Service_default/web_SCTP_cluster'), undefined);
    assert.deepEqual(serviceOwners(nb), []);
  });

  test('a create guard that does not hold (a subnet claimed meanwhile) fails at once, retryable, for the caller to re-plan', async () => {
    const t = nodeTopology('node-3', ['10.244.1.0/24']); // node-1's subnet
    const err = await ensureNodeTopology(nb, 'node-3', t, [noSwitchWithSubnet('subnet', '10.244.1.0/24')])
      .then(() => assert.fail('expected StalePlanError'), (e: unknown) => e as Error);
    assert.equal(err.name, 'StalePlanError');
    assert.match(err.message, /create guard no longer holds/);
    assert.equal(classify(err).retryable, true);
    assert.equal(await server('Logical_Switch', 'node-3'), undefined);
    assert.equal(await server('Logical_Switch_Port', 'k8s-node-3'), undefined);
  });

  test('a policy\'s rows: ACLs keyed by row id under their port group, address sets changed by delta, a new pod port joining its groups in the transaction that creates it', async () => {
    const owner = { type: 'NetworkPolicy' as const, name: 'default/p' };
    const acl = (id: string, match: string) => desired('ACL', id, {
      name: 'NP:default:p:Ingress:0', priority: 1001, direction: 'to-lport', match, action: 'allow-related', log: false, options: {}, external_ids: ownedBy(owner, id),
    }, { parent: { table: 'Port_Group', name: 'a1', column: 'acls' } });
    const rows = (addresses: string[], match = 'outport == @a1 && ip4.src == $a1_v4') => [
      desired('Port_Group', 'a1', { ports: [], external_ids: ownedBy(owner, 'pg:a1') }),
      desired('Address_Set', 'a1_v4', { addresses, external_ids: ownedBy(owner, 'as:a1_v4') }),
      acl('acl:default/p:Ingress:0', match),
    ];
    const sync = (r: ReturnType<typeof rows>) => syncOwned(nb, owner, r, { prune: true, tables: ['Port_Group', 'ACL', 'Address_Set'] });
    assert.deepEqual(sorted(await sync(rows(['10.244.1.5', '10.244.1.6']))),
      ['insert ACL acl:default/p:Ingress:0', 'insert Address_Set a1_v4', 'insert Port_Group a1']);
    assert.deepEqual(await sync(rows(['10.244.1.5', '10.244.1.6'])), [], 'a second call changes nothing');
    // A peer left and another came: one mutation of the set, the ACL untouched.
    const plan = planSync(nb, owner, rows(['10.244.1.6', '10.244.1.7']), { prune: true, tables: ['Port_Group', 'ACL', 'Address_Set'] });
    const mutate = plan.ops.filter((o) => o.op === 'mutate' || o.op === 'update');
    assert.deepEqual(mutate.map((o) => (o.op === 'mutate' ? o.mutations : o.row)), [[['addresses', 'insert', ['10.244.1.7']], ['addresses', 'delete', ['10.244.1.5']]]]);
    assert.deepEqual(await sync(rows(['10.244.1.6', '10.244.1.7'])), [{ db: 'nb', table: 'Address_Set', row: 'a1_v4', op: 'update' }]);
    assert.equal(await nbctl('get', 'Address_Set', 'a1_v4', 'addresses'), '["10.244.1.6", "10.244.1.7"]');
    // Two ACLs may share a display name: each is its own row by id; the one no longer wanted is pruned.
    await sync([...rows(['10.244.1.6']), acl('acl:default/p:Ingress:1', 'outport == @a1 && tcp.dst == 80')]);
    assert.equal((await nbctl('--bare', '--columns=match', 'find', 'ACL', 'name="NP:default:p:Ingress:0"')).split('\n').filter(Boolean).length, 2);
    assert.deepEqual(await sync(rows(['10.244.1.6'])), [{ db: 'nb', table: 'ACL', row: 'acl:default/p:Ingress:1', op: 'delete' }]);
    // A new pod's port is in the group from the transaction that creates it.
    await ensurePodPort(nb, 'node-1', pod('guarded', 'node-1', 'ug', '10.244.1.40/24'), ['a1', 'no-such-group']);
    const lspUuid = await nbctl('get', 'Logical_Switch_Port', 'default_guarded', '_uuid');
    assert.equal(await nbctl('get', 'Port_Group', 'a1', 'ports'), `[${lspUuid}]`);
    assert.deepEqual(await deleteOwned(nb, { type: 'Pod', name: 'default/guarded' }), [{ db: 'nb', table: 'Logical_Switch_Port', row: 'default_guarded', op: 'delete' }]);
    assert.equal(await nbctl('get', 'Port_Group', 'a1', 'ports'), '[]', 'a weak reference: the port\'s deletion leaves the group');
    assert.equal((await deleteOwned(nb, owner)).length, 3);
    assert.equal(await nbctl('--bare', '--columns=name', 'find', 'ACL', 'name="NP:default:p:Ingress:0"'), '');
  });
});
