// The node gateway's translation, by tables: names, addresses per family, routes, NAT, policies and the
// annotations in OVN-Kubernetes' formats.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DUAL_STACK_CLUSTER, IPV4_CLUSTER } from '../../lib/cluster-config.ts';
import { factsProblem, gatewayAnnotations, joinAddresses, lowestFreeId, maxNodeId, nodeGateway } from './gateway.ts';
import type { GatewayInput } from './gateway.ts';
import { ROW_ID, ownerOf } from './ownership.ts';

const v4: GatewayInput = {
  node: 'node-1', nodeId: 2, chassisId: 'chassis-1', subnets: ['10.244.1.0/24'], internalIps: ['172.29.0.11'],
  facts: { bridge: 'breth0', mac: '0a:00:00:00:00:11', ipAddresses: ['172.29.0.11/24'], nextHops: ['172.29.0.2'] },
};
const dual: GatewayInput = {
  ...v4, nodeId: 5, subnets: ['10.244.1.0/24', 'fd00:10:244:1::/64'], internalIps: ['172.29.0.11', 'fd00:172:29::11'],
  facts: { ...v4.facts, ipAddresses: ['172.29.0.11/24', 'fd00:172:29::11/64'], nextHops: ['172.29.0.2', 'fd00:172:29::2'] },
};

const row = (rows: ReturnType<typeof nodeGateway>['rows'], table: string, name: string) => {
  const r = rows.find((x) => x.table === table && x.name === name);
  assert.ok(r, `${table} ${name} in ${rows.map((x) => `${x.table} ${x.name}`).join(', ')}`);
  return r.columns as Record<string, unknown>;
};

test('join addresses: the cluster router at base + 1, a gateway router at base + node id', () => {
  assert.deepEqual(joinAddresses(IPV4_CLUSTER), ['100.64.0.1/16']);
  assert.deepEqual(joinAddresses(DUAL_STACK_CLUSTER, 2), ['100.64.0.2/16', 'fd98::2/64']);
  assert.deepEqual(joinAddresses(IPV4_CLUSTER, 300), ['100.64.1.44/16']);
  assert.equal(maxNodeId(IPV4_CLUSTER), 65534);
  const table: [number[], number | undefined][] = [[[], 2], [[2, 3], 4], [[3], 2], [[2, 3, 4], undefined]];
  for (const [taken, want] of table) assert.equal(lowestFreeId(new Set(taken), 4), want, JSON.stringify(taken));
});

test('gateway rows: names, options, addresses and owners as OVN-Kubernetes has them', () => {
  const { rows, macBindings } = nodeGateway(IPV4_CLUSTER, v4);
  const gr = row(rows, 'Logical_Router', 'GR_node-1');
  assert.deepEqual(gr.options, { chassis: 'chassis-1', lb_force_snat_ip: 'router_ip', 'snat-ct-zone': '0', always_learn_from_arp_request: 'false', dynamic_neigh_routers: 'true' });
  assert.equal((gr.external_ids as Record<string, string>)['k8s.ovn.org/node-id'], '2');
  assert.equal((gr.external_ids as Record<string, string>).physical_ip, '172.29.0.11');
  assert.deepEqual(row(rows, 'Logical_Router_Port', 'rtoj-GR_node-1').networks, ['100.64.0.2/16']);
  assert.deepEqual(row(rows, 'Logical_Router_Port', 'rtoj-GR_node-1').options, { gateway_mtu: '1400' });
  assert.deepEqual(row(rows, 'Logical_Switch_Port', 'jtor-GR_node-1').options, { 'router-port': 'rtoj-GR_node-1' });
  assert.deepEqual(row(rows, 'Logical_Router_Port', 'rtoe-GR_node-1').networks, ['172.29.0.11/24']);
  assert.equal(row(rows, 'Logical_Router_Port', 'rtoe-GR_node-1').mac, '0a:00:00:00:00:11');
  assert.deepEqual(row(rows, 'Logical_Switch_Port', 'breth0_node-1').options, { network_name: 'physnet' });
  assert.equal(row(rows, 'Logical_Switch_Port', 'breth0_node-1').type, 'localnet');
  row(rows, 'Logical_Switch', 'ext_node-1');
  assert.deepEqual(macBindings, [{ logical_port: 'rtoe-GR_node-1', ip: '169.254.169.4', mac: '0a:58:a9:fe:a9:04' }]);
  for (const r of rows) {
    const ext = (r.columns as { external_ids: Record<string, string> }).external_ids;
    assert.deepEqual(ownerOf(ext), { type: 'Node', name: 'node-1' }, `${r.table} ${r.name}`);
    if (!['Logical_Router', 'Logical_Router_Port', 'Logical_Switch', 'Logical_Switch_Port'].includes(r.table)) assert.equal(ext[ROW_ID], r.name);
  }
});

test('routes, NAT and policies per family', () => {
  const table = [
    {
      input: v4, cfg: IPV4_CLUSTER,
      routes: [
        ['GR_node-1:cluster:10.244.0.0/16', '10.244.0.0/16', '100.64.0.1', undefined, undefined],
        ['GR_node-1:default:v4', '0.0.0.0/0', '172.29.0.2', 'rtoe-GR_node-1', undefined],
        ['GR_node-1:masquerade:v4', '169.254.169.0/29', '169.254.169.4', 'rtoe-GR_node-1', undefined],
        ['ovn_cluster_router:node:node-1:10.244.1.0/24', '10.244.1.0/24', '100.64.0.2', undefined, 'src-ip'],
        ['ovn_cluster_router:join:node-1:v4', '100.64.0.2', '100.64.0.2', undefined, undefined],
      ],
      nat: [['GR_node-1:snat:10.244.0.0/16', '10.244.0.0/16', '172.29.0.11']],
      policies: [['inport == "rtos-node-1" && ip4.dst == 172.29.0.11 /* node-1 */', '10.244.1.2']],
    },
    {
      input: dual, cfg: DUAL_STACK_CLUSTER,
      routes: [
        ['GR_node-1:cluster:10.244.0.0/16', '10.244.0.0/16', '100.64.0.1', undefined, undefined],
        ['GR_node-1:default:v4', '0.0.0.0/0', '172.29.0.2', 'rtoe-GR_node-1', undefined],
        ['GR_node-1:masquerade:v4', '169.254.169.0/29', '169.254.169.4', 'rtoe-GR_node-1', undefined],
        ['ovn_cluster_router:node:node-1:10.244.1.0/24', '10.244.1.0/24', '100.64.0.5', undefined, 'src-ip'],
        ['ovn_cluster_router:join:node-1:v4', '100.64.0.5', '100.64.0.5', undefined, undefined],
        ['GR_node-1:cluster:fd00:10:244::/48', 'fd00:10:244::/48', 'fd98::1', undefined, undefined],
        ['GR_node-1:default:v6', '::/0', 'fd00:172:29::2', 'rtoe-GR_node-1', undefined],
        ['GR_node-1:masquerade:v6', 'fd69::/125', 'fd69::4', 'rtoe-GR_node-1', undefined],
        ['ovn_cluster_router:node:node-1:fd00:10:244:1::/64', 'fd00:10:244:1::/64', 'fd98::5', undefined, 'src-ip'],
        ['ovn_cluster_router:join:node-1:v6', 'fd98::5', 'fd98::5', undefined, undefined],
      ],
      nat: [['GR_node-1:snat:10.244.0.0/16', '10.244.0.0/16', '172.29.0.11'], ['GR_node-1:snat:fd00:10:244::/48', 'fd00:10:244::/48', 'fd00:172:29::11']],
      policies: [
        ['inport == "rtos-node-1" && ip4.dst == 172.29.0.11 /* node-1 */', '10.244.1.2'],
        ['inport == "rtos-node-1" && ip6.dst == fd00:172:29::11 /* node-1 */', 'fd00:10:244:1::2'],
      ],
    },
  ];
  for (const t of table) {
    const { rows } = nodeGateway(t.cfg, t.input);
    const routes = rows.filter((r) => r.table === 'Logical_Router_Static_Route').map((r) => {
      const c = r.columns as Record<string, unknown>;
      return [r.name, c.ip_prefix, c.nexthop, c.output_port, c.policy];
    });
    assert.deepEqual(routes, t.routes);
    assert.deepEqual(rows.filter((r) => r.table === 'NAT').map((r) => [r.name, (r.columns as Record<string, unknown>).logical_ip, (r.columns as Record<string, unknown>).external_ip]), t.nat);
    assert.deepEqual(rows.filter((r) => r.table === 'Logical_Router_Policy').map((r) => [(r.columns as Record<string, unknown>).match, ((r.columns as Record<string, unknown>).nexthops as string[])[0]]), t.policies);
  }
});

test('annotations in OVN-Kubernetes\' JSON formats', () => {
  const a = gatewayAnnotations(DUAL_STACK_CLUSTER, dual);
  assert.equal(a.nodeId, '5');
  assert.deepEqual(a.lrpIfaddr, { ipv4: '100.64.0.5/16', ipv6: 'fd98::5/64' });
  assert.deepEqual(a.primaryIfaddr, { ipv4: '172.29.0.11/24', ipv6: 'fd00:172:29::11/64' });
  assert.deepEqual(a.l3GatewayConfig, {
    default: {
      mode: 'shared', 'bridge-id': 'breth0', 'interface-id': 'breth0_node-1', 'mac-address': '0a:00:00:00:00:11',
      'ip-addresses': ['172.29.0.11/24', 'fd00:172:29::11/64'], 'ip-address': '172.29.0.11/24',
      'next-hops': ['172.29.0.2', 'fd00:172:29::2'], 'next-hop': '172.29.0.2', 'node-port-enable': 'true', 'vlan-id': '0',
    },
  });
});

test('bad facts from a node agent are named', () => {
  const table: [GatewayInput['facts'], RegExp | undefined][] = [
    [v4.facts, undefined],
    [{ ...v4.facts, mac: 'zz' }, /not a MAC/],
    [{ ...v4.facts, ipAddresses: [] }, /no IPv4 address/],
    [{ ...v4.facts, nextHops: [] }, /no IPv4 default route/],
  ];
  for (const [facts, want] of table) {
    const p = factsProblem(IPV4_CLUSTER, facts);
    if (want) assert.match(p ?? '', want);
    else assert.equal(p, undefined);
  }
  assert.match(factsProblem(DUAL_STACK_CLUSTER, v4.facts) ?? '', /no IPv6 address/);
});
