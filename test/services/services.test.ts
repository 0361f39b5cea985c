// Services on the cluster in a box (IPv4, 2 nodes), with the real EndpointSlice controller and real pods:
// a ClusterIP on every port from the other node, spread over its endpoints; ClientIP affinity sticks;
// hairpin; no endpoint is a reset at once; the load balancer follows endpoints leaving; the `kubernetes`
// Service from a pod; NodePort from a pod on its own node; a bad target port is an
// Event; headless gets no load balancer; cluster DNS by CoreDNS; a restart writes nothing; a deletion
// leaves no row.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NET, files, nodeNs } from '../../deploy/local/config.ts';
import { outsideExec } from '../../deploy/local/actions/outside.ts';
import { kubectl, kubectlJson } from '../../deploy/local/kubectl.ts';
import { run } from '../../lib/exec.ts';
import { kovn } from '../box/helpers.ts';
import { curlFromNode, events, hostWebPod, exec, killAndWaitBack, nbctl, sandboxOf, until, useBox, waitReady } from '../pods/helpers.ts';

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

/** A UDP backend: CoreDNS answering TXT <its pod name> on 5353 (the whodns ConfigMap). */
const udpBackend = (name: string, node: string): unknown => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', labels: { app: 'whodns' } },
  spec: {
    nodeSelector: { 'kubernetes.io/hostname': node }, terminationGracePeriodSeconds: 0,
    containers: [{
      name: 'dns', image: 'kovn.local/coredns:1.15.0', imagePullPolicy: 'Never', args: ['-conf', '/etc/who/Corefile'],
      env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
      ports: [{ containerPort: 5353, protocol: 'UDP' }],
      volumeMounts: [{ name: 'conf', mountPath: '/etc/who' }],
    }],
    volumes: [{ name: 'conf', configMap: { name: 'whodns' } }],
  },
});
/** A DNS query for who.test TXT, as printf octal escapes (id 0x1234, recursion desired). */
const WHO_QUERY = String.raw`\022\064\001\000\000\001\000\000\000\000\000\000\003who\004test\000\000\020\000\001`;
const podIp = async (pod: string): Promise<string> => (await kubectlJson<{ status: { podIP: string } }>(['get', 'pod', pod])).status.podIP;

/** The addresses busybox nslookup prints for a name from a pod (A and AAAA); [] when it finds none. */
async function lookup(pod: string, name: string): Promise<string[]> {
  const out = await exec(pod, ['sh', '-c', `nslookup ${name} 2>&1; true`]).catch(() => '');
  const answers = out.split(/\n\s*\n/).slice(1).join('\n');
  return [...answers.matchAll(/^Address:\s*(\S+)$/gm)].map((m) => m[1]!);
}

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

  test('node hosts reach ClusterIPs through their gateway routers: the kubernetes Service from each node, a pod backend on the other node and on their own', async () => {
    const k8s = await clusterIp('kubernetes');
    for (const node of [1, 2]) await until(`node-${node} gets /version from ${k8s}`, async () => /gitVersion/.test(await curlFromNode(node, `https://${k8s}/version`)));
    await apply(backend('far', 'node-2', 'far'), service('far', { selector: { app: 'far' }, ports: [{ port: 80, targetPort: 8080 }] }));
    await waitReady(['far']);
    const ip = await clusterIp('far');
    await until('node-1 reaches far on node-2', async () => (await curlFromNode(1, `http://${ip}/`)) === 'far');
    // Every connection, not only the first: the replies come back through the host's masquerade flows.
    for (let i = 0; i < 5; i++) assert.equal(await curlFromNode(1, `http://${ip}/`), 'far', `node-1 -> ${ip}, try ${i + 1}`);
    // The backend on the host's own node: the gateway router and the pod's switch in one datapath pass.
    await until('node-2 reaches far on node-2', async () => (await curlFromNode(2, `http://${ip}/`)) === 'far');
    for (let i = 0; i < 5; i++) assert.equal(await curlFromNode(2, `http://${ip}/`), 'far', `node-2 -> ${ip}, try ${i + 1}`);
    // A socket bound to the node's own address: the host's kernel SNATs it to the masquerade address,
    // to a backend on the other node and on its own.
    for (const node of [1, 2]) {
      for (let i = 0; i < 3; i++) {
        const bound = await run('nsenter', [`--net=/run/netns/${nodeNs(node)}`, '--', 'curl', '-s', '--max-time', '3', '--interface', NET.nodeIp(node), `http://${ip}/`]).catch(() => '');
        assert.equal(bound.trim(), 'far', `node-${node}, bound to its node IP, try ${i + 1}`);
      }
    }
  });

  test('a Service whose endpoint is a host-network pod answers from pods and hosts on both nodes (its own host through the masquerade addresses) and on every NodePort from outside; a host-network pod reaches a ClusterIP', async () => {
    await apply(hostWebPod('node-1'), service('hostweb', { type: 'NodePort', selector: { app: 'hostweb' }, ports: [{ name: 'any', port: 80, targetPort: 18080 }, { name: 'nodeip', port: 81, targetPort: 18081 }] }));
    await waitReady(['hostweb']);
    const ip = await clusterIp('hostweb');
    const np = (await kubectlJson<{ spec: { ports: { nodePort: number }[] } }>(['get', 'service', 'hostweb'])).spec.ports[0]!.nodePort;
    // Per node: node-1's gateway router reaches its own host at the masquerade address; the rest at node-1's IP.
    await until('per-node rows, node-1\'s router to the masquerade address', async () => {
      const m = await lbs('hostweb');
      return !m.has('Service_default/hostweb_TCP_cluster')
        && (m.get('Service_default/hostweb_TCP_node_router_node-1') ?? '').includes(`${ip}:80=169.254.169.2:18080`)
        && ['node_switch_node-1', 'node_router_node-2', 'node_switch_node-2'].every((k) => (m.get(`Service_default/hostweb_TCP_${k}`) ?? '').includes(`${ip}:80=${NET.nodeIp(1)}:18080`));
    });
    for (const c of ['cl', 'cl1']) await until(`${c} reaches hostweb`, async () => (await get(c, `http://${ip}:80/`)) === 'hostweb');
    for (const node of [1, 2]) {
      await until(`node-${node}'s host reaches hostweb`, async () => (await curlFromNode(node, `http://${ip}:80/`)).trim() === 'hostweb');
      for (let i = 0; i < 3; i++) assert.equal((await curlFromNode(node, `http://${ip}:80/`)).trim(), 'hostweb', `node-${node} -> ${ip}, try ${i + 1}`);
    }
    const bound = await run('nsenter', [`--net=/run/netns/${nodeNs(1)}`, '--', 'curl', '-s', '--max-time', '3', '--interface', NET.nodeIp(1), `http://${ip}/`]).catch(() => '');
    assert.equal(bound.trim(), 'hostweb', 'node-1, bound to its node IP, to itself');
    // A process listening on the node IP alone: the host kernel DNATs the masquerade connection to it.
    for (const node of [1, 2]) await until(`node-${node}'s host reaches the node-IP-bound listener`, async () => (await curlFromNode(node, `http://${ip}:81/`)).trim() === 'hostweb');
    for (const node of [1, 2]) {
      const url = `http://${NET.nodeIp(node)}:${np}/`;
      await until(`the outside reaches ${url}`, async () => (await outsideExec(['curl', '-s', '--max-time', '3', url]).catch(() => '')).trim() === 'hostweb');
    }
    await until('node-1\'s host reaches its own NodePort, served by itself', async () => (await curlFromNode(1, `http://${NET.nodeIp(1)}:${np}/`)).trim() === 'hostweb');
    // The host-network pod itself, to a pod backend on the other node.
    const web = await clusterIp('web');
    await until('the host-network pod reaches web', async () => exec('hostweb', ['sh', '-c', `timeout 5 wget -q -O - http://${web}:80/`]).then((x) => x.trim() === 'web-b', () => false));
    await kubectl(['delete', 'service', 'hostweb']);
    await kubectl(['delete', 'pod', 'hostweb', '--wait=false']);
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

  test('NodePort from outside the cluster on every node (the outside router and the external host), from the other node\'s host and from its own', async () => {
    const np = (await kubectlJson<{ spec: { ports: { nodePort: number }[] } }>(['get', 'service', 'np'])).spec.ports[0]!.nodePort;
    for (const node of [1, 2]) {
      const url = `http://${NET.nodeIp(node)}:${np}/`;
      await until(`the outside router reaches ${url}`, async () => /^web-[ab]$/.test((await outsideExec(['curl', '-s', '--max-time', '3', url]).catch(() => '')).trim()));
      assert.match((await outsideExec(['curl', '-s', '--max-time', '3', '--interface', NET.externalHostIp, url])).trim(), /^web-[ab]$/, `the external host reaches ${url}`);
    }
    await until('node-1\'s host reaches node-2\'s NodePort', async () => /^web-[ab]$/.test(await curlFromNode(1, `http://${NET.nodeIp(2)}:${np}/`)));
    // Its own NodePort: the host's kernel DNATs it to the ClusterIP (no process listens on it).
    for (const node of [1, 2]) await until(`node-${node}'s host reaches its own NodePort`, async () => /^web-[ab]$/.test(await curlFromNode(node, `http://${NET.nodeIp(node)}:${np}/`)));
    // Every connection, not only the first: replies leave through the gateway router, outside conntrack.
    const answers = await Promise.all(Array.from({ length: 6 }, () => outsideExec(['curl', '-s', '--max-time', '3', `http://${NET.nodeIp(1)}:${np}/`]).then((x) => x.trim(), () => 'FAIL')));
    assert.ok(answers.every((a) => /^web-[ab]$/.test(a)), answers.join(' '));
  });

  test('LoadBalancer: an address from kovn\'s pool, announced by one node (ARP, no route), reached from outside; ExternalIPs through a route to a node', async () => {
    await apply(service('lb', { type: 'LoadBalancer', selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] }));
    const { ip: lbIp, node } = await until('lb gets an address and an announcing node', async () => {
      const s = await kubectlJson<{ metadata: { annotations?: Record<string, string> }; status: { loadBalancer?: { ingress?: { ip: string }[] } } }>(['get', 'service', 'lb']);
      const ip = s.status.loadBalancer?.ingress?.[0]?.ip;
      const n = s.metadata.annotations?.['kovn.local/announcing-node'];
      return ip && n ? { ip, node: n } : undefined;
    });
    assert.match(lbIp, /^172\.29\.0\.(24[1-9]|25[0-4])$/, 'from the box\'s pool 172.29.0.240/28');
    assert.match(node, /^node-[12]$/);
    await until(`the outside router reaches ${lbIp}`, async () => /^web-[ab]$/.test((await outsideExec(['curl', '-s', '--max-time', '3', `http://${lbIp}/`]).catch(() => '')).trim()));
    assert.match((await outsideExec(['curl', '-s', '--max-time', '3', '--interface', NET.externalHostIp, `http://${lbIp}/`])).trim(), /^web-[ab]$/);
    // The outside learnt the address from the announcing node alone: its bridge's MAC.
    const mac = JSON.parse(await run('ip', ['-n', `kovn-${node}`, '-j', 'link', 'show', 'breth0'])) as { address: string }[];
    assert.match(await outsideExec(['ip', 'neigh', 'show', lbIp]), new RegExp(`lladdr ${mac[0]!.address}`));

    // ExternalIPs: the operator routes the address to a node; that node's gateway router answers it.
    const ext = '198.51.100.10';
    await apply(service('ext', { selector: { app: 'web' }, externalIPs: [ext], ports: [{ port: 80, targetPort: 8080 }] }));
    await outsideExec(['ip', 'route', 'replace', `${ext}/32`, 'via', NET.nodeIp(1)]);
    try {
      await until(`the external host reaches ${ext}`, async () => /^web-[ab]$/.test((await outsideExec(['curl', '-s', '--max-time', '3', '--interface', NET.externalHostIp, `http://${ext}/`]).catch(() => '')).trim()));
    } finally {
      await outsideExec(['ip', 'route', 'del', `${ext}/32`]).catch(() => '');
    }
  });

  test('externalTrafficPolicy Local: only local endpoints answer, the pod sees the outside host\'s address, the health check node port says 200/503, and the endpoint\'s node announces', async () => {
    await apply({
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'src-b', namespace: 'default', labels: { app: 'src' } },
      spec: {
        nodeSelector: { 'kubernetes.io/hostname': 'node-2' }, terminationGracePeriodSeconds: 0,
        containers: [{
          name: 'c', image: 'kovn.local/toolbox:1', imagePullPolicy: 'IfNotPresent',
          // A CGI that answers with the client's address as the pod sees it.
          command: ['sh', '-c', 'mkdir -p /w/cgi-bin && printf \'#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho $REMOTE_ADDR\\n\' > /w/cgi-bin/ip && chmod +x /w/cgi-bin/ip && exec httpd -f -p 8080 -h /w'],
          readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
        }],
      },
    }, service('local', { type: 'LoadBalancer', externalTrafficPolicy: 'Local', selector: { app: 'src' }, ports: [{ port: 80, targetPort: 8080 }] }));
    await waitReady(['src-b']);
    type Svc = { metadata: { annotations?: Record<string, string> }; spec: { healthCheckNodePort: number; ports: { nodePort: number }[] }; status: { loadBalancer?: { ingress?: { ip: string }[] } } };
    const svc = await kubectlJson<Svc>(['get', 'service', 'local']);
    const hc = svc.spec.healthCheckNodePort;
    const np = svc.spec.ports[0]!.nodePort;
    // The status code, or curl's exit code when there is none (7: connection refused).
    const health = async (node: number): Promise<string> =>
      (await outsideExec(['sh', '-c', `curl -s -o /dev/null -w '%{http_code}' --max-time 3 http://${NET.nodeIp(node)}:${hc}/ || echo " rc=$?"`])).trim();
    await until('node-2 says 200 (a local endpoint)', async () => (await health(2)) === '200');
    assert.equal(await health(1), '503', 'node-1 has none');
    const body = JSON.parse(await outsideExec(['curl', '-s', '--max-time', '3', `http://${NET.nodeIp(2)}:${hc}/`])) as { localEndpoints: number };
    assert.equal(body.localEndpoints, 1);
    // busybox httpd listens on a v6 socket: a v4 client is `[::ffff:a.b.c.d]` to it.
    const from = (url: string): Promise<string> => outsideExec(['curl', '-s', '--max-time', '3', '--interface', NET.externalHostIp, url])
      .then((x) => x.trim().replace(/^\[(::ffff:)?|\]$/g, ''), () => '');
    await until('node-2\'s NodePort answers with the client\'s own address', async () => (await from(`http://${NET.nodeIp(2)}:${np}/cgi-bin/ip`)) === NET.externalHostIp);
    assert.equal(await from(`http://${NET.nodeIp(1)}:${np}/cgi-bin/ip`), '', 'node-1 has no local endpoint: nothing answers');
    const lb = await until('local announced by node-2', async () => {
      const s = await kubectlJson<Svc>(['get', 'service', 'local']);
      return s.metadata.annotations?.['kovn.local/announcing-node'] === 'node-2' ? s.status.loadBalancer?.ingress?.[0]?.ip : undefined;
    });
    await until(`${lb} answers with the client's address`, async () => (await from(`http://${lb}/cgi-bin/ip`)) === NET.externalHostIp);
    await kubectl(['delete', 'service', 'local']);
    await until('the health check port closes', async () => (await health(2)) === '000 rc=7');
  });

  test('bad input: an exhausted LoadBalancer pool is an Event on the Service left pending; its ClusterIP works, the others keep theirs, and it gets an address once one frees', async () => {
    // The pool has 14 addresses: one Service more than it has left leaves one without.
    type Svc = { metadata: { name: string }; status: { loadBalancer?: { ingress?: { ip: string }[] } } };
    const held = (await kubectlJson<{ items: Svc[] }>(['get', 'services'])).items.filter((x) => x.status.loadBalancer?.ingress?.length).length;
    const fills = Array.from({ length: 14 - held + 1 }, (_, i) => `fill-${i}`);
    await apply(...fills.map((n) => service(n, { type: 'LoadBalancer', selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] })));
    const pending = await until('one fill Service pending with LoadBalancerPoolExhausted', async () => {
      const items = (await kubectlJson<{ items: Svc[] }>(['get', 'services'])).items.filter((x) => fills.includes(x.metadata.name));
      const without = items.filter((x) => !x.status.loadBalancer?.ingress?.length);
      if (items.length !== fills.length || without.length !== 1) return undefined;
      const n = without[0]!.metadata.name;
      return (await events('Service', n)).some((e) => e.reason === 'LoadBalancerPoolExhausted' && /no free address/.test(e.message)) ? n : undefined;
    }, 90_000);
    assert.match(await get('cl', `http://${await clusterIp(pending)}:80/`), /^web-[ab]$/, 'its ClusterIP works meanwhile');
    const lbIp = (await kubectlJson<Svc>(['get', 'service', 'lb'])).status.loadBalancer?.ingress?.[0]?.ip ?? '';
    assert.match((await outsideExec(['curl', '-s', '--max-time', '3', `http://${lbIp}/`])).trim(), /^web-[ab]$/, 'lb keeps its address');
    await kubectl(['delete', 'service', fills.find((n) => n !== pending)!]);
    await until(`${pending} gets the freed address`, async () => ((await kubectlJson<Svc>(['get', 'service', pending])).status.loadBalancer?.ingress?.length ?? 0) > 0, 90_000);
    await kubectl(['delete', 'service', ...fills.filter((n) => n !== pending), pending, '--ignore-not-found']);
  });

  test('internalTrafficPolicy Local keeps each client, pods and hosts, on its own node\'s endpoint', async () => {
    await apply(service('onnode', { selector: { app: 'web' }, internalTrafficPolicy: 'Local', ports: [{ port: 80, targetPort: 8080 }] }));
    await until('per-node switch and router rows with each node\'s own endpoint', async () => {
      const m = await lbs('onnode');
      return m.size === 4 && ['node-1', 'node-2'].every((n) => ['switch', 'router'].every((k) => ((m.get(`Service_default/onnode_TCP_node_${k}_${n}`) ?? '').match(/:8080/g) ?? []).length === 1));
    });
    const ip = await clusterIp('onnode');
    // NB programmed is not yet every chassis's flows: a first answer from each client says they are.
    for (const c of ['cl', 'cl1']) await until(`${c} gets an answer`, async () => /^web-[ab]$/.test(await get(c, `http://${ip}:80/`)));
    assert.deepEqual([...new Set(await gets('cl', `http://${ip}:80/`, 10))], ['web-b'], 'cl on node-2 reaches only web-b');
    assert.deepEqual([...new Set(await gets('cl1', `http://${ip}:80/`, 10))], ['web-a'], 'cl1 on node-1 reaches only web-a');
    for (const [node, want] of [[1, 'web-a'], [2, 'web-b']] as const) {
      await until(`node-${node}'s host gets an answer`, async () => /^web-[ab]$/.test(await curlFromNode(node, `http://${ip}/`)));
      const seen = new Set<string>();
      for (let i = 0; i < 5; i++) seen.add(await curlFromNode(node, `http://${ip}/`));
      assert.deepEqual([...seen], [want], `node-${node}'s host reaches only ${want}`);
    }
    await kubectl(['delete', 'service', 'onnode']);
  });

  test('trafficDistribution PreferSameZone keeps each client in its zone (one zone per node) while the zone has an endpoint', async () => {
    const zones = (await kubectlJson<{ items: { metadata: { name: string; labels: Record<string, string> } }[] }>(['get', 'nodes'])).items
      .map((n) => `${n.metadata.name}=${n.metadata.labels['topology.kubernetes.io/zone']}`).sort();
    assert.deepEqual(zones, ['node-1=zone-1', 'node-2=zone-2']);
    await apply(service('near', { selector: { app: 'web' }, trafficDistribution: 'PreferSameZone', ports: [{ port: 80, targetPort: 8080 }] }));
    await until('per-node switch and router rows with each zone\'s endpoint', async () => {
      const m = await lbs('near');
      return m.size === 4 && ['node-1', 'node-2'].every((n) => ['switch', 'router'].every((k) => ((m.get(`Service_default/near_TCP_node_${k}_${n}`) ?? '').match(/:8080/g) ?? []).length === 1));
    });
    const ip = await clusterIp('near');
    assert.deepEqual([...new Set(await gets('cl', `http://${ip}:80/`, 10))], ['web-b'], 'cl on node-2 (zone-2) stays in its zone');
    assert.deepEqual([...new Set(await gets('cl1', `http://${ip}:80/`, 10))], ['web-a'], 'cl1 on node-1 (zone-1) stays in its zone');
    await kubectl(['delete', 'service', 'near']);
  });

  test('bad input: a target port name no endpoint has is an Event on the Service; its other ports and other Services work', async () => {
    await apply(service('badport', { selector: { app: 'web' }, ports: [{ name: 'ok', port: 80, targetPort: 'http' }, { name: 'bad', port: 81, targetPort: 'nope' }] }));
    await until('TargetPortNotFound on badport', async () => (await events('Service', 'badport')).some((e) => e.reason === 'TargetPortNotFound' && /nope/.test(e.message)));
    const ip = await clusterIp('badport');
    await until('badport:80 answers', async () => /^web-[ab]$/.test(await get('cl', `http://${ip}:80/`)));
    assert.match(await get('cl', `http://${await clusterIp('web')}:80/`), /^web-[ab]$/);
  });

  test('bad input: EndpointSlice addresses no node can reach (a cluster address in no node\'s subnet, a ClusterIP) are Events on the Service and left out; its good endpoint and other Services work', async () => {
    const good = await podIp('web-a');
    await apply(service('faraway', { ports: [{ port: 80, targetPort: 8080 }] }), {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
      metadata: { name: 'faraway-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'faraway' } },
      ports: [{ name: '', port: 8080, protocol: 'TCP' }],
      endpoints: [{ addresses: [good] }, { addresses: ['10.244.200.5'] }, { addresses: ['10.96.0.10'] }],
    });
    for (const [ip, why] of [['10.244.200.5', /no node's pod subnet/], ['10.96.0.10', /service network/]] as const) {
      await until(`UnreachableEndpoint ${ip} on faraway`, async () => (await events('Service', 'faraway')).some((e) => e.reason === 'UnreachableEndpoint' && e.message.includes(ip) && why.test(e.message)));
    }
    assert.equal((await lbs('faraway')).get('Service_default/faraway_TCP_cluster'), `${await clusterIp('faraway')}:80=${good}:8080`);
    const answers = await gets('cl', `http://${await clusterIp('faraway')}:80/`, 8);
    assert.deepEqual([...new Set(answers)], ['web-a'], answers.join(' '));
    assert.match(await get('cl', `http://${await clusterIp('web')}:80/`), /^web-[ab]$/);
    await kubectl(['delete', 'service', 'faraway']);
    await kubectl(['delete', 'endpointslice', 'faraway-1']);
  });

  test('headless gets no load balancer; a deleted Service leaves no row', async () => {
    await apply(service('headless', { clusterIP: 'None', selector: { app: 'web' }, ports: [{ port: 80 }] }));
    await apply(service('gone', { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] }));
    await until('gone programmed', async () => (await lbs('gone')).size === 1);
    assert.equal((await lbs('headless')).size, 0);
    await kubectl(['delete', 'service', 'gone']);
    await until('gone has no load balancer', async () => (await lbs('gone')).size === 0);
  });

  test('cluster DNS: a client on the other node finds Services by full and short name, a headless Service\'s pods, kubernetes.default; other names are NXDOMAIN from CoreDNS itself', async () => {
    // kubelet hands pods the kube-dns Service and the cluster's search path, nothing of the host's.
    const conf = await exec('cl', ['cat', '/etc/resolv.conf']);
    assert.match(conf, /^nameserver 10\.96\.0\.10$/m, conf);
    assert.match(conf, /^search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local$/m, conf);
    assert.equal((conf.match(/^nameserver/gm) ?? []).length, 1, conf);
    const ip = await clusterIp('web');
    await until('web.default.svc.cluster.local resolves', async () => (await lookup('cl', 'web.default.svc.cluster.local')).includes(ip));
    assert.deepEqual(await lookup('cl', 'web'), [ip], 'the short name, through the search path');
    // The resolver the pod's programs use (getaddrinfo), not only nslookup's own.
    assert.match(await get('cl', 'http://web/'), /^web-[ab]$/);
    // A headless Service's name is its ready pods' addresses.
    const pods = await Promise.all(['web-a', 'web-b'].map(async (p) => (await kubectlJson<{ status: { podIP: string } }>(['get', 'pod', p])).status.podIP));
    await until('headless resolves to both pods', async () => JSON.stringify((await lookup('cl', 'headless.default.svc.cluster.local')).sort()) === JSON.stringify(pods.sort()));
    // CoreDNS answers from the API it reads through kubernetes.default with its service account token;
    // a dotted name goes through the search path too (ndots:5), as libc resolves it (busybox nslookup does not).
    const ping = await exec('cl', ['sh', '-c', 'ping -c 1 -W 1 kubernetes.default 2>&1 | head -1; true']);
    assert.match(ping, new RegExp(`^PING kubernetes\\.default \\(${(await clusterIp('kubernetes')).replaceAll('.', '\\.')}\\)`), ping);
    const dnsIp = (await kubectlJson<{ spec: { clusterIP: string } }>(['get', 'service', 'kube-dns', '-n', 'kube-system'])).spec.clusterIP;
    assert.equal(dnsIp, '10.96.0.10');
    // Nothing is forwarded: a name outside the cluster is answered at once, NXDOMAIN, by CoreDNS.
    const t0 = Date.now();
    const out = await exec('cl', ['sh', '-c', 'nslookup example.com 2>&1; true']);
    assert.match(out, /NXDOMAIN/, out);
    assert.ok(Date.now() - t0 < 5_000, `answered in ${Date.now() - t0} ms`);
  });

  test('UDP: a client that keeps its source port reaches the new backend within a few tries when the only endpoint is replaced (conntrack flushed on every node)', async () => {
    await apply({
      apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'whodns', namespace: 'default' },
      // A DNS server that says which pod answered: TXT <pod name> for any name under test.
      data: { Corefile: 'test:5353 {\n    template IN TXT {\n        answer "{{ .Name }} 0 IN TXT {$POD_NAME}"\n    }\n}\n' },
    }, service('whodns', { selector: { app: 'whodns' }, ports: [{ protocol: 'UDP', port: 53, targetPort: 5353 }] }), udpBackend('who-a', 'node-1'));
    await waitReady(['who-a']);
    const ip = await clusterIp('whodns');
    // The client is cl's network namespace with socat (busybox's nc has no UDP), from one source port.
    const { netns } = await sandboxOf(2, 'cl');
    const ask = async (): Promise<string> => (await run('nsenter', [`--net=${netns}`, '--', 'sh', '-c',
      `printf '${WHO_QUERY}' | socat -t 1 - UDP4:${ip}:53,sourceport=40053 2>/dev/null | tr -cd 'a-z-'; true`]).catch(() => '')).match(/who-[ab]/)?.[0] ?? '';
    await until('who-a answers', async () => (await ask()) === 'who-a');
    const whoA = await podIp('who-a');
    await kubectl(['delete', 'pod', 'who-a', '--wait=false']);
    await apply(udpBackend('who-b', 'node-2'));
    await waitReady(['who-b']);
    await until('only who-b in the load balancer', async () => {
      const v = (await lbs('whodns')).get('Service_default/whodns_UDP_cluster') ?? '';
      return (v.match(/:5353/g) ?? []).length === 1 && !v.includes(`${whoA}:`);
    });
    // The same source port each time: without the flush its conntrack entry would keep it on who-a.
    const tries: string[] = [];
    for (let i = 0; i < 8 && tries.at(-1) !== 'who-b'; i++) tries.push((await ask()) || '-');
    assert.equal(tries.at(-1), 'who-b', `answers: ${tries.join(' ')}`);
    const h = await kovn(['history', 'service', 'default/whodns']);
    assert.match(h.out, /conntrack/, 'the run shows the flush');
  });

  test('a controller restart with nothing changed writes nothing to NB', { timeout: 3 * 60_000 }, async () => {
    const dump = async () => (await Promise.all(['Load_Balancer', 'Load_Balancer_Group', 'Logical_Switch', 'Logical_Router']
      .map((t) => run('ovsdb-client', ['dump', `unix:${files.nbSock}`, 'OVN_Northbound', t])))).join('\n');
    const before = await dump();
    await killAndWaitBack('kovn-controller');
    await new Promise((r) => setTimeout(r, 10_000)); // its first sync runs once the stores have listed
    assert.equal(await dump(), before);
  });
  // Last: it deletes a node.
  test('the LoadBalancer address keeps answering when the node announcing it is deleted: the other node takes it over', { timeout: 3 * 60_000 }, async () => {
    type Svc = { metadata: { annotations?: Record<string, string> }; status: { loadBalancer?: { ingress?: { ip: string }[] } } };
    const s = await kubectlJson<Svc>(['get', 'service', 'lb']);
    const lbIp = s.status.loadBalancer?.ingress?.[0]?.ip ?? '';
    const from = s.metadata.annotations?.['kovn.local/announcing-node'] ?? '';
    const to = from === 'node-1' ? 'node-2' : 'node-1';
    const t0 = Date.now();
    await kubectl(['delete', 'node', from]);
    await until(`${to} announces ${lbIp}`, async () => (await kubectlJson<Svc>(['get', 'service', 'lb'])).metadata.annotations?.['kovn.local/announcing-node'] === to, 60_000);
    const mac = (JSON.parse(await run('ip', ['-n', `kovn-${to}`, '-j', 'link', 'show', 'breth0'])) as { address: string }[])[0]!.address;
    await until(`the outside router learns ${lbIp} at ${to}'s MAC`, async () => (await outsideExec(['ip', 'neigh', 'show', lbIp])).includes(`lladdr ${mac}`), 30_000);
    // Answers from the endpoint left on the other node (the deleted node's pods go with it).
    await until(`${lbIp} answers again`, async () => {
      const a = await Promise.all([1, 2, 3].map(() => outsideExec(['curl', '-s', '--max-time', '2', `http://${lbIp}/`]).then((x) => x.trim(), () => '')));
      return a.every((x) => /^web-[ab]$/.test(x));
    }, 120_000);
    console.log(`# ${lbIp}: ${from} deleted, ${to} announcing and answering after ${Date.now() - t0} ms`);
  });
});
