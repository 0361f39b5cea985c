/**
 * `kovn trace`: the verdict OVN gives a packet from a pod (or a host-network pod's node) to a pod, a
 * Service, a node or any address, with the ACL that decides it, the policy and rule that own the ACL,
 * and the workflow run that wrote it. ovn-trace on the Southbound DB does the simulation (every
 * conntrack lookup taken as a new connection); each ACL stage it passes is mapped back to its NB ACL
 * through the logical flow's `stage-hint`.
 */
import type { Client } from '@temporalio/client';
import { parseIp } from './cidr.ts';
import { run } from './exec.ts';
import { history } from './history.ts';
import { isKind } from './kinds.ts';
import { getNode, getPod, getService, internalIps } from './kube.ts';
import type { Kube } from './kube.ts';

/** One ACL stage ovn-trace passed: its logical flow and the actions it took. */
export interface TracedAcl {
  stage: string;
  datapath: string;
  priority: number;
  lflow: string;
  match: string;
  drop: boolean;
}

/** What ovn-trace's output says: the ACL stages passed, and where (if anywhere) the packet was dropped. */
export interface ParsedTrace {
  acls: TracedAcl[];
  dropped?: { stage: string; datapath: string };
}

const STAGE = /^\s*\d+\. (\S+) \([^)]*\): (.*), priority (\d+), uuid ([0-9a-f]{8})$/;
const DATAPATH = /^(?:ingress|egress)\(dp="([^"]+)"/;

/** Parses ovn-trace's detailed output (pure). */
export function parseTrace(out: string): ParsedTrace {
  const acls: TracedAcl[] = [];
  let dropped: ParsedTrace['dropped'];
  let datapath = '';
  let stage: { name: string; acl?: TracedAcl } | undefined;
  for (const line of out.split('\n')) {
    const dp = DATAPATH.exec(line);
    if (dp) {
      datapath = dp[1] ?? '';
      continue;
    }
    const m = STAGE.exec(line);
    if (m) {
      const [, name = '', match = '', priority = '0', lflow = ''] = m;
      stage = { name };
      if (/^ls_(in|out)_acl(_after_lb)?$/.test(name)) {
        stage.acl = { stage: name, datapath, priority: Number(priority), lflow, match, drop: false };
        acls.push(stage.acl);
      }
      continue;
    }
    // A packet no flow of a stage matches is dropped there (` 3. ls_out_acl_hint: no match (implicit drop)`).
    const none = /^\s*\d+\. (\S+?):? no match \(implicit drop\)/.exec(line);
    if (none) {
      dropped ??= { stage: none[1] ?? '', datapath };
      continue;
    }
    // A logged drop prints only its log action (`log(..., verdict=drop, ...)`), never `drop;`.
    if (stage && (line.trim().startsWith('drop;') || /^log\(.*verdict=(drop|reject)/.test(line.trim()))) {
      if (stage.acl) stage.acl.drop = true;
      dropped ??= { stage: stage.name, datapath };
    }
  }
  return { acls, ...(dropped ? { dropped } : {}) };
}

export interface TraceRequest {
  /** `<ns>/<pod>`. */
  source: string;
  /** `<ns>/<pod>`, `service/<ns>/<name>`, `node/<name>` or an address. */
  destination: string;
  port: number;
  protocol: 'tcp' | 'udp' | 'sctp' | 'icmp';
}

export interface AclVerdict {
  name: string;
  uuid: string;
  direction: string;
  priority: number;
  action: string;
  match: string;
  owner?: { kind: string; name: string };
  rule?: string;
  /** The run that last wrote the ACL (its workflow ID and run ID), when Temporal has it. */
  writtenBy?: { workflowId: string; runId: string; start: string };
}

export interface TraceResult {
  from: { endpoint: string; ip: string; port: string; node: string };
  to: { endpoint: string; ip: string };
  protocol: string;
  port: number;
  verdict: 'allowed' | 'denied' | 'dropped';
  /** The ACL that decided: the one that dropped it, or the last one that allowed it. None: no policy applies. */
  decidedBy?: AclVerdict;
  /** Every ACL stage the packet passed that belongs to an NB ACL, in order. */
  acls: AclVerdict[];
  dropped?: { stage: string; datapath: string };
}

interface Dbs { nb: string; sb: string }

const nbGet = async (dbs: Dbs, args: string[]): Promise<string> => (await run('ovn-nbctl', [`--db=${dbs.nb}`, ...args])).trim();

/** A logical switch port's MAC and addresses (`"mac ip ip"`). */
async function portAddresses(dbs: Dbs, port: string): Promise<{ mac: string; ips: string[] }> {
  const raw = await nbGet(dbs, ['--bare', '--columns=addresses', 'find', 'Logical_Switch_Port', `name="${port}"`]);
  const [mac = '', ...ips] = raw.replace(/"/g, '').split(/\s+/).filter(Boolean);
  if (!mac) throw new Error(`logical switch port ${port} has no addresses in the Northbound DB`);
  return { mac, ips };
}

const family = (ip: string): 4 | 6 => (ip.includes(':') ? 6 : 4);

/** The destination's addresses, and its port when it is a pod (for the MAC when it shares the source's switch). */
async function destination(kube: Kube, dbs: Dbs, dst: string): Promise<{ ips: string[]; pod?: { lsp: string; node: string } }> {
  const parts = dst.split('/');
  if (parts.length === 1) {
    try {
      parseIp(dst);
    } catch {
      throw new Error(`destination ${dst}: expected NS/POD, service/NS/NAME, node/NAME or an address`);
    }
    return { ips: [dst] };
  }
  if ((parts[0] === 'service' || parts[0] === 'svc') && parts.length === 3) {
    const svc = await getService(kube, parts[1] ?? '', parts[2] ?? '');
    if (!svc) throw new Error(`service ${parts[1]}/${parts[2]} not found`);
    const ips = (svc.spec?.clusterIPs ?? []).filter((ip) => ip !== 'None');
    if (!ips.length) throw new Error(`service ${parts[1]}/${parts[2]} has no ClusterIP (headless or ExternalName): trace one of its pods`);
    return { ips };
  }
  if (parts[0] === 'node' && parts.length === 2) {
    const node = await getNode(kube, parts[1] ?? '');
    if (!node) throw new Error(`node ${parts[1]} not found`);
    return { ips: internalIps(node) };
  }
  if (parts.length === 2) {
    const pod = await getPod(kube, parts[0] ?? '', parts[1] ?? '');
    if (!pod) throw new Error(`pod ${dst} not found`);
    if (pod.spec?.hostNetwork) return { ips: (pod.status?.podIPs ?? []).map((x) => x.ip) };
    const lsp = `${parts[0]}_${parts[1]}`;
    return { ips: (await portAddresses(dbs, lsp)).ips, pod: { lsp, node: pod.spec?.nodeName ?? '' } };
  }
  throw new Error(`destination ${dst}: expected NS/POD, service/NS/NAME, node/NAME or an address`);
}

/** The microflow ovn-trace simulates. */
export function microflow(p: { inport: string; ethSrc: string; ethDst: string; src: string; dst: string; protocol: TraceRequest['protocol']; port: number }): string {
  const f = family(p.src);
  const l4 = p.protocol === 'icmp'
    ? (f === 4 ? 'icmp4 && icmp4.type == 8 && icmp4.code == 0' : 'icmp6 && icmp6.type == 128 && icmp6.code == 0')
    : `${p.protocol} && ${p.protocol}.src == 40000 && ${p.protocol}.dst == ${p.port}`;
  return `inport == "${p.inport}" && eth.src == ${p.ethSrc} && eth.dst == ${p.ethDst} && ip${f}.src == ${p.src} && ip${f}.dst == ${p.dst} && ip.ttl == 64 && ${l4}`;
}

/** NB ACLs by uuid, and SB logical flows' stage hints (the first 8 hex digits of the NB row they came from). */
async function aclIndex(dbs: Dbs): Promise<{ hints: Map<string, string>; acls: Map<string, Record<string, unknown>> }> {
  const select = async (db: string, schema: string, table: string, columns: string[]): Promise<Record<string, unknown>[]> => {
    const out = await run('ovsdb-client', ['-f', 'json', 'transact', db, JSON.stringify([schema, { op: 'select', table, where: [], columns }])]);
    return (JSON.parse(out) as { rows: Record<string, unknown>[] }[])[0]?.rows ?? [];
  };
  const map = (v: unknown): Record<string, string> => Object.fromEntries(((v as [string, [string, string][]])[1] ?? []));
  const uuid = (v: unknown): string => (v as [string, string])[1];
  const flows = await select(dbs.sb, 'OVN_Southbound', 'Logical_Flow', ['_uuid', 'external_ids']);
  const hints = new Map(flows.flatMap((f) => {
    const hint = map(f.external_ids)['stage-hint'];
    return hint ? [[uuid(f._uuid).slice(0, 8), hint] as const] : [];
  }));
  const acls = new Map((await select(dbs.nb, 'OVN_Northbound', 'ACL', ['_uuid', 'name', 'priority', 'direction', 'match', 'action', 'external_ids']))
    .map((a) => [uuid(a._uuid), { ...a, external_ids: map(a.external_ids), name: Array.isArray(a.name) ? '' : a.name }]));
  return { hints, acls };
}

/** Traces one packet; `temporal` (optional) finds the run that wrote the deciding ACL. */
export async function trace(kube: Kube, dbs: Dbs, req: TraceRequest, temporal?: Client): Promise<TraceResult> {
  const [ns = '', name = ''] = req.source.split('/');
  const pod = await getPod(kube, ns, name);
  if (!pod || !name) throw new Error(`source pod ${req.source} not found (expected NS/POD)`);
  const node = pod.spec?.nodeName ?? '';
  // A host-network pod's packets to the pod network leave its host through the node's management port.
  const inport = pod.spec?.hostNetwork ? `k8s-${node}` : `${ns}_${name}`;
  const src = await portAddresses(dbs, inport);
  const dst = await destination(kube, dbs, req.destination);
  const dstIp = dst.ips.find((ip) => src.ips.some((s) => family(s) === family(ip)));
  if (!dstIp) throw new Error(`${req.destination} has no address of the source's families (${src.ips.join(', ')})`);
  const srcIp = src.ips.find((s) => family(s) === family(dstIp)) ?? '';
  // Same switch: straight to the pod's MAC; anywhere else through the node's router port.
  const ethDst = dst.pod && dst.pod.node === node ? (await portAddresses(dbs, dst.pod.lsp)).mac : (await nbGet(dbs, ['get', 'Logical_Router_Port', `rtos-${node}`, 'mac'])).replace(/"/g, '');
  const flow = microflow({ inport, ethSrc: src.mac, ethDst, src: srcIp, dst: dstIp, protocol: req.protocol, port: req.port });
  const out = await run('ovn-trace', [`--db=${dbs.sb}`, ...Array.from({ length: 8 }, () => '--ct=new'), node, flow]);
  const parsed = parseTrace(out);
  const { hints, acls } = await aclIndex(dbs);
  const verdicts: AclVerdict[] = [];
  const byLflow = new Map<string, AclVerdict>();
  for (const a of parsed.acls) {
    const hint = hints.get(a.lflow);
    const uuid = hint ? [...acls.keys()].find((u) => u.startsWith(hint)) : undefined;
    const row = uuid ? acls.get(uuid) : undefined;
    if (!row || !uuid) continue;
    const ext = row.external_ids as Record<string, string>;
    const kind = ext['k8s.ovn.org/owner-type'];
    const v: AclVerdict = {
      name: String(row.name), uuid, direction: String(row.direction), priority: Number(row.priority), action: String(row.action), match: String(row.match),
      ...(kind && ext['k8s.ovn.org/name'] !== undefined ? { owner: { kind, name: ext['k8s.ovn.org/name'] } } : {}),
      ...(ext['rule-index'] !== undefined ? { rule: `${ext.direction ?? ''} rule ${Number(ext['rule-index']) + 1}` } : ext.direction ? { rule: `${ext.direction} default deny` } : {}),
    };
    verdicts.push(v);
    byLflow.set(a.lflow, v);
  }
  const dropAcl = parsed.acls.find((a) => a.drop);
  const decided = dropAcl ? byLflow.get(dropAcl.lflow) : verdicts.filter((v) => v.action !== 'drop').at(-1);
  if (decided?.owner && temporal && isKind(decided.owner.kind)) {
    const rowId = (acls.get(decided.uuid)?.external_ids as Record<string, string> | undefined)?.['k8s.ovn.org/id'];
    const [ons, oname] = decided.owner.name.includes('/') ? decided.owner.name.split('/', 2) : ['', decided.owner.name];
    const runs = await history(temporal, decided.owner.kind, ons ?? '', oname ?? '');
    const wrote = runs.filter((r) => r.changes.some((c) => c.table === 'ACL' && c.row === rowId && c.op !== 'delete')).at(-1);
    if (wrote) decided.writtenBy = { workflowId: wrote.workflowId, runId: wrote.runId, start: wrote.start };
  }
  const verdict = dropAcl ? 'denied' : parsed.dropped ? 'dropped' : 'allowed';
  return {
    from: { endpoint: req.source, ip: srcIp, port: inport, node }, to: { endpoint: req.destination, ip: dstIp },
    protocol: req.protocol, port: req.port, verdict, ...(decided ? { decidedBy: decided } : {}), acls: verdicts,
    ...(parsed.dropped ? { dropped: parsed.dropped } : {}),
  };
}

export function formatTrace(t: TraceResult): string {
  const what = t.protocol === 'icmp' ? 'icmp' : `${t.protocol}/${t.port}`;
  const lines = [`${t.from.endpoint} (${t.from.ip}) -> ${t.to.endpoint} (${t.to.ip}) ${what}: ${t.verdict.toUpperCase()}`];
  const d = t.decidedBy;
  if (d) {
    lines.push(`  decided by ACL ${d.name || d.uuid} (${d.direction}, priority ${d.priority}, ${d.action}): ${d.match}`);
    if (d.owner) lines.push(`  owned by ${d.owner.kind} ${d.owner.name}${d.rule ? `, ${d.rule}` : ''}`);
    if (d.writtenBy) lines.push(`  written by run ${d.writtenBy.workflowId} ${d.writtenBy.runId} (${d.writtenBy.start}); kovn history shows it`);
  } else if (t.verdict === 'allowed') {
    lines.push('  no policy applies: no ACL matched');
  }
  if (t.dropped && t.verdict === 'dropped') lines.push(`  dropped by OVN at ${t.dropped.stage} on ${t.dropped.datapath} (not by an ACL)`);
  for (const a of t.acls) if (a !== d) lines.push(`  also passed ACL ${a.name || a.uuid} (${a.action})`);
  return lines.join('\n');
}
