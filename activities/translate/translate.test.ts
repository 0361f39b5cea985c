import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DUAL_STACK_CLUSTER, IPV4_CLUSTER } from '../../lib/cluster-config.ts';
import { podNetworks, podPort } from './pod.ts';
import { clusterTopology, macFromIp, nodeTopology } from './topology.ts';
import { OWNER_CONTROLLER, ROW_ID, ownerOf } from './ownership.ts';

test('MACs derive from addresses as in OVN-Kubernetes', () => {
  const table: [string, string][] = [
    ['10.244.1.5', '0a:58:0a:f4:01:05'],
    ['10.244.1.1/24', '0a:58:0a:f4:01:01'],
    ['fd00:10:244:1::5', '0a:58:00:00:00:05'],
  ];
  for (const [ip, mac] of table) assert.equal(macFromIp(ip), mac, ip);
});

test('cluster topology: the cluster router and the join switch, per family', () => {
  const v4 = clusterTopology(IPV4_CLUSTER);
  assert.equal(v4.router.name, 'ovn_cluster_router');
  assert.deepEqual(v4.join.routerPort.networks, ['100.64.0.1/16']);
  assert.equal(v4.join.switchPort.options['router-port'], 'rtoj-ovn_cluster_router');
  assert.equal(v4.join.switchPort.name, 'jtor-ovn_cluster_router');
  const dual = clusterTopology(DUAL_STACK_CLUSTER);
  assert.deepEqual(dual.join.routerPort.networks, ['100.64.0.1/16', 'fd98::1/64']);
  assert.deepEqual(ownerOf(dual.join.sw.external_ids), { type: 'Cluster', name: 'default' });
});

test('node topology: switch with subnets, gateway router port, management port', () => {
  const table = [
    {
      subnets: ['10.244.1.0/24'],
      other: { subnet: '10.244.1.0/24', exclude_ips: '10.244.1.1..10.244.1.2' },
      networks: ['10.244.1.1/24'],
      mgmt: '0a:58:0a:f4:01:02 10.244.1.2',
    },
    {
      subnets: ['10.244.2.0/24', 'fd00:10:244:2::/64'],
      other: { subnet: '10.244.2.0/24', exclude_ips: '10.244.2.1..10.244.2.2', ipv6_prefix: 'fd00:10:244:2::' },
      networks: ['10.244.2.1/24', 'fd00:10:244:2::1/64'],
      mgmt: '0a:58:0a:f4:02:02 10.244.2.2 fd00:10:244:2::2',
    },
  ];
  for (const row of table) {
    const t = nodeTopology('node-1', row.subnets);
    assert.equal(t.sw.name, 'node-1');
    assert.deepEqual(t.sw.other_config, row.other);
    assert.deepEqual(t.routerPort.networks, row.networks);
    assert.equal(t.routerPort.name, 'rtos-node-1');
    assert.equal(t.switchPort.type, 'router');
    assert.equal(t.mgmt.name, 'k8s-node-1');
    assert.deepEqual(t.mgmt.addresses, [row.mgmt]);
    assert.deepEqual(t.mgmt.port_security, [], 'pod -> node IP arrives through it');
    assert.equal(t.mgmt.options['requested-chassis'], 'node-1');
    for (const r of [t.sw, t.routerPort, t.switchPort, t.mgmt]) {
      assert.equal(r.external_ids[OWNER_CONTROLLER], 'kovn');
      assert.deepEqual(ownerOf(r.external_ids), { type: 'Node', name: 'node-1' });
    }
  }
});

test('pod port and pod-networks annotation, IPv4 and dual-stack', () => {
  const pod = { namespace: 'default', name: 'web', uid: 'u-1', node: 'node-2' };
  const port = podPort(pod, ['10.244.2.7/24', 'fd00:10:244:2::7/64']);
  assert.equal(port.name, 'default_web');
  assert.deepEqual(port.addresses, ['0a:58:0a:f4:02:07 10.244.2.7 fd00:10:244:2::7']);
  assert.deepEqual(port.port_security, port.addresses);
  assert.deepEqual(port.options, { 'requested-chassis': 'node-2', 'iface-id-ver': 'u-1' });
  assert.equal(port.external_ids[ROW_ID], 'lsp:default_web');
  assert.deepEqual(ownerOf(port.external_ids), { type: 'Pod', name: 'default/web' });
  assert.deepEqual(podNetworks(['10.244.2.7/24'], ['10.244.2.0/24']), {
    default: { ip_addresses: ['10.244.2.7/24'], mac_address: '0a:58:0a:f4:02:07', gateway_ips: ['10.244.2.1'],
      ip_address: '10.244.2.7/24', gateway_ip: '10.244.2.1', role: 'primary' },
  });
  const dual = podNetworks(['10.244.2.7/24', 'fd00:10:244:2::7/64'], ['10.244.2.0/24', 'fd00:10:244:2::/64']);
  assert.deepEqual(dual.default?.gateway_ips, ['10.244.2.1', 'fd00:10:244:2::1']);
});
