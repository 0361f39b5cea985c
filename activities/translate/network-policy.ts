/**
 * Pure translation of NetworkPolicy to OVN rows, in OVN-Kubernetes' layout: a port group per policy
 * holding the ports of the pods it selects, with one allow-related ACL per rule (priority 1001); an
 * address set per rule and family for its pod and namespace peers; a default-deny port group per
 * namespace and direction (drop at 1000, ARP/ND allowed) holding every pod an isolating policy selects.
 * Allows outrank the deny, so a connection allowed by any policy lives through the others' creation.
 * Egress ACLs apply after load balancing (they see a Service's backend). Better than OVN-Kubernetes:
 * `except` becomes positive prefixes (no `!=`), CIDRs are normalised (host bits cleared, with an
 * Event), and a named port is resolved per pod to the numbers its containers declare.
 */
import type { V1LabelSelector, V1Namespace, V1NetworkPolicy, V1NetworkPolicyPeer, V1NetworkPolicyPort, V1Pod } from '@kubernetes/client-node';
import { ACL_LOGGING, AclLogging, readAnnotation } from '../../lib/annotations.ts';
import { formatCidr, normaliseCidr, subtract } from '../../lib/cidr.ts';
import type { Cidr } from '../../lib/cidr.ts';
import { matches } from '../../lib/labels.ts';
import type { AnyDesiredRow } from '../nb.ts';
import { ownedBy } from './ownership.ts';
import type { Owner } from './ownership.ts';
import { HAIRPIN_SNAT_IPS } from './service.ts';

/** A pod as policies see it: labels, declared container ports, and its port in NB (kovn's addresses, never the pod's own say). */
export interface PolicyPod {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  containerPorts: { name: string; port: number; protocol: string }[];
  /** The pod's logical switch port, once written: its uuid and addresses. */
  lsp?: { uuid: string; ips: string[] };
}

export interface PolicyNamespace {
  name: string;
  labels: Record<string, string>;
  /** The namespace's k8s.ovn.org/acl-logging: which verdicts of its policies are logged, at what severity. */
  logging?: AclLogging;
}

/** The meter that rate-limits every ACL log line (OVN-Kubernetes' name), owned by the cluster. */
export const ACL_LOGGING_METER = 'acl-logging';

/** An ACL's logging columns: on at `severity` through the meter, or off. */
const logColumns = (severity: AclLogging['allow']): { log: boolean; severity: AclLogging['allow']; meter: string | undefined } =>
  (severity ? { log: true, severity, meter: ACL_LOGGING_METER } : { log: false, severity: undefined, meter: undefined });

/** A namespace's ACL logging from its annotation; a malformed one is a problem (logging stays off). */
export function namespaceLogging(annotations: Record<string, string> | undefined): { logging?: AclLogging; problem?: PolicyProblem } {
  try {
    const logging = readAnnotation(annotations, ACL_LOGGING, AclLogging);
    return logging ? { logging } : {};
  } catch (err) {
    return { problem: { reason: 'InvalidACLLogging', message: `${err instanceof Error ? err.message : String(err)}; ACL logging stays off` } };
  }
}

/**
 * Pods as policies see them: on the pod network, with the addresses of the port kovn wrote for this
 * incarnation (a pod without one yet is selected, and its addresses come with its port).
 */
export function policyPods(pods: readonly V1Pod[], ports: ReadonlyMap<string, { uuid: string; uid?: string; ips: string[] }>): PolicyPod[] {
  return pods.filter((p) => !p.spec?.hostNetwork).map((p) => {
    const namespace = p.metadata?.namespace ?? '';
    const name = p.metadata?.name ?? '';
    const lsp = ports.get(`${namespace}/${name}`);
    return {
      namespace, name, labels: p.metadata?.labels ?? {},
      containerPorts: (p.spec?.containers ?? []).flatMap((c) => (c.ports ?? []).flatMap((x) => (x.name ? [{ name: x.name, port: x.containerPort, protocol: x.protocol ?? 'TCP' }] : []))),
           ...(lsp && lsp.uid === p.metadata?.uid ? { lsp: { uuid: lsp.uuid, ips: lsp.ips } } : {}),
    };
  });
}

/**
 * An ingress rule's peers. The typed client renames `from` to `_from`; objects from a watch stream are
 * the API's JSON, with `from`.
 */
export const fromPeers = (rule: object): V1NetworkPolicyPeer[] =>
  (rule as { _from?: V1NetworkPolicyPeer[] })._from ?? (rule as { from?: V1NetworkPolicyPeer[] }).from ?? [];

export const policyNamespaces = (nss: readonly V1Namespace[]): PolicyNamespace[] => nss.map((n) => {
  const { logging } = namespaceLogging(n.metadata?.annotations);
  return { name: n.metadata?.name ?? '', labels: n.metadata?.labels ?? {}, ...(logging ? { logging } : {}) };
});

/** Whether a policy's peers look beyond its namespace (its rows then depend on every namespace's pods and labels). */
export const crossNamespace = (p: V1NetworkPolicy): boolean =>
  [...(p.spec?.ingress ?? []).flatMap(fromPeers), ...(p.spec?.egress ?? []).flatMap((r) => r.to ?? [])].some((x) => x.namespaceSelector !== undefined)
  || (p.spec?.egress ?? []).some((r) => !r.to?.length && (r.ports ?? []).some((x) => typeof x.port === 'string'));

/** What a translation could not use as written: an Event on the object. */
export interface PolicyProblem { reason: string; message: string }

export type Direction = 'Ingress' | 'Egress';

export const ALLOW_PRIORITY = 1001;
export const DENY_PRIORITY = 1000;

/** OVN-Kubernetes' hashed names: `a` and the decimal FNV-1a 64 of the id (valid in `@pg`, `$as`). */
export function hashedName(id: string): string {
  let h = 0xcbf29ce484222325n;
  for (const b of new TextEncoder().encode(id)) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return `a${h.toString()}`;
}

export const policyPortGroup = (namespace: string, name: string): string => hashedName(`${namespace}_${name}`);
export const denyPortGroup = (namespace: string, dir: Direction): string => hashedName(`${namespace}_${dir === 'Ingress' ? 'ingress' : 'egress'}DefaultDeny`);
const addressSet = (namespace: string, name: string, dir: Direction, rule: number, family: 4 | 6): string =>
  `${hashedName(`${namespace}_${name}_${dir}_${rule}`)}_v${family}`;

/** ACL names show in ovn-controller's log lines; OVN keeps 63 characters. */
const aclName = (s: string): string => s.slice(0, 63);

/** The directions a policy isolates its pods in: policyTypes, or Ingress plus Egress when it has egress rules. */
export function policyTypes(p: V1NetworkPolicy): Direction[] {
  const t = p.spec?.policyTypes;
  if (t?.length) return (['Ingress', 'Egress'] as const).filter((d) => t.includes(d));
  return p.spec?.egress?.length ? ['Ingress', 'Egress'] : ['Ingress'];
}

/** The pods of its namespace a policy selects. */
export const selectedPods = (p: V1NetworkPolicy, pods: readonly PolicyPod[]): PolicyPod[] =>
  pods.filter((x) => x.namespace === p.metadata?.namespace && matches(p.spec?.podSelector ?? {}, x.labels));

/** The pods a peer's selectors pick: its podSelector in its namespaceSelector's namespaces (the policy's own without one). */
function peerPods(peer: V1NetworkPolicyPeer, policyNs: string, pods: readonly PolicyPod[], namespaces: readonly PolicyNamespace[]): PolicyPod[] {
  const nsSel: V1LabelSelector | undefined = peer.namespaceSelector;
  const inNs = nsSel
    ? new Set(namespaces.filter((n) => matches(nsSel, n.labels)).map((n) => n.name))
    : new Set([policyNs]);
  return pods.filter((x) => inNs.has(x.namespace) && matches(peer.podSelector ?? {}, x.labels));
}

const fam = (ip: string): 4 | 6 => (ip.includes(':') ? 6 : 4);
const ipField = (f: 4 | 6, end: 'src' | 'dst'): string => `ip${f}.${end}`;
const proto = (p: V1NetworkPolicyPort): string => (p.protocol ?? 'TCP').toLowerCase();
const set = (xs: readonly string[]): string => (xs.length === 1 ? xs[0] ?? '' : `{${xs.join(', ')}}`);
const or = (xs: readonly string[]): string => (xs.length <= 1 ? xs[0] ?? '' : `(${xs.join(' || ')})`);

/** A numeric (or absent) port as a match: `tcp`, `tcp.dst == 80`, `tcp.dst >= 80 && tcp.dst <= 90`. */
function numericPort(p: V1NetworkPolicyPort): string {
  const pr = proto(p);
  if (p.port === undefined) return pr;
  if (p.endPort !== undefined && p.endPort > Number(p.port)) return `(${pr}.dst >= ${p.port} && ${pr}.dst <= ${p.endPort})`;
  return `${pr}.dst == ${p.port}`;
}

/**
 * A named port resolved on `pods` (the selected pods for ingress, the peers for egress): per number the
 * pods that declare it under that name and protocol, as `(ip4.dst == {...} && tcp.dst == N)`.
 */
function namedPort(p: V1NetworkPolicyPort, pods: readonly PolicyPod[]): string[] {
  const pr = proto(p);
  const byNumber = new Map<number, string[]>();
  for (const pod of pods) {
    const c = pod.containerPorts.find((x) => x.name === p.port && x.protocol.toLowerCase() === pr);
    if (c && pod.lsp) byNumber.set(c.port, [...(byNumber.get(c.port) ?? []), ...pod.lsp.ips]);
  }
  return [...byNumber].sort(([a], [b]) => a - b).flatMap(([n, ips]) => ([4, 6] as const).flatMap((f) => {
    const of = ips.filter((ip) => fam(ip) === f).sort();
    return of.length ? [`(${ipField(f, 'dst')} == ${set(of)} && ${pr}.dst == ${n})`] : [];
  }));
}

export interface PolicyRows {
  rows: AnyDesiredRow[];
  problems: PolicyProblem[];
}

/**
 * A NetworkPolicy's rows: its port group (the selected pods' ports), one ACL per rule that can match
 * anything, and the rules' address sets. `families` are the cluster's IP families.
 */
export function networkPolicyRows(p: V1NetworkPolicy, pods: readonly PolicyPod[], namespaces: readonly PolicyNamespace[], families: readonly (4 | 6)[]): PolicyRows {
  const ns = p.metadata?.namespace ?? '';
  const name = p.metadata?.name ?? '';
  const owner: Owner = { type: 'NetworkPolicy', name: `${ns}/${name}` };
  const pg = policyPortGroup(ns, name);
  const selected = selectedPods(p, pods);
  const logging = namespaces.find((n) => n.name === ns)?.logging;
  const problems: PolicyProblem[] = [];
  const sets: AnyDesiredRow[] = [];
  const acls: AnyDesiredRow[] = [];
  for (const dir of policyTypes(p)) {
    const rules = (dir === 'Ingress' ? p.spec?.ingress : p.spec?.egress) ?? [];
    const end = dir === 'Ingress' ? 'src' : 'dst';
    rules.forEach((rule, i) => {
      const peers = dir === 'Ingress' ? fromPeers(rule) : ((rule as { to?: V1NetworkPolicyPeer[] }).to ?? []);
      const ports = rule.ports ?? [];
      const where = `${dir.toLowerCase()} rule ${i + 1}`;
      // Peers: selector peers through the rule's address sets, ipBlocks as literal prefixes.
      const selectorPeers = peers.filter((x) => x.podSelector || x.namespaceSelector);
      const peerSet = [...new Map(selectorPeers.flatMap((x) => peerPods(x, ns, pods, namespaces)).map((x) => [`${x.namespace}/${x.name}`, x])).values()];
      const terms: string[] = [];
      if (selectorPeers.length) {
        for (const f of families) {
          const asName = addressSet(ns, name, dir, i, f);
          const addresses = [...new Set(peerSet.flatMap((x) => x.lsp?.ips ?? []).filter((ip) => fam(ip) === f))].sort();
          sets.push({ table: 'Address_Set', name: asName, columns: { addresses, external_ids: ownedBy(owner, `as:${asName}`, { direction: dir, 'rule-index': String(i) }) } });
          terms.push(`${ipField(f, end)} == $${asName}`);
        }
      }
      for (const b of peers.flatMap((x) => (x.ipBlock ? [x.ipBlock] : []))) {
        let block: Cidr;
        try {
          const n = normaliseCidr(b.cidr);
          block = n.cidr;
          if (n.hostBits) problems.push({ reason: 'CIDRHostBits', message: `${where}: ipBlock ${b.cidr} has host bits set; enforced as ${formatCidr(block)}` });
        } catch (err) {
          problems.push({ reason: 'InvalidCIDR', message: `${where}: ${err instanceof Error ? err.message : String(err)}; this peer is ignored` });
          continue;
        }
        const holes: Cidr[] = [];
        for (const e of b.except ?? []) {
          try {
            holes.push(normaliseCidr(e).cidr);
          } catch (err) {
            problems.push({ reason: 'InvalidCIDR', message: `${where}: except ${err instanceof Error ? err.message : String(err)}; this peer is ignored` });
            holes.push(block); // an except kovn cannot read: the peer allows nothing rather than too much
          }
        }
        const f = block.family;
        if (!families.includes(f)) continue;
        const prefixes = subtract(block, holes).map(formatCidr);
        if (prefixes.length) terms.push(`${ipField(f, end)} == ${set(prefixes)}`);
      }
      const numeric = ports.filter((x) => typeof x.port !== 'string').map(numericPort);
      const named = ports.filter((x) => typeof x.port === 'string');
      // Ingress names the selected pods' ports; egress the peers' (every pod without peers).
      const namedOn = dir === 'Ingress' ? selected : peers.length ? peerSet : pods;
      const namedTerms = named.flatMap((x) => {
        const t = namedPort(x, namedOn);
        if (!t.length) problems.push({ reason: 'NamedPortUnresolved', message: `${where}: no ${dir === 'Ingress' ? 'selected' : 'peer'} pod declares a ${proto(x).toUpperCase()} container port named "${String(x.port)}"; it allows nothing` });
        return t;
      });
      const peerMatch = peers.length ? (terms.length ? or(terms) : undefined) : '';
      let match: string | undefined;
      if (peerMatch === undefined) match = undefined; // only peers kovn could not use
      else if (dir === 'Ingress') {
        const portMatch = ports.length ? (numeric.length + namedTerms.length ? or([...numeric, ...namedTerms]) : undefined) : '';
        match = portMatch === undefined ? undefined : [`outport == @${pg}`, peerMatch, portMatch].filter(Boolean).join(' && ');
      } else {
        // An egress named port picks its peers' addresses itself: ipBlocks do not apply to it.
        const direct = !ports.length || numeric.length ? [[peerMatch, numeric.length ? or(numeric) : ''].filter(Boolean).join(' && ')] : [];
        const alts = [...direct, ...namedTerms];
        // OVN refuses && and || mixed without parentheses (the named terms come parenthesised).
        const grouped = namedTerms.length ? [...direct.map((a) => (a.includes(' && ') ? `(${a})` : a)), ...namedTerms] : direct;
        match = alts.length ? [`inport == @${pg}`, alts.some((a) => !a) ? '' : or(grouped)].filter(Boolean).join(' && ') : undefined;
      }
      if (match === undefined) return;
      const id = `acl:${ns}/${name}:${dir}:${i}`;
      acls.push({
        table: 'ACL', name: id, parent: { table: 'Port_Group', name: pg, column: 'acls' },
        columns: {
          name: aclName(`NP:${ns}:${name}:${dir}:${i}`), priority: ALLOW_PRIORITY, direction: dir === 'Ingress' ? 'to-lport' : 'from-lport',
          match, action: 'allow-related', ...logColumns(logging?.allow), options: dir === 'Egress' ? { 'apply-after-lb': 'true' } : {},
          external_ids: ownedBy(owner, id, { direction: dir, 'rule-index': String(i) }),
        },
      });
    });
  }
  const portGroup: AnyDesiredRow = {
    table: 'Port_Group', name: pg,
    columns: { ports: selected.flatMap((x) => (x.lsp ? [x.lsp.uuid] : [])).sort(), external_ids: ownedBy(owner, `pg:${pg}`, { name: `${ns}_${name}` }) },
  };
  return { rows: [portGroup, ...sets, ...acls], problems };
}

/**
 * A namespace's default-deny port groups, one per direction some policy of it isolates, holding every
 * pod those policies select (once `held`: the policy's own group has it, or `denied` already): drop at 1000, ARP/ND allowed,
 * and (ingress) a pod's own Service hairpin.
 */
export function namespaceDenyRows(namespace: string, policies: readonly V1NetworkPolicy[], pods: readonly PolicyPod[], families: readonly (4 | 6)[], logging?: AclLogging,
  held: (policy: V1NetworkPolicy, port: string) => boolean = () => true, denied: (dir: Direction, port: string) => boolean = () => false): AnyDesiredRow[] {
  const owner: Owner = { type: 'Namespace', name: namespace };
  const mine = policies.filter((p) => p.metadata?.namespace === namespace && !p.metadata.deletionTimestamp);
  return (['Ingress', 'Egress'] as const).flatMap((dir) => {
    const isolating = mine.filter((p) => policyTypes(p).includes(dir));
    if (!isolating.length) return [];
    const pg = denyPortGroup(namespace, dir);
    // A pod joins the deny once its policy's own group holds it (that policy's allows cover it); one
    // already denied stays while another policy takes it over (briefly too strict, never too open).
    const members = new Set(isolating.flatMap((p) => selectedPods(p, pods)
      .flatMap((x) => (x.lsp && (held(p, x.lsp.uuid) || denied(dir, x.lsp.uuid)) ? [x.lsp.uuid] : []))));
    const port = dir === 'Ingress' ? `outport == @${pg}` : `inport == @${pg}`;
    const acl = (what: string, priority: number, match: string, action: 'allow-related' | 'drop'): AnyDesiredRow => {
      const id = `acl:${namespace}:${dir}:${what}`;
      return {
        table: 'ACL', name: id, parent: { table: 'Port_Group', name: pg, column: 'acls' },
        columns: {
          name: aclName(`NP:${namespace}:${dir}:${what}`), priority, direction: dir === 'Ingress' ? 'to-lport' : 'from-lport', match, action,
          ...logColumns(action === 'drop' ? logging?.deny : undefined),
          options: dir === 'Egress' ? { 'apply-after-lb': 'true' } : {}, external_ids: ownedBy(owner, id, { direction: dir }),
        },
      };
    };
    const hairpin = families.map((f) => HAIRPIN_SNAT_IPS.find((ip) => fam(ip) === f)).filter((x) => x !== undefined)
      .map((ip) => `${ipField(fam(ip), 'src')} == ${ip}`);
    return [
      { table: 'Port_Group', name: pg, columns: { ports: [...members].sort(), external_ids: ownedBy(owner, `pg:${pg}`, { name: `${namespace}_${dir === 'Ingress' ? 'ingress' : 'egress'}DefaultDeny` }) } },
      acl('deny', DENY_PRIORITY, port, 'drop'),
      acl('ARPallow', ALLOW_PRIORITY, `${port} && (arp || nd)`, 'allow-related'),
      ...(dir === 'Ingress' && hairpin.length ? [acl('hairpin', ALLOW_PRIORITY, `${port} && ${or(hairpin)}`, 'allow-related')] : []),
    ] satisfies AnyDesiredRow[];
  });
}

/**
 * The port groups a new pod's port joins in the transaction that creates it: those of the policies of
 * its namespace that select it, and its namespace's default-deny groups for the directions they isolate.
 */
export function podPortGroups(pod: { namespace: string; labels: Record<string, string> }, policies: readonly V1NetworkPolicy[]): string[] {
  const mine = policies.filter((p) => p.metadata?.namespace === pod.namespace && !p.metadata.deletionTimestamp && matches(p.spec?.podSelector ?? {}, pod.labels));
  const dirs = new Set(mine.flatMap(policyTypes));
  return [...mine.map((p) => policyPortGroup(pod.namespace, p.metadata?.name ?? '')), ...[...dirs].map((d) => denyPortGroup(pod.namespace, d))];
}

/**
 * The node's own traffic to its pods (kubelet's probes, host processes, through the management port)
 * is allowed whatever the policies say, as OVN-Kubernetes allows it: one ACL on the node's switch.
 */
export function nodeAllowAcl(node: string, mgmtIps: readonly string[]): AnyDesiredRow {
  const id = `acl:${node}:allow-from-node`;
  return {
    table: 'ACL', name: id, parent: { table: 'Logical_Switch', name: node, column: 'acls' },
    columns: {
      name: aclName(`Node:${node}:allowFromNode`), priority: ALLOW_PRIORITY, direction: 'to-lport', action: 'allow-related', ...logColumns(undefined), options: {},
      // A node without management addresses yet allows nothing (`0`), never the `()` OVN refuses.
      match: or(([4, 6] as const).flatMap((f) => {
        const ips = mgmtIps.filter((ip) => fam(ip) === f);
        return ips.length ? [`${ipField(f, 'src')} == ${set(ips)}`] : [];
      })) || '0',
      external_ids: ownedBy({ type: 'Node', name: node }, id),
    },
  };
}
