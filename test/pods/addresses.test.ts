// A pod's address has one authority (its node's allocation, published by the controller) and survives
// what the cluster throws at it: a pod re-created mid-ADD, an allocation store lost or corrupt, a node
// whose apiserver watch is cut for longer than its sweep interval. Cluster in a box, IPv4, 2 nodes.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { dirs, nodeNs } from '../../deploy/local/config.ts';
import { kubectl, kubectlJson } from '../../deploy/local/kubectl.ts';
import { runningPid } from '../../deploy/local/proc.ts';
import { run, sleep } from '../../lib/exec.ts';
import { kovn } from '../box/helpers.ts';
import { NODE_FIRST_MS } from '../../watchers/pod.ts';
import {
  assertNetworksAgree, bringBack, createPods, getPod, holdDown, ipamAllocations, killAndWaitBack, lsp, ping, until, useBox, vsctl, waitReady,
} from './helpers.ts';
import type { PodJson } from './helpers.ts';

interface Run { workflowId: string; status: string; outcome: string; triggers: string[]; changes: { db: string; table: string; row: string; op: string }[] }
const runs = async (kind: 'pod' | 'node', ref: string): Promise<Run[]> => {
  const r = await kovn(['history', kind, ref, '--json']);
  assert.equal(r.code, 0, r.out);
  return JSON.parse(r.out) as Run[];
};
const ipamFile = (node: number): string => join(dirs.node(`node-${node}`), 'kovn', 'ipam.json');
const ipOf = async (pod: string): Promise<string> => (await getPod(pod)).status.podIP ?? '';
const ifacesOf = async (node: number, port: string): Promise<string[]> =>
  (await vsctl(node, ['--bare', '--columns=name', 'find', 'Interface', `external_ids:iface-id=${port}`])).split('\n').filter(Boolean);

describe('pod addresses (IPv4, 2 nodes)', { timeout: 20 * 60_000 }, () => {
  useBox(['--nodes', '2']);

  test('a pod deleted and re-created under the same name while its first ADD is in flight gets one address and one port', { timeout: 4 * 60_000 }, async () => {
    // The controller away: the first ADD has its address and waits for the controller to publish it.
    await holdDown('kovn-controller');
    let uid1 = '';
    try {
      await createPods([{ name: 'rc1', node: 'node-1' }]);
      await until('rc1\'s first ADD in flight', async () => (await runs('pod', 'default/rc1')).some((r) => r.workflowId.startsWith('CNI/default/rc1/add-') && r.status === 'RUNNING'));
      uid1 = (await getPod('rc1')).metadata.uid;
      await until('its address allocated', () => Promise.resolve(ipamAllocations(1)[uid1] !== undefined));
      await kubectl(['delete', 'pod', 'rc1', '--grace-period=0', '--force'], { timeoutMs: 60_000 });
      await createPods([{ name: 'rc1', node: 'node-1' }]);
    } finally {
      await bringBack('kovn-controller');
    }
    await waitReady(['rc1']);
    const pod = await getPod('rc1');
    assert.notEqual(pod.metadata.uid, uid1);
    // One port, the new incarnation's, holding its address; one OVS interface for it.
    const port = await until('the port is the new incarnation\'s', async () => ((p) => (p?.options.includes(pod.metadata.uid) ? p : undefined))(await lsp('default_rc1')));
    assert.match(port.addresses, new RegExp(` ${(await ipOf('rc1')).replaceAll('.', '\\.')}"`));
    await until('one OVS interface for default_rc1', async () => (await ifacesOf(1, 'default_rc1')).length === 1);
    // One address: the first incarnation's went back once its pod was confirmed gone.
    await until('the first incarnation\'s address freed', () => Promise.resolve(ipamAllocations(1)[uid1] === undefined));
    const mine = Object.values(ipamAllocations(1)).filter((a) => a.pod === 'default/rc1');
    assert.equal(mine.length, 1, JSON.stringify(mine));
    await assertNetworksAgree(['rc1']);
    const failed = (await runs('pod', 'default/rc1')).filter((r) => r.workflowId.startsWith('CNI/default/rc1/add-') && r.status === 'FAILED');
    assert.ok(failed.length >= 1, 'the first ADD failed: its pod was gone');
  });

  test('a newly bound pod\'s network is published by its node\'s CNI ADD: the controller starts no run for it', async () => {
    await createPods([{ name: 'fast1', node: 'node-1' }]);
    await waitReady(['fast1']);
    await sleep(NODE_FIRST_MS + 3000); // past the time its own run would have started
    const all = await runs('pod', 'default/fast1');
    const add = all.find((r) => r.workflowId.startsWith('CNI/default/fast1/add-') && r.status === 'COMPLETED');
    assert.ok(add?.changes.some((c) => c.db === 'nb' && c.table === 'Logical_Switch_Port' && c.row === 'default_fast1' && c.op === 'insert'), JSON.stringify(all));
    assert.deepEqual(all.filter((r) => r.workflowId === 'Pod/default/fast1'), []);
    await assertNetworksAgree(['fast1']);
    // Its deletion is the controller's at once: the port goes, then the address.
    await kubectl(['delete', 'pod', 'fast1', '--wait=true'], { timeoutMs: 60_000 });
    await until('fast1\'s port removed by its run', async () => (await runs('pod', 'default/fast1')).some((r) => r.workflowId === 'Pod/default/fast1' && r.outcome === 'deleted'));
  });

  test('the allocation store deleted, then corrupted, while pods run: rebuilt from the cluster, no address handed out twice', { timeout: 5 * 60_000 }, async () => {
    await createPods([{ name: 'st1', node: 'node-1' }, { name: 'st2', node: 'node-1' }, { name: 'st3', node: 'node-2' }]);
    await waitReady(['st1', 'st2', 'st3']);
    // The node's allocations of live pods (an allocation whose pod is gone is not the cluster's to show).
    const liveAllocations = async (): Promise<[string, { pod: string; ips: string[] }][]> => {
      const uids = new Set((await kubectlJson<{ items: PodJson[] }>(['get', 'pods'])).items.map((p) => p.metadata.uid));
      return Object.entries(ipamAllocations(1)).filter(([uid]) => uids.has(uid));
    };
    const before = await liveAllocations();
    assert.ok(before.length >= 2);
    const started = Date.now();
    rmSync(ipamFile(1));
    await killAndWaitBack('node-1-kovn-agent');
    const after = ipamAllocations(1);
    for (const [uid, a] of before) assert.deepEqual(after[uid]?.ips, a.ips, `${a.pod} keeps ${a.ips.join(',')}`);
    const rebuilt = (await runs('node', 'node-1')).find((r) => r.workflowId.startsWith('Restore//node-1/') && Date.parse(r.workflowId.slice('Restore//node-1/'.length)) >= started - 1000);
    assert.ok(rebuilt, 'the rebuild is a run in the node\'s history');
    assert.equal(rebuilt.outcome, 'converged');
    assert.ok(rebuilt.changes.filter((c) => c.table === 'IPAM' && c.op === 'insert').length >= 2, JSON.stringify(rebuilt.changes));
    // New pods on the node get addresses nobody holds.
    await createPods([{ name: 'st4', node: 'node-1' }, { name: 'st5', node: 'node-1' }]);
    await waitReady(['st4', 'st5']);
    await assertNetworksAgree(['st1', 'st2', 'st3', 'st4', 'st5']);
    // Corrupt: set aside (kept for a look) and rebuilt the same way.
    const held = await liveAllocations();
    writeFileSync(ipamFile(1), '{"subnets": [');
    await killAndWaitBack('node-1-kovn-agent');
    for (const [uid, a] of held) assert.deepEqual(ipamAllocations(1)[uid]?.ips, a.ips, `${a.pod} keeps ${a.ips.join(',')}`);
    assert.ok(readdirSync(join(dirs.node('node-1'), 'kovn')).some((f) => f.startsWith('ipam.json.corrupt-')), 'the corrupt store is kept aside');
    assert.equal(await ping('st5', await ipOf('st1')), true);
    const gone = new Set((await liveAllocations()).filter(([, a]) => /^default\/st\d$/.test(a.pod)).map(([uid]) => uid));
    await kubectl(['delete', 'pod', 'st1', 'st2', 'st3', 'st4', 'st5', '--wait=true'], { timeoutMs: 120_000 });
    // Freed once kubelet's DEL has unplugged them and their pods are confirmed gone.
    await until('the deleted pods\' addresses freed', () => Promise.resolve(Object.keys(ipamAllocations(1)).every((uid) => !gone.has(uid))), 120_000);
  });

  test('a node whose apiserver watch is cut for longer than the sweep interval frees no address of a live pod', { timeout: 5 * 60_000 }, async () => {
    const SWEEP_S = 3;
    const cfgFile = join(dirs.node('node-1'), 'agent.json');
    const original = readFileSync(cfgFile, 'utf8');
    writeFileSync(cfgFile, JSON.stringify({ ...(JSON.parse(original) as object), sweepSeconds: SWEEP_S }));
    await killAndWaitBack('node-1-kovn-agent');
    // Only the agent is cut off: its process in a net_cls cgroup whose packets to the apiserver are
    // rejected in node-1's namespace, its open connections killed. kubelet keeps its own.
    const server = new URL(/server: "?([^"\s]+)/.exec(readFileSync(join(dirs.node('node-1'), 'kovn-agent.kubeconfig'), 'utf8'))?.[1] ?? '');
    const mnt = join(dirs.run, 'net_cls');
    const group = join(mnt, 'kovn-cut');
    const rule = ['OUTPUT', '-p', 'tcp', '-d', server.hostname, '--dport', server.port, '-m', 'cgroup', '--cgroup', '0x00100001', '-j', 'REJECT', '--reject-with', 'tcp-reset'];
    const ns = nodeNs(1);
    const agent = runningPid('node-1-kovn-agent');
    assert.ok(agent);
    mkdirSync(mnt, { recursive: true });
    await run('mount', ['-t', 'cgroup', '-o', 'net_cls', 'kovn-net-cls', mnt]);
    try {
      mkdirSync(group, { recursive: true });
      writeFileSync(join(group, 'net_cls.classid'), '0x00100001');
      writeFileSync(join(group, 'cgroup.procs'), `${agent}\n`);
      await run('ip', ['netns', 'exec', ns, 'iptables', '-I', ...rule]);
      await run('ip', ['netns', 'exec', ns, 'ss', '-K', 'dst', server.hostname, 'dport', '=', server.port]);
      // A pod the agent's cache never sees: kubelet plugs it, the controller publishes it.
      const cutAt = new Date();
      await createPods([{ name: 'cut1', node: 'node-1' }]);
      await waitReady(['cut1']);
      const { uid } = (await getPod('cut1')).metadata;
      // Sweeps run against the stale cache and take cut1 for an orphan; the live read (cut too) keeps it.
      const sweptAt = await until('a sweep took cut1 for an orphan', async () => (await runs('node', 'node-1'))
        .find((r) => r.workflowId.startsWith('Sweep//node-1/') && new Date(r.workflowId.slice('Sweep//node-1/'.length)) > cutAt && r.triggers.some((t) => t.includes('default/cut1'))), 60_000);
      assert.deepEqual(sweptAt.changes, [], 'the sweep removed nothing');
      await sleep(3 * SWEEP_S * 1000);
      assert.ok(ipamAllocations(1)[uid], 'cut1 keeps its address');
      assert.equal((await ifacesOf(1, 'default_cut1')).length, 1, 'cut1 keeps its port');
    } finally {
      await run('ip', ['netns', 'exec', ns, 'iptables', '-D', ...rule]).catch(() => undefined);
      if (existsSync(group)) {
        for (const pid of readFileSync(join(group, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) writeFileSync(join(mnt, 'cgroup.procs'), `${pid}\n`);
        rmdirSync(group);
      }
      await run('umount', [mnt]).catch(() => undefined);
      writeFileSync(cfgFile, original);
      await killAndWaitBack('node-1-kovn-agent');
    }
    await assertNetworksAgree(['cut1']);
    await createPods([{ name: 'cut2', node: 'node-2' }]);
    await waitReady(['cut2']);
    assert.equal(await ping('cut2', await ipOf('cut1')), true);
  });
});
