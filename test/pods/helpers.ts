// Helpers for the pod-network suites: real pods on the box, probed with kubectl exec and from the nodes.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before } from 'node:test';
import { join } from 'node:path';
import { files, nodeNs, dirs } from '../../deploy/local/config.ts';
import { kubectl, kubectlJson } from '../../deploy/local/kubectl.ts';
import { run } from '../../lib/exec.ts';

export interface PodJson {
  metadata: { name: string; namespace: string; uid: string; annotations?: Record<string, string> };
  spec: { nodeName?: string };
  status: { phase?: string; podIP?: string; podIPs?: { ip: string }[]; conditions?: { type: string; status: string }[] };
}

export function podManifest(name: string, node: string, extra: { annotations?: Record<string, string> } = {}): string {
  return JSON.stringify({
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace: 'default', ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    spec: {
      nodeSelector: { 'kubernetes.io/hostname': node },
      terminationGracePeriodSeconds: 0,
      containers: [{ name: 'c', image: 'kovn.local/toolbox:1', imagePullPolicy: 'IfNotPresent', command: ['httpd', '-f', '-p', '8080', '-h', '/var/www'] }],
    },
  });
}

/**
 * A host-network pod `hostweb` on `node` answering HTTP with its name on 18080 (every address) and on
 * 18081 bound to the node's IPv4 address alone.
 */
export const hostWebPod = (node: string): unknown => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name: 'hostweb', namespace: 'default', labels: { app: 'hostweb' } },
  spec: {
    hostNetwork: true, nodeSelector: { 'kubernetes.io/hostname': node }, terminationGracePeriodSeconds: 0,
    containers: [{
      name: 'c', image: 'kovn.local/toolbox:1', imagePullPolicy: 'IfNotPresent',
      env: [{ name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } }],
      command: ['sh', '-c', 'mkdir -p /w && echo hostweb > /w/index.html && httpd -p $HOST_IP:18081 -h /w && exec httpd -f -p 18080 -h /w'],
      readinessProbe: { tcpSocket: { port: 18080 }, periodSeconds: 1 },
    }],
  },
});

export async function createPods(pods: { name: string; node: string }[]): Promise<void> {
  const list = { apiVersion: 'v1', kind: 'List', items: pods.map((p) => JSON.parse(podManifest(p.name, p.node)) as unknown) };
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify(list) });
}

export async function waitReady(names: string[], timeout = '180s'): Promise<void> {
  await kubectl(['wait', '--for=condition=Ready', 'pod', ...names, `--timeout=${timeout}`], { timeoutMs: 240_000 });
}

export const getPod = (name: string): Promise<PodJson> => kubectlJson<PodJson>(['get', 'pod', name]);

/** `kubectl exec` a command in a pod; resolves with its output, rejects on a non-zero exit. */
export const exec = (pod: string, cmd: string[]): Promise<string> => kubectl(['exec', pod, '--', ...cmd], { timeoutMs: 30_000 });

/** ICMP from a pod; -W bounds each probe so a blackhole fails fast. */
export async function ping(pod: string, ip: string): Promise<boolean> {
  return exec(pod, ['ping', '-c', '2', '-W', '2', ip]).then(() => true, () => false);
}

/** TCP: fetch the pod's httpd page (busybox wget; `timeout` because its own -T crashes). */
export async function httpGet(pod: string, ip: string): Promise<string> {
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return exec(pod, ['timeout', '5', 'wget', '-q', '-O', '-', `http://${host}:8080/`]);
}

/** From a node's own network namespace (through its management port). */
export function pingFromNode(node: number, ip: string): Promise<boolean> {
  return run('nsenter', [`--net=/run/netns/${nodeNs(node)}`, '--', 'ping', '-c', '2', '-W', '2', ip]).then(() => true, () => false);
}

/** An HTTP(S) GET from a node's own network namespace (certificates unchecked); '' when it fails. */
export function curlFromNode(node: number, url: string): Promise<string> {
  return run('nsenter', [`--net=/run/netns/${nodeNs(node)}`, '--', 'curl', '-sk', '--max-time', '3', url]).then((s) => s.trim(), () => '');
}

export async function nbctl(args: string[]): Promise<string> {
  return run('ovn-nbctl', [`--db=unix:${files.nbSock}`, ...args]);
}

/** The logical switch port of a pod, or undefined. */
export async function lsp(name: string): Promise<{ addresses: string; options: string; external_ids: string } | undefined> {
  const out = await nbctl(['--format=json', '--columns=addresses,options,external_ids', 'find', 'Logical_Switch_Port', `name=${name}`]);
  const t = JSON.parse(out) as { data: unknown[][] };
  const row = t.data[0];
  if (!row) return undefined;
  return { addresses: JSON.stringify(row[0]), options: JSON.stringify(row[1]), external_ids: JSON.stringify(row[2]) };
}

export async function vsctl(node: number, args: string[]): Promise<string> {
  return run('ovs-vsctl', [`--db=unix:${join(dirs.node(`node-${node}`), 'ovs', 'db.sock')}`, ...args]);
}

export function ipamAllocations(node: number): Record<string, { pod: string; ips: string[] }> {
  const f = join(dirs.node(`node-${node}`), 'kovn', 'ipam.json');
  return (JSON.parse(readFileSync(f, 'utf8')) as { allocations: Record<string, { pod: string; ips: string[] }> }).allocations;
}

import { until } from '../box/helpers.ts';

export { until };

export async function events(kind: string, name: string, namespace = 'default'): Promise<{ reason: string; message: string; type: string }[]> {
  const list = await kubectlJson<{ items: { reason: string; message: string; type: string; involvedObject: { kind: string; name: string } }[] }>(
    ['get', 'events', '-n', namespace, '--field-selector', `involvedObject.kind=${kind},involvedObject.name=${name}`]);
  return list.items;
}

/** The sandbox id and netns of a pod, from its node's containerd (as the runtime knows them). */
export async function sandboxOf(node: number, pod: string): Promise<{ id: string; netns: string }> {
  const { bin } = await import('../../deploy/local/tools.ts');
  const sock = `unix://${join(dirs.node(`node-${node}`), 'containerd.sock')}`;
  const id = (await run(bin('crictl'), ['-r', sock, 'pods', '--name', `^${pod}$`, '--state', 'ready', '-q'])).trim().split('\n')[0] ?? '';
  const info = await run(bin('crictl'), ['-r', sock, 'inspectp', id]);
  const netns = /"path":\s*"(\/var\/run\/netns\/[^"]+|\/run\/netns\/[^"]+)"/.exec(info)?.[1] ?? '';
  return { id, netns };
}

/** Runs the installed kovn CNI plugin as containerd would: env + netconf on stdin. */
export async function cni(node: number, env: Record<string, string>, conf: Record<string, unknown>): Promise<{ code: number | null; out: Record<string, unknown> }> {
  const { runRaw } = await import('../../lib/exec.ts');
  const nd = dirs.node(`node-${node}`);
  const conflist = JSON.parse(readFileSync(join(nd, 'cni', 'net.d', '10-kovn.conflist'), 'utf8')) as { plugins: Record<string, unknown>[] };
  const netconf = { cniVersion: '1.0.0', name: 'kovn', ...conflist.plugins[0], ...conf };
  const r = await runRaw(join(nd, 'cni', 'bin', 'kovn'), [], { input: JSON.stringify(netconf), env: { CNI_PATH: join(nd, 'cni', 'bin'), CNI_IFNAME: 'eth0', ...env } });
  return { code: r.code, out: (r.stdout.trim() ? JSON.parse(r.stdout) : {}) as Record<string, unknown> };
}

/** The suite owns the box: a fresh one before its tests (with these `kovn up` flags), none after. */
export function useBox(upArgs: string[]): void {
  before(async () => {
    const { kovn } = await import('../box/helpers.ts');
    await kovn(['down']);
    const up = await kovn(['up', ...upArgs]);
    assert.equal(up.code, 0, up.out);
  });
  after(async () => {
    const { kovn } = await import('../box/helpers.ts');
    await kovn(['down']);
  });
}

/**
 * kubectl flags for the break-glass group: the admission policy lets it set k8s.ovn.org/* annotations
 * (tests that write garbage or forged values there on purpose).
 */
export const BREAK_GLASS = ['--as=kovn-test-operator', '--as-group=system:masters', '--as-group=kovn:break-glass'];

interface PodList { items: (PodJson & { spec: { nodeName?: string; hostNetwork?: boolean } })[] }

/**
 * Proves that every named pod has one network and nobody else has it: its logical port's addresses,
 * its k8s.ovn.org/pod-networks annotation, its status.podIPs and its node's allocation for its UID
 * agree; no address is held twice anywhere; and no node holds an allocation for a UID that is not a
 * live pod.
 */
export async function assertNetworksAgree(names: string[]): Promise<void> {
  const all = (await kubectlJson<PodList>(['get', 'pods', '-A'])).items;
  const live = new Set(all.filter((p) => p.status.phase !== 'Succeeded' && p.status.phase !== 'Failed').map((p) => p.metadata.uid));
  const nodes = [...new Set(all.map((p) => p.spec.nodeName).filter((n): n is string => /^node-\d+$/.test(n ?? '')))];
  const allocations = new Map<string, { pod: string; ips: string[] }>();
  for (const n of nodes) for (const [uid, a] of Object.entries(ipamAllocations(Number(n.slice(5))))) allocations.set(uid, a);
  const bare = (a: string): string => a.split('/')[0] ?? '';
  for (const name of names) {
    const pod = all.find((p) => p.metadata.namespace === 'default' && p.metadata.name === name);
    assert.ok(pod, `pod ${name} exists`);
    const net = (JSON.parse(pod.metadata.annotations?.['k8s.ovn.org/pod-networks'] ?? '{}') as { default?: { ip_addresses: string[]; mac_address: string } }).default;
    assert.ok(net, `${name} has its pod-networks annotation`);
    const annotated = net.ip_addresses.map(bare);
    assert.deepEqual((pod.status.podIPs ?? []).map((x) => x.ip), annotated, `${name}: status.podIPs = annotation`);
    const port = await lsp(`default_${name}`);
    assert.ok(port, `${name} has its logical port`);
    // ovn-nbctl's JSON: a set of one is the value itself, a larger one ["set", [...]].
    const addr = JSON.parse(port.addresses) as string | ['set', string[]];
    const [mac, ...portIps] = (typeof addr === 'string' ? addr : addr[1][0] ?? '').split(' ');
    assert.deepEqual([mac, portIps], [net.mac_address, annotated], `${name}: logical port addresses = annotation`);
    const alloc = allocations.get(pod.metadata.uid);
    assert.deepEqual(alloc?.ips.map(bare), annotated, `${name}: its node's allocation for UID ${pod.metadata.uid} = annotation`);
  }
  const held = [...allocations.values()].flatMap((a) => a.ips.map(bare));
  assert.equal(new Set(held).size, held.length, `no address allocated twice: ${held.join(' ')}`);
  const dead = [...allocations.entries()].filter(([uid]) => !live.has(uid)).map(([uid, a]) => `${a.pod} (${uid})`);
  assert.deepEqual(dead, [], 'no allocation for a UID that is not a live pod');
}

/** Whether `kovn status --json` says the component runs healthy. */
export async function healthy(name: string): Promise<boolean> {
  const { componentStatus } = await import('../box/helpers.ts');
  return (await componentStatus(name))?.healthy === true;
}

/** SIGKILLs a supervised daemon and waits until its supervisor has it back, healthy, under a new pid. */
export async function killAndWaitBack(name: string): Promise<void> {
  const { runningPid } = await import('../../deploy/local/proc.ts');
  const pid = runningPid(name);
  assert.ok(pid, `${name} runs`);
  process.kill(pid, 'SIGKILL');
  await until(`${name} restarted by its supervisor`, () => Promise.resolve(((p) => p !== undefined && p !== pid)(runningPid(name))), 30_000);
  await until(`${name} healthy again`, () => healthy(name), 60_000);
}

/** `kovn stop NAME`: the component stays down until bringBack. */
export async function holdDown(name: string): Promise<void> {
  const { kovn } = await import('../box/helpers.ts');
  const r = await kovn(['stop', name]);
  assert.equal(r.code, 0, r.out);
}

/** `kovn start NAME`, then healthy. */
export async function bringBack(name: string): Promise<void> {
  const { kovn } = await import('../box/helpers.ts');
  const r = await kovn(['start', name]);
  assert.equal(r.code, 0, r.out);
  await until(`${name} healthy`, () => healthy(name), 60_000);
}
