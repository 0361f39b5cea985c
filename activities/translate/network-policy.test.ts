// NetworkPolicy to OVN rows, by tables: the policy's port group and one ACL per rule (peers through
// address sets and positive prefixes, numeric, ranged and named ports), egress after load balancing,
// the namespace's default-deny groups, and the groups a new pod's port joins.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1NetworkPolicy } from '@kubernetes/client-node';
import { denyPortGroup, hashedName, namespaceDenyRows, namespaceLogging, networkPolicyRows, podPortGroups, policyPortGroup } from './network-policy.ts';
import type { PolicyPod } from './network-policy.ts';

const pod = (namespace: string, name: string, labels: Record<string, string>, ips: string[], ports: PolicyPod['containerPorts'] = []): PolicyPod =>
  ({ namespace, name, labels, containerPorts: ports, lsp: { uuid: `uuid-${name}`, ips } });
const PODS: PolicyPod[] = [
  pod('a', 'web1', { app: 'web' }, ['10.244.1.5'], [{ name: 'http', port: 8080, protocol: 'TCP' }]),
  pod('a', 'web2', { app: 'web' }, ['10.244.2.5'], [{ name: 'http', port: 9090, protocol: 'TCP' }]),
  pod('a', 'cli', { app: 'cli' }, ['10.244.1.6']),
  pod('b', 'db', { app: 'db' }, ['10.244.2.7'], [{ name: 'pg', port: 5432, protocol: 'TCP' }]),
];
const NSS = [{ name: 'a', labels: { team: 'x' } }, { name: 'b', labels: { team: 'y' } }];
const np = (spec: V1NetworkPolicy['spec']): V1NetworkPolicy => ({ metadata: { namespace: 'a', name: 'p' }, spec: { podSelector: { matchLabels: { app: 'web' } }, ...spec } });

const PG = policyPortGroup('a', 'p');
const as = (dir: string, i: number, f: 4 | 6 = 4): string => `${hashedName(`a_p_${dir}_${i}`)}_v${f}`;
const acls = (r: ReturnType<typeof networkPolicyRows>) => r.rows.filter((x) => x.table === 'ACL').map((x) => (x.columns as { match: string }).match);

test('names are OVN-Kubernetes\' hashed ids: a letter, then digits', () => {
  assert.match(PG, /^a\d+$/);
  assert.notEqual(PG, policyPortGroup('a', 'q'));
  assert.equal(denyPortGroup('a', 'Ingress'), hashedName('a_ingressDefaultDeny'));
});

test('rules to ACL matches', () => {
  const cases: { name: string; spec: V1NetworkPolicy['spec']; want: string[]; problems?: string[] }[] = [
    { name: 'deny all ingress: no allow', spec: { policyTypes: ['Ingress'] }, want: [] },
    { name: 'allow all ingress', spec: { ingress: [{}] }, want: [`outport == @${PG}`] },
    { name: 'from pods on a port', spec: { ingress: [{ _from: [{ podSelector: { matchLabels: { app: 'cli' } } }], ports: [{ port: 80 }] }] },
      want: [`outport == @${PG} && ip4.src == $${as('Ingress', 0)} && tcp.dst == 80`] },
    { name: 'from watch JSON (`from`, not `_from`)', spec: { ingress: [{ from: [{ podSelector: {} }] } as never] },
      want: [`outport == @${PG} && ip4.src == $${as('Ingress', 0)}`] },
    { name: 'ipBlock with except: positive prefixes only', spec: { ingress: [{ _from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.0.0.0/9'] } }], ports: [{ protocol: 'UDP', port: 53 }] }] },
      want: [`outport == @${PG} && ip4.src == 10.128.0.0/9 && udp.dst == 53`] },
    { name: 'host bits cleared, with a problem', spec: { ingress: [{ _from: [{ ipBlock: { cidr: '172.16.1.1/16' } }] }] },
      want: [`outport == @${PG} && ip4.src == 172.16.0.0/16`], problems: ['CIDRHostBits'] },
    { name: 'endPort range and SCTP', spec: { ingress: [{ ports: [{ port: 8000, endPort: 8010 }, { protocol: 'SCTP', port: 9 }] }] },
      want: [`outport == @${PG} && ((tcp.dst >= 8000 && tcp.dst <= 8010) || sctp.dst == 9)`] },
    { name: 'named port: each selected pod its own number', spec: { ingress: [{ ports: [{ port: 'http' }] }] },
      want: [`outport == @${PG} && ((ip4.dst == 10.244.1.5 && tcp.dst == 8080) || (ip4.dst == 10.244.2.5 && tcp.dst == 9090))`] },
    { name: 'named port no pod declares: no allow, a problem', spec: { ingress: [{ ports: [{ port: 'nope' }] }] }, want: [], problems: ['NamedPortUnresolved'] },
    { name: 'egress to another namespace\'s pods, after load balancing', spec: { policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: { matchLabels: { team: 'y' } } }], ports: [{ port: 5432 }] }] },
      want: [`inport == @${PG} && ip4.dst == $${as('Egress', 0)} && tcp.dst == 5432`] },
    { name: 'egress named port on the peers; ipBlocks do not apply to it', spec: { policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: {} }, { ipBlock: { cidr: '192.0.2.0/24' } }], ports: [{ port: 'pg' }, { port: 443 }] }] },
      want: [`inport == @${PG} && (((ip4.dst == $${as('Egress', 0)} || ip4.dst == 192.0.2.0/24) && tcp.dst == 443) || (ip4.dst == 10.244.2.7 && tcp.dst == 5432))`] },
    { name: 'an except covering the block: nothing allowed', spec: { ingress: [{ _from: [{ ipBlock: { cidr: '10.0.0.0/24', except: ['10.0.0.0/16'] } }] }] }, want: [] },
  ];
  for (const c of cases) {
    const r = networkPolicyRows(np(c.spec), PODS, NSS, [4]);
    assert.deepEqual(acls(r), c.want, c.name);
    assert.deepEqual(r.problems.map((p) => p.reason), c.problems ?? [], c.name);
  }
});

test('rows: the port group holds the selected pods, address sets the peers per family, egress ACLs apply after load balancing', () => {
  const r = networkPolicyRows(np({ policyTypes: ['Ingress', 'Egress'], ingress: [{ _from: [{ namespaceSelector: {}, podSelector: { matchLabels: { app: 'db' } } }] }], egress: [{}] }),
    [...PODS, pod('b', 'db6', { app: 'db' }, ['10.244.2.8', 'fd00::8'])], NSS, [4, 6]);
  const pg = r.rows.find((x) => x.table === 'Port_Group');
  assert.deepEqual((pg?.columns as { ports: string[] }).ports, ['uuid-web1', 'uuid-web2']);
  const sets = r.rows.filter((x) => x.table === 'Address_Set').map((x) => [x.name, (x.columns as { addresses: string[] }).addresses]);
  assert.deepEqual(sets, [[as('Ingress', 0, 4), ['10.244.2.7', '10.244.2.8']], [as('Ingress', 0, 6), ['fd00::8']]]);
  const acl = r.rows.filter((x) => x.table === 'ACL').map((x) => x.columns as { direction: string; options: Record<string, string>; priority: number; action: string });
  assert.deepEqual(acl.map((a) => [a.direction, a.options['apply-after-lb'], a.priority, a.action]), [['to-lport', undefined, 1001, 'allow-related'], ['from-lport', 'true', 1001, 'allow-related']]);
  assert.ok(r.rows.every((x) => (x.columns as { external_ids: Record<string, string> }).external_ids['k8s.ovn.org/name'] === 'a/p'));
});

test('default deny per namespace and direction: drop, ARP/ND and hairpin allowed; the groups a new pod joins', () => {
  const ingressOnly = np({});
  const egressToo: V1NetworkPolicy = { metadata: { namespace: 'a', name: 'e' }, spec: { podSelector: { matchLabels: { app: 'cli' } }, policyTypes: ['Egress'] } };
  const rows = namespaceDenyRows('a', [ingressOnly, egressToo], PODS, [4, 6]);
  const ig = denyPortGroup('a', 'Ingress');
  const eg = denyPortGroup('a', 'Egress');
  assert.deepEqual(rows.filter((x) => x.table === 'Port_Group').map((x) => [x.name, (x.columns as { ports: string[] }).ports]), [[ig, ['uuid-web1', 'uuid-web2']], [eg, ['uuid-cli']]]);
  assert.deepEqual(rows.filter((x) => x.table === 'ACL').map((x) => { const c = x.columns as { priority: number; match: string; action: string }; return [c.priority, c.action, c.match]; }), [
    [1000, 'drop', `outport == @${ig}`],
    [1001, 'allow-related', `outport == @${ig} && (arp || nd)`],
    [1001, 'allow-related', `outport == @${ig} && (ip4.src == 169.254.169.5 || ip6.src == fd69::5)`],
    [1000, 'drop', `inport == @${eg}`],
    [1001, 'allow-related', `inport == @${eg} && (arp || nd)`],
  ]);
  assert.deepEqual(namespaceDenyRows('b', [ingressOnly], PODS, [4]), []);
  // A pod joins the deny only once its policy's own group holds it.
  const held = namespaceDenyRows('a', [ingressOnly], PODS, [4], undefined, (_p, port) => port === 'uuid-web1');
  assert.deepEqual((held[0]?.columns as { ports: string[] }).ports, ['uuid-web1']);
  // One already denied stays while the policy that now selects it catches up (never open meanwhile).
  const kept = namespaceDenyRows('a', [ingressOnly], PODS, [4], undefined, () => false, (dir, port) => dir === 'Ingress' && port === 'uuid-web2');
  assert.deepEqual((kept[0]?.columns as { ports: string[] }).ports, ['uuid-web2']);
  assert.deepEqual(podPortGroups({ namespace: 'a', labels: { app: 'web' } }, [ingressOnly, egressToo]), [policyPortGroup('a', 'p'), ig]);
  assert.deepEqual(podPortGroups({ namespace: 'a', labels: { app: 'cli' } }, [ingressOnly, egressToo]), [policyPortGroup('a', 'e'), eg]);
  assert.deepEqual(podPortGroups({ namespace: 'b', labels: { app: 'web' } }, [ingressOnly]), []);
});

test('ACL logging: a namespace\'s annotation logs its policies\' allows and its deny, through the meter; a malformed one logs nothing and says why', () => {
  const logging = namespaceLogging({ 'k8s.ovn.org/acl-logging': '{"deny": "alert", "allow": "notice"}' }).logging;
  assert.deepEqual(logging, { deny: 'alert', allow: 'notice' });
  const cols = (rows: { table: string; columns: unknown }[]) => rows.filter((x) => x.table === 'ACL').map((x) => {
    const c = x.columns as { action: string; log: boolean; severity?: string; meter?: string };
    return [c.action, c.log, c.severity, c.meter];
  });
  assert.deepEqual(cols(networkPolicyRows(np({ ingress: [{}] }), PODS, [{ name: 'a', labels: {}, ...(logging ? { logging } : {}) }], [4]).rows), [['allow-related', true, 'notice', 'acl-logging']]);
  assert.deepEqual(cols(networkPolicyRows(np({ ingress: [{}] }), PODS, NSS, [4]).rows), [['allow-related', false, undefined, undefined]]);
  assert.deepEqual(cols(namespaceDenyRows('a', [np({})], PODS, [4], logging)), [['drop', true, 'alert', 'acl-logging'], ['allow-related', false, undefined, undefined], ['allow-related', false, undefined, undefined]]);
  for (const bad of ['{"deny": "loud"}', 'not json']) {
    const r = namespaceLogging({ 'k8s.ovn.org/acl-logging': bad });
    assert.equal(r.logging, undefined);
    assert.equal(r.problem?.reason, 'InvalidACLLogging', bad);
  }
  assert.deepEqual(namespaceLogging({}), {});
});
