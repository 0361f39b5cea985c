// Pod networking in a dual-stack cluster: every pod gets one address per family, every annotation and
// row carries both, and both families carry packets across nodes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { kubectl, kubectlJson } from '../../deploy/local/kubectl.ts';
import { NET, nodeNs } from '../../deploy/local/config.ts';
import { outsideExec } from '../../deploy/local/actions/outside.ts';
import { run } from '../../lib/exec.ts';
import { kovn } from '../box/helpers.ts';
import { createPods, curlFromNode, hostWebPod, exec, getPod, httpGet, lsp, nbctl, ping, pingFromNode, until, useBox, waitReady } from './helpers.ts';

describe('pod networking (dual-stack, 2 nodes)', { timeout: 20 * 60_000 }, () => {
  useBox(['--nodes', '2', '--ip-family', 'dual']);

  test('nodes get a subnet per family; switches and router ports carry both', async () => {
    const nodes = await kubectlJson<{ items: { metadata: { name: string; annotations: Record<string, string> } }[] }>(['get', 'nodes']);
    for (const n of nodes.items) {
      const s = (JSON.parse(n.metadata.annotations['k8s.ovn.org/node-subnets'] ?? '{}') as { default: string[] }).default;
      assert.equal(s.length, 2);
      assert.match(s[0] ?? '', /^10\.244\.\d+\.0\/24$/);
      assert.match(s[1] ?? "", /^fd00:10:244:[0-9a-f:]*\/64$/);
      assert.match(await nbctl(['get', 'Logical_Switch', n.metadata.name, 'other_config:ipv6_prefix']), /fd00:10:244:/);
      assert.match(await nbctl(['get', 'Logical_Router_Port', `rtos-${n.metadata.name}`, 'networks']), /10\.244\..*fd00:10:244:/);
    }
  });

  test('pods get an address per family and reach each other across nodes over IPv4 and IPv6', { timeout: 5 * 60_000 }, async () => {
    await createPods([{ name: 'd1', node: 'node-1' }, { name: 'd2', node: 'node-2' }]);
    await waitReady(['d1', 'd2']);
    const [p1, p2] = [await getPod('d1'), await getPod('d2')];
    const ips = (p: typeof p1): string[] => (p.status.podIPs ?? []).map((x) => x.ip);
    assert.equal(ips(p1).length, 2, JSON.stringify(p1.status.podIPs));
    const [v4, v6] = ips(p2);
    assert.match(v4 ?? '', /^10\.244\./);
    assert.match(v6 ?? '', /^fd00:10:244:/);
    const net = (JSON.parse(p1.metadata.annotations?.['k8s.ovn.org/pod-networks'] ?? '{}') as { default: { ip_addresses: string[]; gateway_ips: string[] } }).default;
    assert.deepEqual(net.ip_addresses.map((a) => a.split('/')[0]), ips(p1));
    assert.equal(net.gateway_ips.length, 2);
    const port = await lsp('default_d1');
    for (const a of ips(p1)) assert.ok(port?.addresses.includes(a), port?.addresses);
    assert.equal(await ping('d1', v4 ?? ''), true, 'IPv4 across nodes');
    assert.equal(await ping('d1', v6 ?? ''), true, 'IPv6 across nodes');
    assert.match(await httpGet('d1', v6 ?? ''), /kovn toolbox/, 'TCP over IPv6 across nodes');
    assert.equal(await pingFromNode(1, ips(p1)[1] ?? ''), true, 'node to pod over IPv6 through the management port');
  });

  test('a NetworkPolicy on both families: an IPv6 ipBlock lets IPv6 in and not IPv4; a pod peer has an address set per family; the node still reaches the pod on both', { timeout: 3 * 60_000 }, async () => {
    const d1 = await getPod('d1');
    const [v4, v6] = (d1.status.podIPs ?? []).map((x) => x.ip);
    const policy = (spec: Record<string, unknown>): string => JSON.stringify({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'dual', namespace: 'default' }, spec });
    const get = (ip: string): Promise<string> => httpGet('d2', ip).catch(() => '');
    await kubectl(['apply', '-f', '-'], { input: policy({ podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: 'fd00:10:244::/48' } }] }] }) });
    await until('IPv4 from d2 to d1 denied', async () => !(await get(v4 ?? '')));
    assert.match(await get(v6 ?? ''), /kovn toolbox/, 'IPv6 from d2 allowed by the IPv6 ipBlock');
    assert.equal(await pingFromNode(1, v6 ?? ''), true, 'the node reaches its pod over IPv6 (management port allowed)');
    assert.equal(await pingFromNode(1, v4 ?? ''), true, 'and over IPv4');
    // kovn trace says the same, per family.
    const traced = async (dst: string): Promise<{ verdict: string; decidedBy?: { owner?: { kind: string; name: string } } }> => {
      const r = await kovn(['trace', 'default/d2', dst, '8080/tcp', '--json']);
      assert.equal(r.code, 0, r.out);
      return JSON.parse(r.out) as { verdict: string; decidedBy?: { owner?: { kind: string; name: string } } };
    };
    const t6 = await traced(v6 ?? '');
    assert.deepEqual([t6.verdict, t6.decidedBy?.owner], ['allowed', { kind: 'NetworkPolicy', name: 'default/dual' }]);
    const t4 = await traced(v4 ?? '');
    assert.deepEqual([t4.verdict, t4.decidedBy?.owner], ['denied', { kind: 'Namespace', name: 'default' }]);
    // A pod peer: one address set per family, each holding d2's address of that family.
    await kubectl(['apply', '-f', '-'], { input: policy({ podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] }) });
    await until('IPv4 from d2 allowed again', async () => /kovn toolbox/.test(await get(v4 ?? '')));
    const sets = await nbctl(['--bare', '--columns=name,addresses', 'find', 'Address_Set', 'external_ids:k8s.ovn.org/name="default/dual"']);
    const d2 = (await getPod('d2')).status.podIPs?.map((x) => x.ip) ?? [];
    assert.match(sets, /_v4\n.*10\.244\./);
    assert.match(sets, /_v6\n.*fd00:10:244:/);
    for (const ip of d2) assert.ok(sets.includes(ip), `${ip} in ${sets}`);
    await kubectl(['delete', 'networkpolicy', 'dual']);
    await until('no policy rows left', async () => (await nbctl(['--bare', '--columns=name', 'find', 'Port_Group', 'external_ids:k8s.ovn.org/name="default/dual"'])).trim() === '');
  });

  test('pods reach the external host over IPv4 and IPv6 through their node\'s gateway, seen as the node\'s addresses', { timeout: 3 * 60_000 }, async () => {
    for (const [pod, i] of [['d1', 1], ['d2', 2]] as const) {
      const node = await kubectlJson<{ metadata: { annotations: Record<string, string> } }>(['get', 'node', `node-${i}`]);
      const l3 = (JSON.parse(node.metadata.annotations['k8s.ovn.org/l3-gateway-config'] ?? '{}') as { default: { 'ip-addresses': string[]; 'next-hops': string[] } }).default;
      assert.deepEqual(l3['ip-addresses'], [`${NET.nodeIp(i)}/24`, `${NET.nodeIp6(i)}/64`]);
      assert.deepEqual(l3['next-hops'], [NET.outsideIp, NET.outsideIp6]);
      for (const [host, seen] of [[NET.externalHostIp, NET.nodeIp(i)], [`[${NET.externalHostIp6}]`, NET.nodeIp6(i)]]) {
        const body = await exec(pod, ['timeout', '5', 'wget', '-q', '-O', '-', `http://${host}:${NET.echo.http}/`]);
        assert.deepEqual(body.trim().split('\n'), ['kovn-outside', seen], `${pod} -> ${host}`);
      }
    }
  });
  test('a dual-stack Service gets a ClusterIP per family, one load balancer with both VIPs, and answers on both from the other node, by IP and by name', { timeout: 3 * 60_000 }, async () => {
    await kubectl(['label', 'pod', 'd2', 'app=ds', '--overwrite']);
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify({
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'ds', namespace: 'default' },
      spec: { ipFamilyPolicy: 'RequireDualStack', selector: { app: 'ds' }, ports: [{ port: 80, targetPort: 8080 }] },
    }) });
    const ips = (await kubectlJson<{ spec: { clusterIPs: string[] } }>(['get', 'service', 'ds'])).spec.clusterIPs;
    assert.equal(ips.length, 2, ips.join());
    assert.match(ips[0] ?? '', /^10\.96\./);
    assert.match(ips[1] ?? '', /^fd00:10:96::/);
    const p2 = await getPod('d2');
    const [v4, v6] = (p2.status.podIPs ?? []).map((x) => x.ip);
    await until('both VIPs to d2 in the load balancer', async () => {
      const vips = await nbctl(['--bare', '--columns=vips', 'find', 'Load_Balancer', 'name="Service_default/ds_TCP_cluster"']);
      return vips.includes(`${ips[0]}:80=${v4}:8080`) && vips.includes(`[${ips[1]}]:80=[${v6}]:8080`);
    });
    for (const ip of ips) {
      const host = ip.includes(':') ? `[${ip}]` : ip;
      await until(`d1 reaches ${host}:80`, async () => /kovn toolbox/.test(await exec('d1', ['timeout', '5', 'wget', '-q', '-O', '-', `http://${host}:80/`]).catch(() => '')));
    }
    const answers = await exec('d1', ['sh', '-c', 'nslookup ds.default.svc.cluster.local 2>&1; true']);
    for (const ip of ips) assert.ok(answers.includes(ip), `nslookup has ${ip}: ${answers}`);
  });

  test('a host-network endpoint on both families: its own host reaches it by either ClusterIP (the masquerade addresses fd69::1/2 for IPv6), by its own NodePort and from a socket bound to the node IP', { timeout: 3 * 60_000 }, async () => {
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [hostWebPod('node-1'), {
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'hostweb', namespace: 'default' },
      spec: { type: 'NodePort', ipFamilyPolicy: 'RequireDualStack', selector: { app: 'hostweb' }, ports: [{ port: 80, targetPort: 18080 }] },
    }] }) });
    await waitReady(['hostweb']);
    const svc = await kubectlJson<{ spec: { clusterIPs: string[]; ports: { nodePort: number }[] } }>(['get', 'service', 'hostweb']);
    const url = (ip: string, port = 80): string => `http://${ip.includes(':') ? `[${ip}]` : ip}:${port}/`;
    for (const ip of svc.spec.clusterIPs) {
      await until(`node-1's host reaches itself at ${url(ip)}`, async () => (await curlFromNode(1, url(ip))) === 'hostweb');
      const bound = await run('nsenter', [`--net=/run/netns/${nodeNs(1)}`, '--', 'curl', '-s', '--max-time', '3', '--interface', ip.includes(':') ? NET.nodeIp6(1) : NET.nodeIp(1), url(ip)]).catch(() => '');
      assert.equal(bound.trim(), 'hostweb', `bound to node-1's address, to ${url(ip)}`);
    }
    const np = svc.spec.ports[0]!.nodePort;
    for (const ip of [NET.nodeIp(1), NET.nodeIp6(1)]) {
      await until(`node-1's host reaches its own NodePort ${url(ip, np)}`, async () => (await curlFromNode(1, url(ip, np))) === 'hostweb');
      await until(`the outside reaches ${url(ip, np)}`, async () => (await outsideExec(['curl', '-s', '--max-time', '3', url(ip, np)]).catch(() => '')).trim() === 'hostweb');
    }
    await kubectl(['delete', 'service', 'hostweb']);
    await kubectl(['delete', 'pod', 'hostweb', '--wait=false']);
  });

  test('a dual-stack LoadBalancer: an address per family from kovn\'s pools, the IPv6 one found by NDP from the announcing node alone; when the announcement moves, an unsolicited advertisement moves the outside\'s neighbour entry before any traffic', { timeout: 3 * 60_000 }, async () => {
    type Svc = { metadata: { annotations?: Record<string, string> }; status: { loadBalancer?: { ingress?: { ip: string }[] } } };
    const macOf = async (node: string): Promise<string> => (JSON.parse(await run('ip', ['-n', `kovn-${node}`, '-j', 'link', 'show', 'breth0'])) as { address: string }[])[0]!.address;
    // ETP=Local: the node of the one local endpoint announces, so moving the endpoint moves the announcement.
    await kubectl(['label', 'pod', 'd2', 'lb=on', '--overwrite']);
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify({
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'dslb', namespace: 'default' },
      spec: { type: 'LoadBalancer', ipFamilyPolicy: 'RequireDualStack', externalTrafficPolicy: 'Local', selector: { lb: 'on' }, ports: [{ port: 80, targetPort: 8080 }] },
    }) });
    const announced = (want: string) => until(`dslb has two addresses, announced by ${want}`, async () => {
      const s = await kubectlJson<Svc>(['get', 'service', 'dslb']);
      const ips = (s.status.loadBalancer?.ingress ?? []).map((i) => i.ip);
      return ips.length === 2 && s.metadata.annotations?.['kovn.local/announcing-node'] === want ? ips : undefined;
    });
    const ips = await announced('node-2');
    const v6 = ips.find((ip) => ip.includes(':')) ?? '';
    assert.match(v6, /^fd00:172:29::f[0-9a-f]$/, `from the box's pool ${NET.lbPool6}: ${ips.join()}`);
    for (const ip of ips) {
      const url = `http://${ip.includes(':') ? `[${ip}]` : ip}/`;
      await until(`the outside reaches ${url}`, async () => /kovn toolbox/.test(await outsideExec(['curl', '-s', '--max-time', '3', url]).catch(() => '')));
    }
    assert.match(await outsideExec(['ip', '-6', 'neigh', 'show', v6]), new RegExp(`lladdr ${await macOf('node-2')}`));

    await kubectl(['label', 'pod', 'd1', 'lb=on', '--overwrite']);
    await kubectl(['label', 'pod', 'd2', 'lb-']);
    await announced('node-1');
    // No traffic in between: only node-1's advertisement can have changed the entry (node-2 now drops solicitations).
    const mac1 = await macOf('node-1');
    await until(`the outside's entry for ${v6} moves to node-1's MAC`, async () => (await outsideExec(['ip', '-6', 'neigh', 'show', v6])).includes(`lladdr ${mac1}`), 15_000);
    await until(`the outside reaches [${v6}] at node-1`, async () => /kovn toolbox/.test(await outsideExec(['curl', '-s', '--max-time', '3', `http://[${v6}]/`]).catch(() => '')));
  });
});
