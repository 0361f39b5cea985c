// Services on the cluster in a box (IPv4, 2 nodes), with the real EndpointSlice controller and real pods:
// a ClusterIP on every port from the other node, spread over its endpoints; ClientIP affinity sticks;
// hairpin; no endpoint is a reset at once; the load balancer follows endpoints leaving; the `kubernetes`
// Service from a pod; NodePort from a pod on its own node; a bad target port is an
// Event; headless gets no load balancer; a restart writes nothing; a deletion leaves no row.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { files } from '../../deploy/local/config.ts';
import { kubectl, kubectlJson } from '../../deploy/local/kubectl.ts';
import { run } from '../../lib/exec.ts';
import { kovn } from '../box/helpers.ts';
import { curlFromNode, events, exec, killAndWaitBack, nbctl, until, useBox, waitReady } from '../pods/helpers.ts';

/** A backend: httpd on 8080 (port `http`) and 8081 (port `alt`), each page saying which pod answered. */
const backend = (name: string, node: string, app = 'web'): unknown => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', labels: { app } },
  spec: {
    nodeSelector: { 'kubernetes.io/hostname': node }, terminationGracePeriodSeconds: 0,
    containers: [{
      name: 'c', image: 'kovn.local/toolbox:1', imagePullPolicy: 'IfNotPresent',
      command: ['sh', '-c', 'mkdir -p /w /a && echo $(hostname) > /w/index.html && echo alt-$(hostname) > /a/index.html && httpd -p 8081 -h /a && exec httpd -f -p 8080 -h /w'],
      ports: [{ name: 'http', containerPort: 8080 }, { name: 'alt', containerPort: 8081 }],
      readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
    }],
  },
});
const client = (name: string, node: string): unknown => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default' },
  spec: {
    nodeSelector: { 'kubernetes.io/hostname': node }, terminationGracePeriodSeconds: 0,
    containers: [{ name: 'c', image: 'kovn.local/toolbox:1', imagePullPolicy: 'IfNotPresent', command: ['sleep', '3600'] }],
  },
});
const service = (name: string, spec: Record<string, unknown>): unknown => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec });
const apply = (...items: unknown[]): Promise<string> => kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }) });

const clusterIp = async (svc: string): Promise<string> => (await kubectlJson<{ spec: { clusterIP: string } }>(['get', 'service', svc])).spec.clusterIP;

/** One HTTP GET from a pod (busybox wget under `timeout`); '' when it fails. */
const get = (pod: string, url: string): Promise<string> => exec(pod, ['timeout', '5', 'wget', '-q', '-O', '-', url]).then((s) => s.trim(), () => '');

/** `n` GETs in one exec, the answers in order. */
async function gets(pod: string, url: string, n: number): Promise<string[]> {
  const out = await exec(pod, ['sh', '-c', `for i in $(seq ${n}); do timeout 5 wget -q -O - ${url} || echo FAIL; done`]).catch(() => '');
  return out.split('\n').map((s) => s.trim()).filter(Boolean);
}

/** A Service's load balancers in NB: name -> vips (as ovn-nbctl prints them). */
async function lbs(svc: string): Promise<Map<string, string>> {
  const out = await nbctl(['--bare', '--columns=name,vips', 'find', 'Load_Balancer', `external_ids:k8s.ovn.org/owner="default/${svc}"`]);
  const lines = out.split('\n');
  const m = new Map<string, string>();
  for (let i = 0; i + 1 < lines.length; i += 3) m.set(lines[i] ?? '', lines[i + 1] ?? '');
  return m;
}

describe('Services (IPv4)', { timeout: 20 * 60_000 }, () => {
  useBox(['--nodes', '2']);

  test('a ClusterIP answers on every port from the other node, spread over its endpoints, as OVN load balancers named as OVN-Kubernetes does', async () => {
    await apply(backend('web-a', 'node-1'), backend('web-b', 'node-2'), client('cl', 'node-2'), client('cl1', 'node-1'),
      service('web', { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }, { name: 'alt', port: 81, targetPort: 'alt' }] }));
    await waitReady(['web-a', 'web-b', 'cl', 'cl1']);
    const ip = await clusterIp('web');
    await until('both endpoints in the load balancer', async () => {
      const v = (await lbs('web')).get('Service_default/web_TCP_cluster') ?? '';
      return (v.match(/:8080/g) ?? []).length === 2 && (v.match(/:8081/g) ?? []).length === 2;
    });
    const answers = await gets('cl', `http://${ip}:80/`, 20);
    assert.deepEqual([...new Set(answers)].sort(), ['web-a', 'web-b'], `20 GETs spread over both endpoints: ${answers.join(' ')}`);
    assert.match(await get('cl', `http://${ip}:81/`), /^alt-web-[ab]$/);
    // In the group that every node switch and gateway router carries.
    const uuid = (await nbctl(['--bare', '--columns=_uuid', 'find', 'Load_Balancer', 'name="Service_default/web_TCP_cluster"'])).trim();
    assert.match(await nbctl(['--bare', '--columns=load_balancer', 'find', 'Load_Balancer_Group', 'name=clusterLBGroup']), new RegExp(uuid));
    for (const table of ['Logical_Switch node-1', 'Logical_Router GR_node-2']) {
      const [t, n] = table.split(' ');
      assert.notEqual((await nbctl(['--bare', '--columns=load_balancer_group', 'find', t!, `name=${n!}`])).trim(), '', `${table} carries the group`);
    }
    // The run is there to read.
    const h = await kovn(['history', 'service', 'default/web']);
    assert.equal(h.code, 0, h.out);
    assert.match(h.out, /Load_Balancer/);
  });

  test('hairpin: a pod reaches itself through its own Service', async () => {
    const ip = await clusterIp('web');
    const answers = await gets('web-a', `http://${ip}:80/`, 16);
    assert.ok(answers.includes('web-a'), `web-a reached itself: ${answers.join(' ')}`);
    assert.ok(!answers.includes('FAIL'), answers.join(' '));
  });

  test('ClientIP affinity keeps a client on one endpoint', async () => {
    await apply(service('sticky', { selector: { app: 'web' }, sessionAffinity: 'ClientIP', ports: [{ port: 80, targetPort: 8080 }] }));
    await until('sticky programmed with both endpoints', async () => ((await lbs('sticky')).get('Service_default/sticky_TCP_cluster')?.match(/:8080/g) ?? []).length === 2);
    const ip = await clusterIp('sticky');
    // NB programmed is not yet every chassis's flows: the first answer says the client's node has them.
    await until('sticky answers', async () => /^web-[ab]$/.test(await get('cl', `http://${ip}:80/`)));
    const answers = await gets('cl', `http://${ip}:80/`, 12);
    assert.equal(answers.length, 12);
    assert.equal(new Set(answers).size, 1, `all to one endpoint: ${answers.join(' ')}`);
  });

  test('no usable endpoint: the connection is reset at once, not left to time out', async () => {
    await apply(service('empty', { selector: { app: 'nobody' }, ports: [{ port: 80, targetPort: 8080 }] }));
    await until('empty programmed', async () => (await lbs('empty')).has('Service_default/empty_TCP_cluster'));
    const ip = await clusterIp('empty');
    const t0 = Date.now();
    const ok = await exec('cl', ['nc', '-w', '10', ip, '80']).then(() => true, () => false);
    const ms = Date.now() - t0;
    assert.equal(ok, false);
    // A timeout would take the 10 s nc waits; a reset comes back with the kubectl exec's own overhead.
    assert.ok(ms < 5_000, `refused after ${ms} ms`);
  });

  test('the load balancer follows endpoints: unready and deleted backends leave it, and traffic goes only to the rest', async () => {
    const ip = await clusterIp('web');
    await kubectl(['delete', 'pod', 'web-b', '--wait=false']);
    await until('web-b out of the load balancer', async () => ((await lbs('web')).get('Service_default/web_TCP_cluster')?.match(/:8080/g) ?? []).length === 1);
    const answers = await gets('cl', `http://${ip}:80/`, 10);
    assert.deepEqual([...new Set(answers)], ['web-a'], answers.join(' '));
    await kubectl(['wait', '--for=delete', 'pod/web-b', '--timeout=60s'], { timeoutMs: 90_000 });
    await apply(backend('web-b', 'node-2'));
    await waitReady(['web-b']);
    await until('web-b back in the load balancer', async () => ((await lbs('web')).get('Service_default/web_TCP_cluster')?.match(/:8080/g) ?? []).length === 2);
  });

  test('a pod reaches kubernetes.default (the apiserver on the host network)', async () => {
    const k8s = await clusterIp('kubernetes');
    await until('the kubernetes Service programmed', async () => (await lbs('kubernetes')).get('Service_default/kubernetes_TCP_cluster')?.includes(`${k8s}:443`));
    await until(`a pod connects to ${k8s}:443`, () => exec('cl', ['nc', '-w', '3', k8s, '443']).then(() => true, () => false));
  });

  test('node hosts reach ClusterIPs through their gateway routers: the kubernetes Service from each node, a pod backend on the other node', async () => {
    const k8s = await clusterIp('kubernetes');
    for (const node of [1, 2]) await until(`node-${node} gets /version from ${k8s}`, async () => /gitVersion/.test(await curlFromNode(node, `https://${k8s}/version`)));
    await apply(backend('far', 'node-2', 'far'), service('far', { selector: { app: 'far' }, ports: [{ port: 80, targetPort: 8080 }] }));
    await waitReady(['far']);
    const ip = await clusterIp('far');
    await until('node-1 reaches far on node-2', async () => (await curlFromNode(1, `http://${ip}/`)) === 'far');
    // Every connection, not only the first: the replies come back through the host's masquerade flows.
    for (let i = 0; i < 5; i++) assert.equal(await curlFromNode(1, `http://${ip}/`), 'far', `node-1 -> ${ip}, try ${i + 1}`);
  });

  test('NodePort: a pod reaches its own node\'s IP on the node port; each node has its per-node rows', async () => {
    await apply(service('np', { type: 'NodePort', selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] }));
    const np = (await kubectlJson<{ spec: { ports: { nodePort: number }[] } }>(['get', 'service', 'np'])).spec.ports[0]!.nodePort;
    const nodes = (await kubectlJson<{ items: { metadata: { name: string }; status: { addresses: { type: string; address: string }[] } }[] }>(['get', 'nodes'])).items;
    for (const n of nodes) {
      const nodeIp = n.status.addresses.find((a) => a.type === 'InternalIP')?.address ?? '';
      await until(`${n.metadata.name}'s rows`, async () => {
        const m = await lbs('np');
        return [`router_${n.metadata.name}`, `switch_${n.metadata.name}`].every((k) => (m.get(`Service_default/np_TCP_node_${k}`) ?? '').includes(`${nodeIp}:${np}`));
      });
    }
    const node2 = nodes.find((n) => n.metadata.name === 'node-2')!.status.addresses.find((a) => a.type === 'InternalIP')?.address ?? '';
    assert.match(await get('cl', `http://${node2}:${np}/`), /^web-[ab]$/, `cl on node-2 reaches ${node2}:${np}`);
  });

  test('bad input: a target port name no endpoint has is an Event on the Service; its other ports and other Services work', async () => {
    await apply(service('badport', { selector: { app: 'web' }, ports: [{ name: 'ok', port: 80, targetPort: 'http' }, { name: 'bad', port: 81, targetPort: 'nope' }] }));
    await until('TargetPortNotFound on badport', async () => (await events('Service', 'badport')).some((e) => e.reason === 'TargetPortNotFound' && /nope/.test(e.message)));
    const ip = await clusterIp('badport');
    await until('badport:80 answers', async () => /^web-[ab]$/.test(await get('cl', `http://${ip}:80/`)));
    assert.match(await get('cl', `http://${await clusterIp('web')}:80/`), /^web-[ab]$/);
  });

  test('headless gets no load balancer; a deleted Service leaves no row', async () => {
    await apply(service('headless', { clusterIP: 'None', selector: { app: 'web' }, ports: [{ port: 80 }] }));
    await apply(service('gone', { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] }));
    await until('gone programmed', async () => (await lbs('gone')).size === 1);
    assert.equal((await lbs('headless')).size, 0);
    await kubectl(['delete', 'service', 'gone']);
    await until('gone has no load balancer', async () => (await lbs('gone')).size === 0);
  });

  test('a controller restart with nothing changed writes nothing to NB', { timeout: 3 * 60_000 }, async () => {
    const dump = async () => (await Promise.all(['Load_Balancer', 'Load_Balancer_Group', 'Logical_Switch', 'Logical_Router']
      .map((t) => run('ovsdb-client', ['dump', `unix:${files.nbSock}`, 'OVN_Northbound', t])))).join('\n');
    const before = await dump();
    await killAndWaitBack('kovn-controller');
    await new Promise((r) => setTimeout(r, 10_000)); // its first sync runs once the stores have listed
    assert.equal(await dump(), before);
  });
});
