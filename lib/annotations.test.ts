import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AnnotationError, NODE_SUBNETS, NodeSubnets, POD_NETWORKS, PodNetworks, readAnnotation } from './annotations.ts';

test('node-subnets: OVN-K list and single-string forms', () => {
  assert.deepEqual(readAnnotation({ [NODE_SUBNETS]: '{"default":["10.244.1.0/24","fd00:10:244:1::/64"]}' }, NODE_SUBNETS, NodeSubnets),
    { default: ['10.244.1.0/24', 'fd00:10:244:1::/64'] });
  assert.deepEqual(readAnnotation({ [NODE_SUBNETS]: '{"default":"10.244.2.0/24"}' }, NODE_SUBNETS, NodeSubnets), { default: ['10.244.2.0/24'] });
  assert.equal(readAnnotation({}, NODE_SUBNETS, NodeSubnets), undefined);
});

test('malformed annotations name the annotation and the bad field', () => {
  const cases: [string, RegExp][] = [
    ['garbage', /k8s\.ovn\.org\/node-subnets: not JSON/],
    ['{"default":["10.244.1.0/33"]}', /default\.0: not a CIDR/],
    ['{"default":[]}', /default/],
  ];
  for (const [raw, want] of cases) {
    assert.throws(() => readAnnotation({ [NODE_SUBNETS]: raw }, NODE_SUBNETS, NodeSubnets), (e: unknown) => e instanceof AnnotationError && want.test(e.message));
  }
  assert.throws(() => readAnnotation({ [POD_NETWORKS]: '{"default":{"ip_addresses":["10.1.1.1/24"],"mac_address":"zz"}}' }, POD_NETWORKS, PodNetworks),
    /default\.mac_address: not a lower-case MAC/);
});

test('pod-networks in the format OVN-K writes', () => {
  const raw = JSON.stringify({ default: { ip_addresses: ['10.244.1.5/24', 'fd00:10:244:1::5/64'], mac_address: '0a:58:0a:f4:01:05',
    gateway_ips: ['10.244.1.1', 'fd00:10:244:1::1'], ip_address: '10.244.1.5/24', gateway_ip: '10.244.1.1', role: 'primary' } });
  const parsed = readAnnotation({ [POD_NETWORKS]: raw }, POD_NETWORKS, PodNetworks);
  assert.equal(parsed?.default?.mac_address, '0a:58:0a:f4:01:05');
});
