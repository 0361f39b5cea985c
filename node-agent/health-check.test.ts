// healthCheckNodePort as kube-proxy answers it, by tables: which Services have one, how many local
// endpoints count, and 200/503; then the server itself on a loopback port.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { HealthServers, healthAnswer, healthChecksOf } from './health-check.ts';

const svc = (name: string, spec: V1Service['spec']): V1Service => ({ metadata: { namespace: 'default', name }, spec: { type: 'LoadBalancer', ...spec } });
const slice = (svcName: string, eps: { ip: string; node: string; ready?: boolean; uid?: string }[], family = 'IPv4'): V1EndpointSlice => ({
  addressType: family, metadata: { namespace: 'default', name: `${svcName}-${family}`, labels: { 'kubernetes.io/service-name': svcName } },
  endpoints: eps.map((e) => ({ addresses: [e.ip], nodeName: e.node, conditions: { ready: e.ready ?? true }, ...(e.uid ? { targetRef: { kind: 'Pod', uid: e.uid } } : {}) })),
});

test('health checks: ETP=Local Services with a port; ready endpoints on this node, a dual-stack pod once', () => {
  const services = [
    svc('local', { externalTrafficPolicy: 'Local', healthCheckNodePort: 32000 }),
    svc('cluster', { externalTrafficPolicy: 'Cluster' }),
    svc('none-here', { externalTrafficPolicy: 'Local', healthCheckNodePort: 31000 }),
  ];
  const slices = [
    slice('local', [{ ip: '10.244.1.5', node: 'node-1', uid: 'p1' }, { ip: '10.244.1.6', node: 'node-1', ready: false, uid: 'p2' }, { ip: '10.244.2.5', node: 'node-2', uid: 'p3' }]),
    slice('local', [{ ip: 'fd00:10:244:1::5', node: 'node-1', uid: 'p1' }], 'IPv6'),
    slice('none-here', [{ ip: '10.244.2.9', node: 'node-2' }]),
  ];
  assert.deepEqual(healthChecksOf(services, slices, 'node-1'), [
    { port: 31000, namespace: 'default', name: 'none-here', local: 0 },
    { port: 32000, namespace: 'default', name: 'local', local: 1 },
  ]);
});

test('answers: 200 with local endpoints, 503 without, kube-proxy\'s body', () => {
  assert.deepEqual(healthAnswer({ port: 1, namespace: 'default', name: 'a', local: 2 }),
    { status: 200, body: '{"service":{"namespace":"default","name":"a"},"localEndpoints":2,"serviceProxyHealthy":true}' });
  assert.equal(healthAnswer({ port: 1, namespace: 'default', name: 'a', local: 0 }).status, 503);
});

test('the servers follow the checks: a port opens, answers from the latest state, and closes', async () => {
  const s = new HealthServers(() => undefined);
  const port = 20_000 + (process.pid % 10_000);
  const get = async (): Promise<number> => (await fetch(`http://127.0.0.1:${port}/`)).status;
  try {
    s.sync([{ port, namespace: 'default', name: 'a', local: 1 }]);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(await get(), 200);
    s.sync([{ port, namespace: 'default', name: 'a', local: 0 }]);
    assert.equal(await get(), 503);
    s.sync([]);
    await new Promise((r) => setTimeout(r, 50));
    await assert.rejects(get());
  } finally {
    s.close();
  }
});
