// The node gateway on the cluster in a box (IPv4, 2 nodes, then a third): pods reach the external host
// (seen as their node's IP), the control plane, their node and host-network pods; every gateway row is
// named and owned as OVN-Kubernetes has it; a node added later gets its gateway, a deleted one loses
// every row; a controller restart changes no row; bad input gets an Event and stops nothing else.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NET, files } from '../../deploy/local/config.ts';
import { kubectl, kubectlJson } from '../../deploy/local/kubectl.ts';
import { run } from '../../lib/exec.ts';
import { kovn } from '../box/helpers.ts';
import { BREAK_GLASS, createPods, events, exec, getPod, killAndWaitBack, nbctl, sandboxOf, until, useBox, waitReady } from '../pods/helpers.ts';

const HOST = NET.externalHostIp;

/** The external host's HTTP answer: its banner and the client's address as it saw it. */
async function httpFromPod(pod: string, host = HOST): Promise<string> {
  return exec(pod, ['timeout', '5', 'wget', '-q', '-O', '-', `http://${host.includes(':') ? `[${host}]` : host}:${NET.echo.http}/`]);
}

/** A UDP datagram from inside the pod's own network namespace to the external host's echo server. */
async function udpFromPod(node: number, pod: string): Promise<string> {
  const { netns } = await sandboxOf(node, pod);
  return run('nsenter', [`--net=${netns}`, '--', 'socat', '-T', '3', '-', `UDP4:${HOST}:${NET.echo.udp}`], { input: 'hello\n', timeoutMs: 10_000 });
}

/** `nc -w 3 IP PORT` from a pod: 0 on connect. */
const connects = (pod: string, ip: string, port: number): Promise<boolean> => exec(pod, ['nc', '-w', '3', ip, String(port)]).then(() => true, () => false);

interface NodeJson { metadata: { name: string; uid: string; creationTimestamp: string; annotations?: Record<string, string> } }

/** The NB rows (every table kovn writes) that name or are owned by a node. */
async function nodeRows(node: string): Promise<string[]> {
  const out: string[] = [];
  for (const table of ['Logical_Router', 'Logical_Router_Port', 'Logical_Switch', 'Logical_Switch_Port', 'Logical_Router_Static_Route', 'NAT', 'Logical_Router_Policy']) {
    const owned = await nbctl(['--bare', '--columns=_uuid', 'find', table, `external_ids:k8s.ovn.org/name=${node}`]);
    for (const u of owned.split('\n').filter(Boolean)) out.push(`${table} ${u} (owned)`);
    if (['Logical_Router', 'Logical_Router_Port', 'Logical_Switch', 'Logical_Switch_Port'].includes(table)) {
      const named = await nbctl(['--bare', '--columns=name', 'list', table]);
      for (const n of named.split('\n').filter((x) => x === node || x.endsWith(`_${node}`) || x.endsWith(`-${node}`))) out.push(`${table} ${n}`);
    }
  }
  const bindings = await nbctl(['--bare', '--columns=logical_port', 'list', 'Static_MAC_Binding']);
  for (const b of bindings.split('\n').filter((x) => x.endsWith(`_${node}`))) out.push(`Static_MAC_Binding ${b}`);
  return out;
}

/** The whole of what kovn writes in NB, uuids included: any rewrite or re-creation shows. */
async function nbDump(): Promise<string> {
  const out: string[] = [];
  for (const table of ['Logical_Router', 'Logical_Router_Port', 'Logical_Switch', 'Logical_Switch_Port', 'Logical_Router_Static_Route', 'NAT', 'Logical_Router_Policy', 'Static_MAC_Binding']) {
    out.push(await run('ovsdb-client', ['dump', `unix:${files.nbSock}`, 'OVN_Northbound', table]));
  }
  return out.join('\n');
}

const hostNetPod = (name: string, node: string, port: number): Record<string, unknown> => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default' },
  spec: {
    nodeSelector: { 'kubernetes.io/hostname': node }, hostNetwork: true, terminationGracePeriodSeconds: 0,
    containers: [{ name: 'c', image: 'kovn.local/toolbox:1', imagePullPolicy: 'IfNotPresent', command: ['httpd', '-f', '-p', String(port), '-h', '/var/www'] }],
  },
});

describe('node gateway (IPv4)', { timeout: 20 * 60_000 }, () => {
  useBox(['--nodes', '2']);

  test('each node has its gateway router, join and external ports, id and annotations as OVN-Kubernetes has them', async () => {
    const nodes = (await kubectlJson<{ items: NodeJson[] }>(['get', 'nodes'])).items;
    const ids = new Set<string>();
    for (const n of nodes) {
      const name = n.metadata.name;
      const a = n.metadata.annotations ?? {};
      const id = a['k8s.ovn.org/node-id'] ?? '';
      assert.match(id, /^\d+$/);
      assert.ok(Number(id) >= 2, `${name}: ids 0 and 1 are reserved`);
      ids.add(id);
      const l3 = (JSON.parse(a['k8s.ovn.org/l3-gateway-config'] ?? '{}') as { default: Record<string, unknown> }).default;
      const ip = `${NET.nodeIp(Number(name.slice(5)))}/${NET.prefixLen}`;
      assert.equal(l3.mode, 'shared');
      assert.equal(l3['interface-id'], `breth0_${name}`);
      assert.deepEqual(l3['ip-addresses'], [ip]);
      assert.deepEqual(l3['next-hops'], [NET.outsideIp]);
      assert.deepEqual(JSON.parse(a['k8s.ovn.org/node-primary-ifaddr'] ?? '{}'), { ipv4: ip });
      assert.deepEqual(JSON.parse(a['k8s.ovn.org/node-gateway-router-lrp-ifaddr'] ?? '{}'), { ipv4: `100.64.0.${id}/16` });
      const gr = `GR_${name}`;
      assert.equal((await nbctl(['get', 'Logical_Router', gr, 'options:chassis'])).trim(), a['k8s.ovn.org/node-chassis-id']);
      assert.equal((await nbctl(['get', 'Logical_Router', gr, 'options:lb_force_snat_ip'])).trim(), 'router_ip');
      assert.match(await nbctl(['get', 'Logical_Router_Port', `rtoj-${gr}`, 'networks']), new RegExp(`100\\.64\\.0\\.${id}/16`));
      assert.match(await nbctl(['get', 'Logical_Router_Port', `rtoe-${gr}`, 'networks']), new RegExp(ip.replace(/\./g, '\\.')));
      assert.equal((await nbctl(['get', 'Logical_Switch_Port', `breth0_${name}`, 'type'])).trim(), 'localnet');
      assert.match(await nbctl(['lr-route-list', gr]), new RegExp(`0\\.0\\.0\\.0/0\\s+${NET.outsideIp.replace(/\./g, '\\.')} dst-ip rtoe-${gr}`));
      assert.match(await nbctl(['lr-nat-list', gr]), /snat\s+\S+\s+10\.244\.0\.0\/16/);
      // The agent's bridge: the node's address on it, its flows, the bridge mapping.
      assert.match(await run('ip', ['-n', `kovn-${name}`, '-o', 'addr', 'show', 'dev', 'breth0']), new RegExp(` ${ip.replace(/\./g, '\\.')} `));
    }
    assert.equal(ids.size, nodes.length, 'one id per node');
    // Every gateway row written is in the node's run summary.
    const hist = await kovn(['history', 'node', 'node-1']);
    for (const row of ['GR_node-1', 'rtoe-GR_node-1', 'jtor-GR_node-1', 'ext_node-1', 'breth0_node-1', 'GR_node-1:snat:10.244.0.0/16', 'GR_node-1:default:v4']) {
      assert.ok(hist.out.includes(row), `kovn history node node-1 shows ${row}:\n${hist.out}`);
    }
    assert.match(await nbctl(['lr-route-list', 'ovn_cluster_router']), /src-ip/);
    assert.equal((await nbctl(['--bare', '--columns=name', 'find', 'Logical_Router_Port', 'name=rtos-join'])).trim(), '', 'the old join port is gone');
    assert.match(await nbctl(['--bare', '--columns=name', 'list', 'Logical_Switch_Port']), /jtor-ovn_cluster_router/);
  });

  test('a pod on each node reaches the external host over TCP and UDP, seen as its node\'s IP', { timeout: 5 * 60_000 }, async () => {
    await createPods([{ name: 'g1', node: 'node-1' }, { name: 'g2', node: 'node-2' }]);
    await waitReady(['g1', 'g2']);
    for (const [pod, i] of [['g1', 1], ['g2', 2]] as const) {
      assert.deepEqual((await httpFromPod(pod)).trim().split('\n'), ['kovn-outside', NET.nodeIp(i)], `${pod} over TCP`);
      assert.equal((await udpFromPod(i, pod)).trim(), NET.nodeIp(i), `${pod} over UDP`);
    }
  });

  test('a pod reaches the control plane, its own node, a host-network pod on the other node; a host-network pod reaches a pod', { timeout: 5 * 60_000 }, async () => {
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [hostNetPod('hn1', 'node-1', 18080), hostNetPod('hn2', 'node-2', 18080)] }) });
    await waitReady(['hn1', 'hn2']);
    assert.equal(await connects('g1', NET.cpIp, 6443), true, 'the apiserver');
    assert.equal(await connects('g1', NET.nodeIp(1), 10250), true, 'its own node\'s kubelet');
    assert.equal(await connects('g2', NET.nodeIp(2), 10250), true, 'its own node\'s kubelet (node-2)');
    assert.match(await exec('g1', ['timeout', '5', 'wget', '-q', '-O', '-', `http://${NET.nodeIp(2)}:18080/`]), /kovn toolbox/, 'a host-network pod on the other node');
    const g2 = (await getPod('g2')).status.podIP ?? '';
    assert.match(await exec('hn1', ['timeout', '5', 'wget', '-q', '-O', '-', `http://${g2}:8080/`]), /kovn toolbox/, 'a host-network pod reaches a pod');
    const g1 = (await getPod('g1')).status.podIP ?? '';
    assert.match(await exec('g2', ['timeout', '5', 'wget', '-q', '-O', '-', `http://${g1}:8080/`]), /kovn toolbox/, 'pod to pod across nodes');
  });

  test('a controller restart changes no gateway row', { timeout: 3 * 60_000 }, async () => {
    const before = await nbDump();
    await killAndWaitBack('kovn-controller');
    // Its start-up sync looks at every node and pod; give it time to (not) write.
    await new Promise((r) => setTimeout(r, 10_000));
    assert.equal(await nbDump(), before);
  });

  test('bad input: a malformed l3-gateway-config gets an Event and is rewritten; a node without an InternalIP gets an Event; the others go on', { timeout: 5 * 60_000 }, async () => {
    const good = (await kubectlJson<NodeJson>(['get', 'node', 'node-2'])).metadata.annotations?.['k8s.ovn.org/l3-gateway-config'];
    await kubectl([...BREAK_GLASS, 'annotate', '--overwrite', 'node', 'node-2', 'k8s.ovn.org/l3-gateway-config={"default":{"mode":"bogus"}}']);
    await until('the Event on node-2', async () => (await events('Node', 'node-2')).find((e) => e.reason === 'InvalidAnnotation' && e.message.includes('l3-gateway-config')));
    await until('the annotation rewritten', async () =>
      (await kubectlJson<NodeJson>(['get', 'node', 'node-2'])).metadata.annotations?.['k8s.ovn.org/l3-gateway-config'] === good);

    await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'ghost', labels: { 'kubernetes.io/hostname': 'ghost' } } }) });
    const ev = await until('the Event on ghost', async () => (await events('Node', 'ghost')).find((e) => e.reason === 'NodeWithoutInternalIP'));
    assert.match(ev.message, /no InternalIP/);
    const hist = await kovn(['history', 'node', 'ghost']);
    assert.match(hist.out, /NodeWithoutInternalIP/, hist.out);
    assert.deepEqual((await httpFromPod('g1')).trim().split('\n'), ['kovn-outside', NET.nodeIp(1)], 'other nodes unaffected');
    await kubectl(['delete', 'node', 'ghost', '--wait=true']);
    await until('ghost\'s rows gone', async () => (await nodeRows('ghost')).length === 0);
  });

  test('a node added after start gets its gateway; a deleted node loses every gateway row, and only then its id', { timeout: 8 * 60_000 }, async () => {
    const up = await kovn(['up', '--nodes', '3']);
    assert.equal(up.code, 0, up.out);
    const n3 = await kubectlJson<NodeJson>(['get', 'node', 'node-3']);
    await createPods([{ name: 'g3', node: 'node-3' }]);
    await waitReady(['g3']);
    const body = await until('g3 reaches the external host', async () => {
      const b = await httpFromPod('g3').catch(() => '');
      return b.includes('kovn-outside') ? b : undefined;
    }, 120_000);
    const ms = Date.now() - Date.parse(n3.metadata.creationTimestamp);
    console.log(`node-3: registration -> pod reaches the external host: ${(ms / 1000).toFixed(1)} s; NB rows of node-3: ${(await nodeRows('node-3')).length}`);
    assert.deepEqual(body.trim().split('\n'), ['kovn-outside', NET.nodeIp(3)]);
    const id = (await kubectlJson<NodeJson>(['get', 'node', 'node-3'])).metadata.annotations?.['k8s.ovn.org/node-id'] ?? '';
    assert.match(id, /^\d+$/);
    const holders = async (): Promise<string> => (await nbctl(['--bare', '--columns=name', 'find', 'Logical_Router', `external_ids:k8s.ovn.org/node-id="${id}"`])).trim();
    assert.equal(await holders(), 'GR_node-3', `node id ${id} is held by node-3's router`);

    // Gone for good: kubelet stopped first (it would register the node again), then the Node deleted.
    await kubectl(['delete', 'pod', 'g3', '--force', '--grace-period=0']);
    const stop = await kovn(['stop', 'node-3-kubelet']);
    assert.equal(stop.code, 0, stop.out);
    await kubectl(['delete', 'node', 'node-3', '--wait=true']);
    await until('every row of node-3 gone', async () => (await nodeRows('node-3')).length === 0 || undefined, 60_000)
      .catch(async (err: unknown) => assert.fail(`${String(err)}; left: ${(await nodeRows('node-3')).join(', ')}`));
    assert.equal(await holders(), '', `node id ${id} is free once node-3 is gone`);
    // Other nodes' rows untouched, and their pods still get out.
    assert.deepEqual((await httpFromPod('g2')).trim().split('\n'), ['kovn-outside', NET.nodeIp(2)]);
  });
});
