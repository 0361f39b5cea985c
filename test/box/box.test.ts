// The cluster in a box, end to end on real components: kubelets with containerd and runc, the control
// plane, Temporal and OVN. The suite owns the box: it brings it up and takes it down.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { Client, Connection } from '@temporalio/client';
import { NET, PORTS, files, STATE } from '../../deploy/local/config.ts';
import { kubectl, kubectlJson } from '../../deploy/local/kubectl.ts';
import type { BoxStatus } from '../../deploy/local/status.ts';
import { run } from '../../lib/exec.ts';
import { downLeavesNothing, footprint, kovn } from './helpers.ts';

const NODES = ['node-1', 'node-2'];
Runtime.install({ logger: new DefaultLogger('WARN') });
const UP_TIMEOUT = 10 * 60_000;

interface Pod { status?: { phase?: string; hostIP?: string } }
interface NodeList {
  items: {
    metadata: { name: string };
    status: { addresses: { type: string; address: string }[]; conditions: { type: string; status: string; reason?: string; message?: string }[] };
  }[];
}

function pidsOf(s: BoxStatus): Record<string, number | null> {
  return Object.fromEntries([...s.components, ...s.nodes.flatMap((n) => n.components)].map((c) => [c.name, c.pid]));
}

async function statusJson(): Promise<BoxStatus> {
  const r = await kovn(['status', '--json']);
  return JSON.parse(r.out) as BoxStatus;
}

describe('cluster in a box', { timeout: 30 * 60_000 }, () => {
  let before0: ReturnType<typeof footprint>;

  before(async () => {
    const down = await kovn(['down']); // a box left behind by an earlier run
    assert.equal(down.code, 0, down.out);
    before0 = footprint();
  });

  test('a component that cannot start makes up fail with a message that names it', { timeout: UP_TIMEOUT }, async () => {
    const squatter: Server = createServer();
    await new Promise<void>((r) => squatter.listen(PORTS.temporalUi, '127.0.0.1', r));
    try {
      const r = await kovn(['up', '--nodes', '1', '--bare']);
      assert.notEqual(r.code, 0, 'up must fail while the UI port is taken');
      assert.match(r.out, /fwd-temporal-ui/);
      assert.match(r.out, new RegExp(`127\\.0\\.0\\.1:${PORTS.temporalUi} is already in use`));
    } finally {
      await new Promise<void>((r) => squatter.close(() => r()));
      const d = await kovn(['down']);
      assert.equal(d.code, 0, d.out);
    }
  });

  test('up brings 2 nodes up; a second up changes nothing', { timeout: UP_TIMEOUT }, async () => {
    const r = await kovn(['up', '--nodes', '2', '--bare']);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`export KUBECONFIG=${files.adminKubeconfig}`));
    const s1 = await statusJson();
    assert.equal(s1.healthy, true, JSON.stringify(s1, null, 2));
    const nsBefore = footprint().namespaces.sort();

    const again = await kovn(['up', '--nodes', '2', '--bare']);
    assert.equal(again.code, 0, again.out);
    assert.doesNotMatch(again.out, /✓ [\w-]+ \d/, 'every daemon should report "already running"');
    const s2 = await statusJson();
    assert.deepEqual(pidsOf(s2), pidsOf(s1), 'no daemon was restarted');
    assert.deepEqual(footprint().namespaces.sort(), nsBefore);
  });

  test('nodes list their underlay addresses and NetworkPluginNotReady', async () => {
    const list = await kubectlJson<NodeList>(['get', 'nodes']);
    assert.deepEqual(list.items.map((n) => n.metadata.name).sort(), NODES);
    for (const [i, n] of list.items.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)).entries()) {
      const internal = n.status.addresses.find((a) => a.type === 'InternalIP')?.address;
      assert.equal(internal, `172.29.0.${11 + i}`);
      const ready = n.status.conditions.find((c) => c.type === 'Ready');
      assert.equal(ready?.status, 'False');
      assert.match(`${ready?.reason} ${ready?.message}`, /NetworkPluginNotReady|cni plugin not initialized|network plugin/i);
    }
    const wide = await kubectl(['get', 'nodes', '-o', 'wide']);
    assert.match(wide, /172\.29\.0\.11/);
  });

  test('a hostNetwork pod from kovn.local/toolbox:1 runs on each node; logs and exec work', { timeout: 5 * 60_000 }, async () => {
    for (const node of NODES) {
      const pod = {
        apiVersion: 'v1', kind: 'Pod',
        metadata: { name: `hostnet-${node}`, namespace: 'default' },
        spec: {
          hostNetwork: true,
          nodeSelector: { 'kubernetes.io/hostname': node },
          tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoSchedule' }],
          terminationGracePeriodSeconds: 1,
          containers: [{ name: 'c', image: 'kovn.local/toolbox:1', imagePullPolicy: 'IfNotPresent',
            command: ['sh', '-c', `echo hello from ${node}; exec sleep 3600`] }],
        },
      };
      await kubectl(['apply', '-f', '-'], { input: JSON.stringify(pod) });
    }
    await kubectl(['wait', '--for=condition=Ready', 'pod', ...NODES.map((n) => `hostnet-${n}`), '--timeout=180s'], { timeoutMs: 200_000 });
    for (const [i, node] of NODES.entries()) {
      const pod = await kubectlJson<Pod>(['get', 'pod', `hostnet-${node}`]);
      assert.equal(pod.status?.phase, 'Running');
      assert.equal(pod.status?.hostIP, `172.29.0.${11 + i}`);
      assert.match(await kubectl(['logs', `hostnet-${node}`]), new RegExp(`hello from ${node}`));
      // The pod shares the node's network namespace: its underlay address is on eth0 (bare: no agent made breth0).
      assert.match(await kubectl(['exec', `hostnet-${node}`, '--', 'ip', '-4', '-o', 'addr', 'show', 'eth0']), new RegExp(`172\\.29\\.0\\.${11 + i}/24`));
    }
    await kubectl(['delete', 'pod', ...NODES.map((n) => `hostnet-${n}`), '--grace-period=1', '--wait=true'], { timeoutMs: 120_000 });
  });

  test('the controller-manager has created the default service accounts', async () => {
    for (const ns of ['default', 'kube-system', 'kube-public']) {
      assert.match(await kubectl(['get', 'serviceaccount', 'default', '-n', ns, '-o', 'name']), /serviceaccount\/default/);
    }
  });

  test('a Temporal workflow round trip through a real worker', { timeout: 120_000 }, async () => {
    const address = `127.0.0.1:${PORTS.temporal}`;
    const connection = await NativeConnection.connect({ address });
    const taskQueue = `box-test-${process.pid}`;
    try {
      const worker = await Worker.create({
        connection, namespace: 'kovn', taskQueue,
        workflowsPath: new URL('./echo-workflow.ts', import.meta.url).pathname,
        activities: { greet: (name: string) => Promise.resolve(`hello ${name}`) },
      });
      const clientConn = await Connection.connect({ address });
      const client = new Client({ connection: clientConn, namespace: 'kovn' });
      const result: string = await worker.runUntil(client.workflow.execute<(name: string) => Promise<string>>('echo', { taskQueue, workflowId: `box-test-${Date.now()}`, args: ['box'] }));
      assert.equal(result, 'workflow saw: hello box');
      await clientConn.close();
    } finally {
      await connection.close();
    }
  });

  test('the Temporal Web UI answers HTTP', async () => {
    const res = await fetch(`http://127.0.0.1:${PORTS.temporalUi}/`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /<html/i);
  });

  test('the Southbound DB lists one chassis per node with GENEVE encap', async () => {
    const out = await run('ovn-sbctl', [`--db=unix:${files.sbSock}`, '-f', 'csv', '--no-headings', '--columns=chassis_name,type,ip', 'list', 'Encap']);
    const rows = out.trim().split('\n').map((l) => l.replaceAll('"', '')).sort();
    assert.deepEqual(rows, ['node-1,geneve,172.29.0.11', 'node-2,geneve,172.29.0.12']);
    const chassis = (await run('ovn-sbctl', [`--db=unix:${files.sbSock}`, '--bare', '--columns=name', 'list', 'Chassis'])).trim().split(/\s+/).sort();
    assert.deepEqual(chassis, NODES);
  });

  test('status --json reports every component healthy and how to reach the box', async () => {
    const s = await statusJson();
    assert.equal(s.healthy, true);
    assert.equal(s.kubeconfig, files.adminKubeconfig);
    assert.equal(s.temporal.address, `127.0.0.1:${PORTS.temporal}`);
    assert.match(s.temporal.ui, new RegExp(`^http://127\\.0\\.0\\.1:${PORTS.temporalUi}/`));
    assert.deepEqual(s.nodes.map((n) => [n.name, n.ip, n.ready]), [['node-1', '172.29.0.11', 'False'], ['node-2', '172.29.0.12', 'False']]);
    // The outside: its external host's address, and its echo server answering a node.
    assert.equal(s.outside.host, NET.externalHostIp);
    const seen = await run('nsenter', ['--net=/run/netns/kovn-node-1', '--', 'curl', '-s', '--max-time', '5', `http://${s.outside.host}:${s.outside.httpPort}/`]);
    assert.deepEqual(seen.trim().split('\n'), ['kovn-outside', '172.29.0.11']);
  });

  test('after down no process, namespace, link, mount or socket of the stack remains', { timeout: 5 * 60_000 }, async () => {
    const left = await downLeavesNothing();
    assert.deepEqual(left.links.sort(), before0.links.sort());
    const s = await kovn(['status', '--json']);
    assert.notEqual(s.code, 0);
    assert.equal(existsSync(STATE), false, 'the state dir is removed');
  });

  after(async () => {
    await kovn(['down']);
  });
});
