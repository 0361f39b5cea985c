// NetworkPolicy on the cluster in a box (IPv4, 2 nodes), probed with real connections: 3 namespaces x
// 3 pods, every pair, TCP (httpd on 80 and 81, ports named serve-80 / serve-81) and UDP (a DNS server on
// 53), against the expected matrix for each case; a pod created into a default-deny namespace never
// gets a packet out; bad input is an Event; an edit changes only what differs; a restart writes
// nothing; a deletion leaves no row.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { join } from 'node:path';
import { dirs, files } from '../../deploy/local/config.ts';
import { logFile } from '../../deploy/local/proc.ts';
import { kubectl, kubectlJson } from '../../deploy/local/kubectl.ts';
import { run } from '../../lib/exec.ts';
import { kovn } from '../box/helpers.ts';
import { events, hostWebPod, killAndWaitBack, nbctl, until, useBox } from '../pods/helpers.ts';

const NSS = ['x', 'y', 'z'] as const;
const PODS = ['a', 'b', 'c'] as const;
type Ns = (typeof NSS)[number];
type PodId = `${Ns}/${(typeof PODS)[number]}`;
const ALL: PodId[] = NSS.flatMap((ns) => PODS.map((p): PodId => `${ns}/${p}`));
const nsOf = (p: PodId): Ns => p.split('/')[0] as Ns;
const podOf = (p: PodId): string => p.split('/')[1] ?? '';

const apply = (...items: unknown[]): Promise<string> => kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }) });

/** Each pod: httpd on 80 and 81 saying its name, and CoreDNS answering any A query on UDP 53. */
const probePod = (ns: Ns, name: string, node: string): unknown => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, labels: { pod: name } },
  spec: {
    nodeSelector: { 'kubernetes.io/hostname': node }, terminationGracePeriodSeconds: 0,
    containers: [{
      name: 'web', image: 'kovn.local/toolbox:1', imagePullPolicy: 'IfNotPresent',
      command: ['sh', '-c', `mkdir -p /w && echo ${ns}/${name} > /w/index.html && httpd -p 81 -h /w && exec httpd -f -p 80 -h /w`],
      ports: [{ name: 'serve-80', containerPort: 80 }, { name: 'serve-81', containerPort: 81 }],
      readinessProbe: { tcpSocket: { port: 80 }, periodSeconds: 2, failureThreshold: 1 },
    }, {
      name: 'dns', image: 'kovn.local/coredns:1.15.0', imagePullPolicy: 'Never', args: ['-conf', '/etc/probe/Corefile'],
      ports: [{ name: 'dns', containerPort: 53, protocol: 'UDP' }],
      volumeMounts: [{ name: 'conf', mountPath: '/etc/probe' }],
    }],
    volumes: [{ name: 'conf', configMap: { name: 'probe-dns' } }],
  },
});
const dnsConfig = (ns: string): unknown => ({
  apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'probe-dns', namespace: ns },
  data: { Corefile: '.:53 {\n    template IN A {\n        answer "{{ .Name }} 0 IN A 192.0.2.53"\n    }\n}\n' },
});

const policy = (ns: string, name: string, spec: Record<string, unknown>): unknown => ({
  apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace: ns }, spec,
});

let ips: Record<PodId, string>;
/** Each probe pod's network namespace, to probe from with the host's busybox (no exec through the API). */
let netns: Record<PodId, string>;

async function netnsOf(id: PodId, node: string): Promise<string> {
  const { bin } = await import('../../deploy/local/tools.ts');
  const sock = `unix://${join(dirs.node(node), 'containerd.sock')}`;
  const sandbox = (await run(bin('crictl'), ['-r', sock, 'pods', '--namespace', `^${nsOf(id)}$`, '--name', `^${podOf(id)}$`, '--state', 'ready', '-q'])).trim().split('\n')[0] ?? '';
  const path = /"path":\s*"(\/var\/run\/netns\/[^"]+|\/run\/netns\/[^"]+)"/.exec(await run(bin('crictl'), ['-r', sock, 'inspectp', sandbox]))?.[1];
  assert.ok(path, `netns of ${id}`);
  return path;
}

type Probe = 'tcp/80' | 'tcp/81' | 'udp/53';
const BB = '/bin/busybox';

/** One source's probes of every target, in parallel from its network namespace: the pods it reached. */
async function reachedFrom(src: PodId, probe: Probe, targets: readonly PodId[]): Promise<Set<PodId>> {
  const one = (t: PodId): string => probe === 'udp/53'
    ? `(${BB} timeout 2 ${BB} nslookup -type=a probe.test ${ips[t]} 2>/dev/null | ${BB} grep -q 192.0.2.53 && echo ${t}) &`
    : `(${BB} timeout 2 ${BB} wget -q -O - http://${ips[t]}:${probe.slice(4)}/ 2>/dev/null | ${BB} grep -q ${t} && echo ${t}) &`;
  const out = await run('nsenter', [`--net=${netns[src]}`, BB, 'sh', '-c', `${targets.map(one).join(' ')} wait`]).catch(() => '');
  return new Set(out.split('\n').map((x) => x.trim()).filter(Boolean) as PodId[]);
}

/** Every pair as `src -> dst` for those that connect. */
async function matrix(probe: Probe): Promise<Set<string>> {
  const rows = await Promise.all(ALL.map(async (src) => [...(await reachedFrom(src, probe, ALL))].map((dst) => `${src} -> ${dst}`)));
  return new Set(rows.flat());
}

/** A pod reaching its own address never leaves its network namespace: no policy stands between them. */
const expected = (allowed: (src: PodId, dst: PodId) => boolean): Set<string> =>
  new Set(ALL.flatMap((s) => ALL.filter((d) => s === d || allowed(s, d)).map((d) => `${s} -> ${d}`)));

const diff = (have: Set<string>, want: Set<string>): string =>
  [...[...want].filter((x) => !have.has(x)).map((x) => `blocked ${x}`), ...[...have].filter((x) => !want.has(x)).map((x) => `leaked ${x}`)].join('; ');

/**
 * Waits until the matrix is the expected one (a policy takes a moment to reach every chassis), and
 * fails with the pairs that differ. A pair allowed is a connection made; a pair denied never connects.
 */
async function expectMatrix(probe: Probe, allowed: (src: PodId, dst: PodId) => boolean, timeoutMs = 30_000): Promise<void> {
  const want = expected(allowed);
  let last = '';
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const have = await matrix(probe);
    last = diff(have, want);
    if (!last) return;
  }
  assert.fail(`${probe}: ${last}`);
}

/** kovn's rows of an owner type and name in NB: `table name` lines. */
async function ownedRows(type: string, name: string): Promise<string[]> {
  const out = await Promise.all(['Port_Group', 'ACL', 'Address_Set'].map(async (t) =>
    (await nbctl(['--bare', '--columns=_uuid', 'find', t, `external_ids:k8s.ovn.org/owner-type=${type}`, `external_ids:k8s.ovn.org/name="${name}"`]))
      .split('\n').filter(Boolean).map((u) => `${t} ${u}`)));
  return out.flat();
}

const deletePolicies = async (): Promise<void> => {
  for (const ns of NSS) await kubectl(['-n', ns, 'delete', 'networkpolicy', '--all', '--wait=true']);
};

describe('NetworkPolicy (IPv4)', { timeout: 25 * 60_000 }, () => {
  useBox(['--nodes', '2']);

  test('no policy: every pod reaches every pod on TCP and UDP', { timeout: 5 * 60_000 }, async () => {
    await apply(...NSS.flatMap((ns) => [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { ns } } }, dnsConfig(ns)]),
      ...ALL.map((id, i) => probePod(nsOf(id), podOf(id), i % 2 ? 'node-2' : 'node-1')));
    await kubectl(['wait', '--for=condition=Ready', 'pod', '--all', '-A', '--timeout=180s']);
    const pods = await Promise.all(ALL.map(async (id) => [id, (await kubectlJson<{ status: { podIP: string } }>(['-n', nsOf(id), 'get', 'pod', podOf(id)])).status.podIP] as const));
    ips = Object.fromEntries(pods) as Record<PodId, string>;
    netns = Object.fromEntries(await Promise.all(ALL.map(async (id, i) => [id, await netnsOf(id, i % 2 ? 'node-2' : 'node-1')] as const))) as Record<PodId, string>;
    await expectMatrix('tcp/80', () => true, 60_000);
    await expectMatrix('udp/53', () => true, 60_000);
  });

  test('deny all ingress in x: nothing reaches x, x reaches everyone; OVN-Kubernetes\' rows', async () => {
    await apply(policy('x', 'deny-in', { podSelector: {}, policyTypes: ['Ingress'] }));
    await expectMatrix('tcp/80', (_s, d) => nsOf(d) !== 'x');
    await expectMatrix('udp/53', (_s, d) => nsOf(d) !== 'x');
    // A port group for the policy, and x's default-deny group holding its three pods with drop and ARP/ND allowed.
    const deny = (await nbctl(['--bare', '--columns=ports', 'find', 'Port_Group', 'external_ids:name=x_ingressDefaultDeny'])).trim().split(/\s+/);
    assert.equal(deny.length, 3, `three pods in x's default-deny group: ${deny.join(' ')}`);
    const acls = await nbctl(['--bare', '--columns=priority,action,match', 'find', 'ACL', 'external_ids:k8s.ovn.org/name=x']);
    assert.match(acls, /1000\ndrop\noutport == @a\d+\n/);
    assert.match(acls, /1001\nallow-related\noutport == @a\d+ && \(arp \|\| nd\)/);
    assert.equal((await ownedRows('NetworkPolicy', 'x/deny-in')).filter((r) => r.startsWith('Port_Group')).length, 1);
    // kubelet's probes come from the node, through its management port: x's pods stay Ready.
    await new Promise((r) => setTimeout(r, 5_000));
    const ready = await kubectlJson<{ items: { status: { conditions?: { type: string; status: string }[] } }[] }>(['-n', 'x', 'get', 'pods']);
    assert.ok(ready.items.every((p) => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')), 'x\'s pods stay Ready under deny-all');
  });

  test('allow from a namespace, from pods, from both: the union of the policies', async () => {
    await apply(policy('x', 'from-y', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] }),
      policy('x', 'from-b', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }] }),
      policy('x', 'from-z-c', { podSelector: { matchLabels: { pod: 'c' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'z' } }, podSelector: { matchLabels: { pod: 'c' } } }] }] }));
    await expectMatrix('tcp/80', (s, d) => nsOf(d) !== 'x'
      || (d === 'x/a' && nsOf(s) === 'y') || (d === 'x/b' && s === 'x/b') || (d === 'x/c' && s === 'z/c'));
  });

  test('pods and namespaces relabelled: the policies follow', async () => {
    await kubectl(['-n', 'z', 'label', 'pod', 'a', 'pod=c', '--overwrite']); // z/a now matches from-z-c's peer
    await kubectl(['label', 'namespace', 'y', 'ns=q', '--overwrite']); // y no longer matches from-y's namespaceSelector
    await expectMatrix('tcp/80', (s, d) => nsOf(d) !== 'x' || (d === 'x/b' && s === 'x/b') || (d === 'x/c' && (s === 'z/c' || s === 'z/a')));
    await kubectl(['-n', 'z', 'label', 'pod', 'a', 'pod=a', '--overwrite']);
    await kubectl(['label', 'namespace', 'y', 'ns=y', '--overwrite']);
    await expectMatrix('tcp/80', (s, d) => nsOf(d) !== 'x'
      || (d === 'x/a' && nsOf(s) === 'y') || (d === 'x/b' && s === 'x/b') || (d === 'x/c' && s === 'z/c'));
  });

  test('a policy edit changes only the rows that differ', async () => {
    await apply(policy('x', 'from-y', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }] }] }));
    await expectMatrix('tcp/80', (s, d) => nsOf(d) !== 'x'
      || (d === 'x/a' && nsOf(s) === 'z') || (d === 'x/b' && s === 'x/b') || (d === 'x/c' && s === 'z/c'));
    // The edit's run rewrote the peers' address set in place: no port group or ACL was deleted and made anew.
    const h = await kovn(['history', 'networkpolicy', 'x/from-y', '--json']);
    assert.equal(h.code, 0, h.out);
    const runs = JSON.parse(h.out) as { changes: { table: string; op: string }[] }[];
    const ops = (runs.filter((r) => r.changes.length > 0).at(-1)?.changes ?? []).map((c) => `${c.op} ${c.table}`);
    assert.deepEqual(ops, ['update Address_Set'], `the edit's changes: ${ops.join(', ')}`);
  });

  test('ipBlock with except, as positive prefixes', async () => {
    await deletePolicies();
    const except = ips['y/a'];
    await apply(policy('x', 'deny-in', { podSelector: {}, policyTypes: ['Ingress'] }),
      policy('x', 'cidr', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.244.0.0/16', except: [`${except}/32`] } }] }] }));
    await expectMatrix('tcp/80', (s, d) => nsOf(d) !== 'x' || s !== 'y/a');
    const acl = await nbctl(['--bare', '--columns=match', 'find', 'ACL', 'external_ids:k8s.ovn.org/name="x/cidr"']);
    assert.doesNotMatch(acl, /!=/);
  });

  test('ports, endPort and named ports: TCP 81 apart from 80, UDP apart from TCP', async () => {
    await deletePolicies();
    await apply(policy('x', 'only-81', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ ports: [{ port: 81 }] }] }),
      policy('x', 'range', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ ports: [{ port: 79, endPort: 80 }] }] }),
      policy('x', 'named', { podSelector: { matchLabels: { pod: 'c' } }, ingress: [{ ports: [{ port: 'serve-81' }, { port: 'dns', protocol: 'UDP' }] }] }));
    await expectMatrix('tcp/80', (_s, d) => d !== 'x/a' && d !== 'x/c');
    await expectMatrix('tcp/81', (_s, d) => d !== 'x/b');
    await expectMatrix('udp/53', (_s, d) => d !== 'x/a' && d !== 'x/b');
    // SCTP cannot carry traffic on these kernels: programmed, and checked in NB.
    await apply(policy('x', 'sctp', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ ports: [{ protocol: 'SCTP', port: 9, endPort: 10 }] }] }));
    await until('the SCTP rule in NB', async () => /\(sctp\.dst >= 9 && sctp\.dst <= 10\)/.test(await nbctl(['--bare', '--columns=match', 'find', 'ACL', 'external_ids:k8s.ovn.org/name="x/sctp"'])));
  });

  test('egress: deny all from x, then to a Service\'s backends and to the outside host', async () => {
    await deletePolicies();
    await apply(policy('x', 'deny-out', { podSelector: {}, policyTypes: ['Egress'] }));
    await expectMatrix('tcp/80', (s) => nsOf(s) !== 'x');
    // y/a behind a Service; x may reach y/a (by the Service too: egress is judged after load balancing) and the outside host.
    await apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'ya', namespace: 'y' }, spec: { selector: { pod: 'a' }, ports: [{ port: 8080, targetPort: 80 }] } },
      policy('x', 'to-ya', { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'a' } } }] },
        { to: [{ ipBlock: { cidr: '203.0.113.10/32' } }], ports: [{ port: 80 }] }] }));
    await expectMatrix('tcp/80', (s, d) => nsOf(s) !== 'x' || d === 'y/a');
    const vip = (await kubectlJson<{ spec: { clusterIP: string } }>(['-n', 'y', 'get', 'service', 'ya'])).spec.clusterIP;
    const get = (url: string) => kubectl(['-n', 'x', 'exec', 'b', '-c', 'web', '--', 'sh', '-c', `timeout 3 wget -q -O - ${url} || true`]).then((s) => s.trim());
    await until('x/b reaches y/a through its Service', async () => (await get(`http://${vip}:8080/`)) === 'y/a');
    await until('x/b reaches the outside host', async () => (await get('http://203.0.113.10/')).length > 0);
  });

  test('a pod created into a default-deny namespace never gets a packet out, from its first one', { timeout: 3 * 60_000 }, async () => {
    await apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'w' } }, policy('w', 'deny-all', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }));
    await until('w\'s default-deny groups exist', async () => (await nbctl(['--bare', '--columns=name', 'find', 'Port_Group', 'external_ids:k8s.ovn.org/name=w'])).split('\n').filter(Boolean).length === 2);
    const target = ips['y/b'];
    // Probes from the instant the container starts, each with a short timeout: none may connect.
    await apply({
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'eager', namespace: 'w' },
      spec: {
        terminationGracePeriodSeconds: 0,
        containers: [{ name: 'c', image: 'kovn.local/toolbox:1', imagePullPolicy: 'IfNotPresent',
          command: ['sh', '-c', `for i in $(seq 10); do wget -q -T 1 -O - http://${target}/ && echo LEAK; ping -c 1 -W 1 ${target} >/dev/null && echo LEAK; done; echo DONE; sleep 3600`] }],
      },
    });
    await until('the eager pod finished probing', async () => (await kubectl(['-n', 'w', 'logs', 'eager']).catch(() => '')).includes('DONE'), 150_000);
    const logs = await kubectl(['-n', 'w', 'logs', 'eager']);
    assert.doesNotMatch(logs, /LEAK/);
  });

  test('bad input is an Event on the policy; the other policies are enforced', async () => {
    await deletePolicies();
    await apply(policy('x', 'hostbits', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ ipBlock: { cidr: `${ips['y/a']}/16` } }] }] }),
      policy('x', 'noport', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ ports: [{ port: 'no-such-port' }] }] }));
    await until('CIDRHostBits Event', async () => (await events('NetworkPolicy', 'hostbits', 'x')).some((e) => e.reason === 'CIDRHostBits' && e.type === 'Warning'));
    await until('NamedPortUnresolved Event', async () => (await events('NetworkPolicy', 'noport', 'x')).some((e) => e.reason === 'NamedPortUnresolved' && /no-such-port/.test(e.message)));
    // hostbits is enforced as the /16 it names (every pod), noport allows nothing.
    await expectMatrix('tcp/80', (_s, d) => d !== 'x/b');
  });

  test('kovn trace names the ACL, its policy and rule, and the run that wrote it, for an allowed and a denied flow; a host-network source too', async () => {
    interface Trace { verdict: string; decidedBy?: { name: string; owner?: { kind: string; name: string }; rule?: string; writtenBy?: { workflowId: string } } }
    const traced = async (...args: string[]): Promise<Trace> => {
      const r = await kovn(['trace', ...args, '--json']);
      assert.equal(r.code, 0, r.out);
      return JSON.parse(r.out) as Trace;
    };
    // x now: hostbits allows every pod into x/a; noport allows nothing into x/b.
    const allowed = await traced('y/a', 'x/a', '80/tcp');
    assert.equal(allowed.verdict, 'allowed');
    assert.deepEqual(allowed.decidedBy?.owner, { kind: 'NetworkPolicy', name: 'x/hostbits' });
    assert.equal(allowed.decidedBy?.rule, 'Ingress rule 1');
    assert.equal(allowed.decidedBy?.writtenBy?.workflowId, 'NetworkPolicy/x/hostbits');
    const denied = await traced('y/a', 'x/b', '80/tcp');
    assert.equal(denied.verdict, 'denied');
    assert.deepEqual(denied.decidedBy?.owner, { kind: 'Namespace', name: 'x' });
    assert.equal(denied.decidedBy?.name, 'NP:x:Ingress:deny');
    assert.equal(denied.decidedBy?.writtenBy?.workflowId, 'Namespace//x');
    assert.equal((await traced('y/a', 'x/b', '53/udp')).verdict, 'denied');
    // From a host-network pod: through its node's management port, which that node's pods always let in.
    await apply(hostWebPod('node-2'));
    await kubectl(['wait', '--for=condition=Ready', 'pod/hostweb', '--timeout=60s']);
    const host = await traced('default/hostweb', 'x/b', '80/tcp');
    assert.equal(host.verdict, 'allowed');
    assert.deepEqual(host.decidedBy?.owner, { kind: 'Node', name: 'node-2' });
    const bad = await kovn(['trace', 'y/a', 'nowhere']);
    assert.equal(bad.code, 1);
    assert.match(bad.out, /destination nowhere: expected NS\/POD, service\/NS\/NAME, node\/NAME or an address/);
  });

  test('ACL logging per namespace, applied live: ovn-controller logs the deny and the allow with the ACL\'s name; a malformed value is an Event', async () => {
    // x now: hostbits allows every pod into x/a; noport allows nothing into x/b.
    await kubectl(['annotate', 'namespace', 'x', '--overwrite', 'k8s.ovn.org/acl-logging={"deny": "alert", "allow": "notice"}']);
    await until('the deny and allow ACLs log', async () => (await nbctl(['--bare', '--columns=severity', 'find', 'ACL', 'log=true', 'meter=acl-logging'])).includes('alert')
      && (await nbctl(['--bare', '--columns=severity', 'find', 'ACL', 'external_ids:k8s.ovn.org/name="x/hostbits"'])).trim() === 'notice');
    const logs = (): string => ['node-1', 'node-2'].map((n) => readFileSync(logFile(`${n}-ovn-controller`), 'utf8')).join('\n');
    await until('ovn-controller logged a drop and an allow', async () => {
      await reachedFrom('y/a', 'tcp/80', ['x/a', 'x/b']);
      const l = logs();
      return /name="NP:x:Ingress:deny", verdict=drop, severity=alert/.test(l) && /name="NP:x:hostbits:Ingress:0", verdict=allow, severity=notice/.test(l);
    });
    await kubectl(['annotate', 'namespace', 'x', '--overwrite', 'k8s.ovn.org/acl-logging={"deny": "loud"}']);
    await until('InvalidACLLogging Event on the namespace', async () => (await events('Namespace', 'x')).some((e) => e.reason === 'InvalidACLLogging' && /deny/.test(e.message)));
    await until('logging off again', async () => (await nbctl(['--bare', '--columns=name', 'find', 'ACL', 'log=true'])).trim() === '');
  });

  test('a controller restart with nothing changed writes nothing to NB', { timeout: 3 * 60_000 }, async () => {
    const dump = async () => (await Promise.all(['Port_Group', 'ACL', 'Address_Set'].map((t) => run('ovsdb-client', ['dump', `unix:${files.nbSock}`, 'OVN_Northbound', t])))).join('\n');
    const before = await dump();
    await killAndWaitBack('kovn-controller');
    await new Promise((r) => setTimeout(r, 10_000)); // its first sync runs once the stores have listed
    assert.equal(await dump(), before);
  });

  test('policies deleted: every pair connects again and no policy row is left', async () => {
    await deletePolicies();
    await kubectl(['delete', 'namespace', 'w', '--wait=true']);
    await until('no NetworkPolicy or Namespace rows left', async () => {
      const left = (await Promise.all(['Port_Group', 'ACL', 'Address_Set'].map((t) => nbctl(['--bare', '--columns=name', 'find', t, 'external_ids:k8s.ovn.org/owner-type=NetworkPolicy']))))
        .join('') + (await nbctl(['--bare', '--columns=name', 'find', 'Port_Group', 'external_ids:k8s.ovn.org/owner-type=Namespace']));
      return left.trim() === '';
    });
    await expectMatrix('tcp/80', () => true);
  });
});
