// Pod networking end to end on the cluster in a box (IPv4): kovn's controller and node agents, real
// kubelets calling kovn's CNI plugin, OVN with GENEVE between nodes, real packets.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { kubectl, kubectlJson } from '../../deploy/local/kubectl.ts';
import { files } from '../../deploy/local/config.ts';
import { run } from '../../lib/exec.ts';
import { kovn } from '../box/helpers.ts';
import {
  BREAK_GLASS, assertNetworksAgree, bringBack, cni, createPods, holdDown, killAndWaitBack, events, exec, getPod, httpGet, ipamAllocations, lsp, nbctl, ping, pingFromNode, sandboxOf, until, useBox, vsctl, waitReady,
} from './helpers.ts';

Runtime.install({ logger: new DefaultLogger('WARN') });
const PODS = [{ name: 'a1', node: 'node-1' }, { name: 'a2', node: 'node-1' }, { name: 'b1', node: 'node-2' }, { name: 'b2', node: 'node-2' }];
const ip = async (pod: string): Promise<string> => (await getPod(pod)).status.podIP ?? '';

interface Run { workflowId: string; status: string; outcome: string; changes: { db: string; table: string; row: string; op: string }[] }
const history = async (ref: string): Promise<Run[]> => {
  const r = await kovn(['history', 'pod', ref, '--json']);
  assert.equal(r.code, 0, r.out);
  return JSON.parse(r.out) as Run[];
};

describe('pod networking (IPv4, 2 nodes)', { timeout: 30 * 60_000 }, () => {
  useBox(['--nodes', '2']);

  test('nodes turn Ready once kovn is up, with subnets, chassis and topology', async () => {
    const nodes = await kubectlJson<{ items: { metadata: { name: string; annotations: Record<string, string> }; status: { conditions: { type: string; status: string }[] } }[] }>(['get', 'nodes']);
    const subnets = new Set<string>();
    for (const n of nodes.items) {
      assert.equal(n.status.conditions.find((c) => c.type === 'Ready')?.status, 'True', n.metadata.name);
      const s = (JSON.parse(n.metadata.annotations['k8s.ovn.org/node-subnets'] ?? '{}') as { default: string[] }).default;
      assert.match(s[0] ?? '', /^10\.244\.\d+\.0\/24$/);
      subnets.add(s[0] ?? '');
      assert.equal(n.metadata.annotations['k8s.ovn.org/node-chassis-id'], n.metadata.name);
      const sw = await nbctl(['get', 'Logical_Switch', n.metadata.name, 'other_config:subnet']);
      assert.equal(sw.trim().replaceAll('"', ''), s[0]);
      assert.match(await nbctl(['lsp-get-addresses', `k8s-${n.metadata.name}`]), /0a:58:0a:f4:/);
    }
    assert.equal(subnets.size, 2, 'never the same subnet twice');
    assert.match(await nbctl(['lr-list']), /ovn_cluster_router/);
    assert.match(await nbctl(['ls-list']), /\(join\)/);
  });

  test('nodes added at once get distinct subnets; a deleted node\'s OVN objects are removed', { timeout: 3 * 60_000 }, async () => {
    // Node objects without a kubelet or agent behind them: their runs claim subnets and topology, then
    // wait for an agent that never comes until the deletion interrupts them.
    const ghosts = ['ghost-1', 'ghost-2', 'ghost-3'];
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: ghosts.map((name) => ({ apiVersion: 'v1', kind: 'Node', metadata: { name } })) }) });
    const subnets = await until('switches of the new nodes', async () => {
      const all = await Promise.all(['node-1', 'node-2', ...ghosts].map((n) => nbctl(['get', 'Logical_Switch', n, 'other_config:subnet']).then((x) => x.trim())));
      return all.every(Boolean) ? all : undefined;
    });
    assert.equal(new Set(subnets).size, subnets.length, `never the same subnet twice: ${subnets.join(' ')}`);
    await kubectl(['delete', 'node', ...ghosts]);
    for (const g of ghosts) {
      await until(`${g}'s switch removed`, async () => !(await nbctl(['ls-list'])).includes(`(${g})`));
      assert.doesNotMatch(await nbctl(['show', 'ovn_cluster_router']), new RegExp(`rtos-${g}`));
      assert.equal(await lsp(`k8s-${g}`), undefined);
    }
  });

  test('a deleted node\'s Southbound chassis is removed', async () => {
    // A chassis registered for a node that then vanishes (it never deregisters itself).
    await run('ovn-sbctl', [`--db=unix:${files.sbSock}`, 'chassis-add', 'gone-node', 'geneve', '172.29.0.99', '--', 'set', 'Chassis', 'gone-node', 'hostname=gone-node']);
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'gone-node' } }) });
    await until('gone-node\'s switch', async () => (await nbctl(['ls-list'])).includes('(gone-node)'));
    await kubectl(['delete', 'node', 'gone-node']);
    await until('chassis removed', async () => !(await run('ovn-sbctl', [`--db=unix:${files.sbSock}`, '--bare', '--columns=name', 'list', 'Chassis'])).includes('gone-node'));
    assert.match(await run('ovn-sbctl', [`--db=unix:${files.sbSock}`, '--bare', '--columns=name', 'list', 'Chassis']), /node-1/, 'live chassis stay');
  });

  test('pods on 2 nodes get addresses and talk: same node, across nodes (GENEVE), node to pod', { timeout: 5 * 60_000 }, async () => {
    await createPods(PODS);
    await waitReady(PODS.map((p) => p.name));
    const ips = Object.fromEntries(await Promise.all(PODS.map(async (p) => [p.name, await ip(p.name)] as const)));
    assert.equal(new Set(Object.values(ips)).size, 4, 'all addresses distinct');
    for (const [from, to] of [['a1', 'a2'], ['a1', 'b1'], ['b2', 'a2'], ['b1', 'b2']] as const) {
      assert.equal(await ping(from, ips[to] ?? ''), true, `ping ${from} -> ${to}`);
      assert.match(await httpGet(from, ips[to] ?? ''), /kovn toolbox/, `TCP ${from} -> ${to}`);
    }
    assert.equal(await pingFromNode(1, ips.a1 ?? ''), true, 'node-1 -> its own pod through k8s-node-1');
    assert.equal(await pingFromNode(1, ips.b1 ?? ''), true, 'node-1 -> a pod on node-2');
  });

  test("the pod's annotation, status.podIPs and its logical port agree", async () => {
    for (const p of PODS) {
      const pod = await getPod(p.name);
      const net = (JSON.parse(pod.metadata.annotations?.['k8s.ovn.org/pod-networks'] ?? '{}') as { default: { ip_addresses: string[]; mac_address: string } }).default;
      const podIps = (pod.status.podIPs ?? []).map((x) => x.ip);
      assert.deepEqual(net.ip_addresses.map((a) => a.split('/')[0]), podIps);
      const port = await lsp(`default_${p.name}`);
      assert.ok(port, `LSP default_${p.name}`);
      assert.ok(port.addresses.includes(`${net.mac_address} ${podIps[0]}`), port.addresses);
      assert.ok(port.options.includes(pod.metadata.uid), 'iface-id-ver is the pod UID');
      assert.ok(port.options.includes(p.node), 'requested-chassis is the node');
      assert.ok(port.external_ids.includes('"k8s.ovn.org/owner-controller","kovn"'), port.external_ids);
    }
  });

  test('CNI CHECK passes on a running pod; an ADD with a missing netns gets a CNI error result', async () => {
    const pod = await getPod('a1');
    const sb = await sandboxOf(1, 'a1');
    const args = `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=a1;K8S_POD_UID=${pod.metadata.uid}`;
    const check = await cni(1, { CNI_COMMAND: 'CHECK', CNI_CONTAINERID: sb.id, CNI_NETNS: sb.netns, CNI_ARGS: args },
      { prevResult: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: sb.netns }], ips: [{ address: `${pod.status.podIP}/24`, interface: 0 }] } });
    assert.equal(check.code, 0, JSON.stringify(check.out));
    const bad = await cni(1, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'deadbeef0000', CNI_NETNS: '/run/netns/kovn-no-such-ns', CNI_ARGS: args }, {});
    assert.notEqual(bad.code, 0);
    assert.equal(typeof bad.out.code, 'number');
    assert.match(JSON.stringify(bad.out), /kovn-no-such-ns|does not exist/);
    assert.equal(await ping('a1', await ip('b1')), true, 'other pods are unaffected');
  });

  test('a re-ADD of a live sandbox returns its attachment and leaves it as it is', async () => {
    const pod = await getPod('a1');
    const sb = await sandboxOf(1, 'a1');
    const host = sb.id.slice(0, 15);
    const ifindex = async (): Promise<string> => (await run('ip', ['-n', 'kovn-node-1', '-o', 'link', 'show', host])).split(':')[0] ?? '';
    const before = await ifindex();
    const args = `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=a1;K8S_POD_UID=${pod.metadata.uid}`;
    const add = await cni(1, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: sb.id, CNI_NETNS: sb.netns, CNI_ARGS: args }, {});
    assert.equal(add.code, 0, JSON.stringify(add.out));
    assert.match(JSON.stringify(add.out.ips), new RegExp(`"${(pod.status.podIP ?? '').replaceAll('.', '\\.')}/`));
    assert.equal(await ifindex(), before, 'the same veth: nothing was torn down');
    assert.equal(await ping('a1', await ip('b1')), true);
  });

  test('a deleted pod leaves no port, interface, veth, namespace or address; the address is not reused at once', { timeout: 3 * 60_000 }, async () => {
    const pod = await getPod('a2');
    const addr = pod.status.podIP ?? '';
    const sb = await sandboxOf(1, 'a2');
    const host = sb.id.slice(0, 15);
    await kubectl(['delete', 'pod', 'a2', '--wait=true'], { timeoutMs: 120_000 });
    await until('LSP default_a2 removed', async () => (await lsp('default_a2')) === undefined);
    // kubelet tears the sandbox down (CNI DEL) on its own schedule, after the API object is gone; the
    // address is freed only then (its port gone from NB and OVS, the pod confirmed gone).
    await until('OVS port removed', async () => !(await vsctl(1, ['list-ports', 'br-int'])).includes(host), 120_000);
    await until('IPAM release', () => Promise.resolve(!Object.keys(ipamAllocations(1)).includes(pod.metadata.uid)));
    await until('veth removed', () => run('ip', ['-n', 'kovn-node-1', 'link', 'show', host]).then(() => false, () => true));
    await until('pod netns removed', () => run('test', ['-e', sb.netns]).then(() => false, () => true));
    await createPods([{ name: 'a3', node: 'node-1' }]);
    await waitReady(['a3']);
    assert.notEqual(await ip('a3'), addr, 'a released address is not handed out again at once');
    assert.equal(await ping('a3', await ip('b1')), true);
  });

  test('a completed pod (restartPolicy Never) gives back its logical port, address and OVS port', { timeout: 3 * 60_000 }, async () => {
    const manifest = {
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'done1', namespace: 'default' },
      spec: { nodeSelector: { 'kubernetes.io/hostname': 'node-1' }, restartPolicy: 'Never', terminationGracePeriodSeconds: 0,
        containers: [{ name: 'c', image: 'kovn.local/toolbox:1', imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', 'ip -o addr show eth0; sleep 3'] }] },
    };
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) });
    await kubectl(['wait', '--for=jsonpath={.status.phase}=Succeeded', 'pod/done1', '--timeout=120s'], { timeoutMs: 150_000 });
    const pod = await getPod('done1');
    assert.match(await kubectl(['logs', 'done1']), /inet 10\.244\./, 'it had its network while it ran');
    await until('LSP default_done1 removed', async () => (await lsp('default_done1')) === undefined);
    await until('its address released', () => Promise.resolve(!Object.keys(ipamAllocations(1)).includes(pod.metadata.uid)));
    await until('its OVS port removed', async () => (await vsctl(1, ['--bare', '--columns=name', 'find', 'Interface', 'external_ids:iface-id=default_done1'])).trim() === '');
    const runs = await history('default/done1');
    assert.ok(runs.some((r) => r.changes.some((c) => c.db === 'nb' && c.row === 'default_done1' && c.op === 'delete')), JSON.stringify(runs));
    await kubectl(['delete', 'pod', 'done1', '--wait=true'], { timeoutMs: 60_000 });
  });

  test('kovn history shows a pod\'s runs with the OVN rows they wrote and the node actions', async () => {
    const runs = await history('default/a1');
    // The pod's network is its CNI ADD's run: the node's allocation, the port and annotation the
    // controller wrote for it, the node's veth and OVS port.
    const add = runs.filter((r) => r.workflowId.startsWith('CNI/default/a1/add-'));
    assert.ok(add.length >= 1, JSON.stringify(runs));
    const all = add.flatMap((r) => r.changes);
    assert.ok(all.some((c) => c.db === 'nb' && c.table === 'Logical_Switch_Port' && c.row === 'default_a1' && c.op === 'insert'), JSON.stringify(all));
    assert.ok(all.some((c) => c.db === 'node' && c.table === 'IPAM' && c.op === 'insert'));
    assert.ok(all.some((c) => c.db === 'k8s' && c.table === 'Pod' && c.op === 'update'));
    assert.ok(all.some((c) => c.table === 'Port' && c.op === 'insert'));
    const text = await kovn(['history', 'pod', 'default/a1']);
    assert.match(text.out, /insert\s+nb:Logical_Switch_Port default_a1/);
  });

  test('a port kovn does not own fails the pod\'s change with an Event; kovn replay completes it once it is gone', { timeout: 3 * 60_000 }, async () => {
    await nbctl(['lsp-add', 'node-2', 'default_clash']); // someone else's port, no kovn ownership
    await createPods([{ name: 'clash', node: 'node-2' }]);
    const failed = await until('a failed run', async () => (await history('default/clash')).find((r) => r.workflowId === 'Pod/default/clash' && r.status === 'FAILED'));
    assert.equal(failed.outcome, 'failed');
    const ev = await until('a ForeignPort event', async () => (await events('Pod', 'clash')).find((e) => e.reason === 'ForeignPort'));
    assert.match(ev.message, /default_clash exists and is not owned by kovn/);
    assert.equal(await nbctl(['get', 'Logical_Switch_Port', 'default_clash', 'external_ids']).then((s) => s.trim()), '{}', 'the foreign port was not touched');
    await nbctl(['lsp-del', 'default_clash']);
    const replayed = await kovn(['replay', 'Pod/default/clash', '--json']);
    assert.equal(replayed.code, 0, replayed.out);
    assert.equal((JSON.parse(replayed.out) as Run).status, 'COMPLETED');
    await waitReady(['clash']);
    assert.equal(await ping('clash', await ip('a1')), true);
  });

  test('garbage in k8s.ovn.org/pod-networks gets an Event and is repaired; other pods are unaffected', async () => {
    await kubectl([...BREAK_GLASS, 'annotate', 'pod', 'b2', '--overwrite', 'k8s.ovn.org/pod-networks={"default":{"ip_addresses":["nonsense"]}}']);
    const ev = await until('an InvalidAnnotation event', async () => (await events('Pod', 'b2')).find((e) => e.reason === 'InvalidAnnotation'));
    assert.match(ev.message, /k8s\.ovn\.org\/pod-networks/);
    await until('annotation repaired', async () => (await getPod('b2')).metadata.annotations?.['k8s.ovn.org/pod-networks']?.includes(await ip('b2')));
    assert.equal(await ping('a1', await ip('b1')), true);
  });

  test('a malformed node-subnets annotation gets an Event and is rewritten from the allocation', async () => {
    const before = (await kubectlJson<{ metadata: { annotations: Record<string, string> } }>(['get', 'node', 'node-2'])).metadata.annotations['k8s.ovn.org/node-subnets'];
    await kubectl([...BREAK_GLASS, 'annotate', 'node', 'node-2', '--overwrite', 'k8s.ovn.org/node-subnets=garbage']);
    const ev = await until('an InvalidAnnotation event on the node', async () => (await events('Node', 'node-2')).find((e) => e.reason === 'InvalidAnnotation'));
    assert.match(ev.message, /node-subnets/);
    await until('node-subnets rewritten', async () =>
      (await kubectlJson<{ metadata: { annotations: Record<string, string> } }>(['get', 'node', 'node-2'])).metadata.annotations['k8s.ovn.org/node-subnets'] === before);
    assert.equal(await ping('b1', await ip('a1')), true);
  });

  test('startup sync removes a kovn-owned port whose pod is gone and never touches a port kovn does not own', { timeout: 3 * 60_000 }, async () => {
    await nbctl(['lsp-add', 'node-1', 'default_ghost', '--', 'set', 'Logical_Switch_Port', 'default_ghost',
      'external_ids:k8s.ovn.org/owner-controller=kovn', 'external_ids:k8s.ovn.org/owner-type=Pod', 'external_ids:k8s.ovn.org/name=default/ghost',
      'external_ids:k8s.ovn.org/id=lsp:default_ghost']);
    await nbctl(['lsp-add', 'node-1', 'someone-elses-port']);
    await killAndWaitBack('kovn-controller');
    await until('orphaned port removed', async () => (await lsp('default_ghost')) === undefined);
    assert.ok(await lsp('someone-elses-port'), 'a port kovn does not own stays');
    await nbctl(['lsp-del', 'someone-elses-port']);
  });

  test('the controller killed in the middle of pods\' workflows: after restart they converge, no duplicates', { timeout: 4 * 60_000 }, async () => {
    await createPods([{ name: 'k1', node: 'node-1' }, { name: 'k2', node: 'node-2' }]);
    await killAndWaitBack('kovn-controller');
    await waitReady(['k1', 'k2']);
    await assertNetworksAgree(['k1', 'k2']);
    assert.equal(await ping('k1', await ip('k2')), true);
  });

  test('a node agent killed while pods are being plugged: after restart they converge with one address each', { timeout: 4 * 60_000 }, async () => {
    await createPods([{ name: 'n1', node: 'node-2' }, { name: 'n2', node: 'node-2' }]);
    await killAndWaitBack('node-2-kovn-agent');
    await waitReady(['n1', 'n2']);
    await assertNetworksAgree(['n1', 'n2']);
    assert.equal(await ping('n1', await ip('a1')), true);
    assert.equal(await ping('n2', await ip('n1')), true);
    assert.match(await exec('n2', ['ip', '-o', 'addr', 'show', 'eth0']), new RegExp(await ip('n2')));
  });

  test('one watching replica: a standby takes the Lease when the holder dies, and at once when it releases it', { timeout: 2 * 60_000 }, async () => {
    const { KubeConfig, CoordinationV1Api } = await import('@kubernetes/client-node');
    const { acquireLease } = await import('../../watchers/lease.ts');
    const { spawn } = await import('node:child_process');
    const kc = new KubeConfig();
    kc.loadFromFile(files.adminKubeconfig);
    const opts = (identity: string) => ({ namespace: 'default', name: 'kovn-test-lease', identity, durationSeconds: 4, renewDeadlineSeconds: 3, retryPeriodSeconds: 1 });
    const holderOf = async () => (await kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'kovn-test-lease', namespace: 'default' })).spec?.holderIdentity;
    // A contender in a process of its own, so it can die without a word (SIGKILL).
    const contender = (identity: string) => {
      const script = `import { KubeConfig } from '@kubernetes/client-node';
        import { acquireLease } from ${JSON.stringify(new URL('../../watchers/lease.ts', import.meta.url).pathname)};
        const kc = new KubeConfig(); kc.loadFromFile(${JSON.stringify(files.adminKubeconfig)});
        const l = await acquireLease(kc, ${JSON.stringify(opts(identity))}); void l.lost.then(() => process.exit(3));
        console.log('held');`;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: new URL('../..', import.meta.url).pathname, stdio: ['ignore', 'pipe', 'inherit'] });
      const held = new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('held')) resolve(); }));
      return { child, held };
    };
    const a = contender('replica-a');
    await a.held;
    let bHeld = false;
    const b = acquireLease(kc, opts('replica-b')).then((l) => { bHeld = true; return l; });
    await new Promise((r) => setTimeout(r, 6000));
    assert.equal(bHeld, false, 'the standby waits while the holder renews');
    assert.equal(await holderOf(), 'replica-a');
    a.child.kill('SIGKILL');
    const killedAt = Date.now();
    const lease = await b;
    assert.ok(Date.now() - killedAt < 10_000, `taken over ${Date.now() - killedAt} ms after the holder died`);
    assert.equal(await holderOf(), 'replica-b');
    const c = contender('replica-c');
    await new Promise((r) => setTimeout(r, 1500));
    const releasedAt = Date.now();
    await lease.release();
    await c.held;
    assert.ok(Date.now() - releasedAt < 3000, `taken ${Date.now() - releasedAt} ms after a release, not after expiry`);
    assert.equal(await holderOf(), 'replica-c');
    c.child.kill('SIGKILL');
    await kc.makeApiClient(CoordinationV1Api).deleteNamespacedLease({ name: 'kovn-test-lease', namespace: 'default' });
  });

  test('a DEL that never came: a gone pod\'s port and veth are swept when the agent starts, as a run in the node\'s history', { timeout: 3 * 60_000 }, async () => {
    await holdDown('node-2-kovn-agent');
    // What a lost DEL leaves: a veth whose host end is on br-int with kovn's keys, for a pod UID no longer bound.
    const host = 'kovnorphan0';
    await run('ip', ['-n', 'kovn-node-2', 'link', 'add', host, 'type', 'veth', 'peer', 'name', 'kovnorphan1']);
    await vsctl(2, ['add-port', 'br-int', host, '--', 'set', 'Interface', host, 'external_ids:iface-id=default_ghost',
      'external_ids:iface-id-ver=00000000-0000-4000-8000-00000000dead', `external_ids:k8s.ovn.org/sandbox=${'ab'.repeat(32)}`,
      'external_ids:k8s.ovn.org/pod=default/ghost']);
    await bringBack('node-2-kovn-agent');
    await until('orphan port swept', async () => !(await vsctl(2, ['list-ports', 'br-int'])).split('\n').includes(host));
    await until('orphan veth swept', () => run('ip', ['-n', 'kovn-node-2', 'link', 'show', host]).then(() => false, () => true));
    const r = await kovn(['history', 'node', 'node-2', '--json']);
    assert.equal(r.code, 0, r.out);
    const sweeps = (JSON.parse(r.out) as Run[]).filter((x) => x.workflowId.startsWith('Sweep//node-2/'));
    const changes = sweeps.flatMap((x) => x.changes);
    assert.ok(changes.some((c) => c.db === 'ovs' && c.table === 'Port' && c.row === host && c.op === 'delete'), JSON.stringify(sweeps));
    assert.ok(changes.some((c) => c.db === 'node' && c.table === 'veth' && c.row === host && c.op === 'delete'), JSON.stringify(sweeps));
    assert.equal(await ping('b1', await ip('n1')), true, 'live pods keep their ports');
  });

  test('an agent started while the apiserver is unreachable sweeps nothing: an unlisted node is not an empty one', { timeout: 3 * 60_000 }, async () => {
    const { readFileSync, writeFileSync, rmSync } = await import('node:fs');
    const { spawn } = await import('node:child_process');
    const { dirs } = await import('../../deploy/local/config.ts');
    const nd = dirs.node('node-2');
    const portsBefore = (await vsctl(2, ['list-ports', 'br-int'])).split('\n').filter((n) => n && !n.startsWith('k8s-'));
    assert.ok(portsBefore.length >= 1, 'node-2 has pod ports');
    await holdDown('node-2-kovn-agent');
    // The same agent, with a kubeconfig whose apiserver address answers nothing.
    const cfg = JSON.parse(readFileSync(`${nd}/agent.json`, 'utf8')) as Record<string, unknown>;
    const kubeconfig = readFileSync(String(cfg.kubeconfig), 'utf8').replace(/https:\/\/[0-9.]+:\d+/, 'https://127.0.0.1:9');
    writeFileSync(`${nd}/agent-unreachable.kubeconfig`, kubeconfig);
    writeFileSync(`${nd}/agent-unreachable.json`, JSON.stringify({ ...cfg, kubeconfig: `${nd}/agent-unreachable.kubeconfig`, readyFile: `${nd}/agent-unreachable.ready` }));
    const agent = spawn('ip', ['netns', 'exec', 'kovn-node-2', process.execPath, new URL('../../node-agent/main.ts', import.meta.url).pathname, `${nd}/agent-unreachable.json`],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    agent.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    agent.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    try {
      await until('the agent serves CNI', () => Promise.resolve(out.includes('serving')), 60_000);
      await new Promise((r) => setTimeout(r, 3000)); // its start-up sweep has had its chance
      assert.doesNotMatch(out, /sweep \(pod-gone\)/, out);
      const portsAfter = (await vsctl(2, ['list-ports', 'br-int'])).split('\n').filter((n) => n && !n.startsWith('k8s-'));
      assert.deepEqual(portsAfter, portsBefore, out);
    } finally {
      agent.kill('SIGKILL');
      rmSync(`${nd}/agent-unreachable.ready`, { force: true });
    }
    await bringBack('node-2-kovn-agent');
    assert.equal(await ping('a1', await ip('b1')), true, 'pods on the node kept their network');
  });

  test('a new sandbox of a pod takes over its port: the old sandbox\'s port and veth go, one interface per iface-id', { timeout: 3 * 60_000 }, async () => {
    await createPods([{ name: 'dup1', node: 'node-1' }]);
    await waitReady(['dup1']);
    const pod = await getPod('dup1');
    const old = (await sandboxOf(1, 'dup1')).id.slice(0, 15);
    const netns = 'kovn-t-dup1';
    const id = 'cd'.repeat(32);
    await run('ip', ['netns', 'add', netns]);
    try {
      const args = `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=dup1;K8S_POD_UID=${pod.metadata.uid}`;
      const add = await cni(1, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: id, CNI_NETNS: `/run/netns/${netns}`, CNI_ARGS: args }, {});
      assert.equal(add.code, 0, JSON.stringify(add.out));
      const ifaces = (await vsctl(1, ['--bare', '--columns=name', 'find', 'Interface', 'external_ids:iface-id=default_dup1'])).split('\n').filter(Boolean);
      assert.deepEqual(ifaces, [id.slice(0, 15)]);
      await until('old veth removed', () => run('ip', ['-n', 'kovn-node-1', 'link', 'show', old]).then(() => false, () => true));
      const del = await cni(1, { CNI_COMMAND: 'DEL', CNI_CONTAINERID: id, CNI_NETNS: `/run/netns/${netns}`, CNI_ARGS: args }, {});
      assert.equal(del.code, 0, JSON.stringify(del.out));
    } finally {
      await run('ip', ['netns', 'del', netns]);
    }
    await kubectl(['delete', 'pod', 'dup1', '--wait=true'], { timeoutMs: 120_000 });
  });
});
