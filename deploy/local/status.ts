import { NET, PORTS, STATE, TEMPORAL_NAMESPACE, files } from './config.ts';
import { nodePaths } from './actions/node.ts';
import { NB_TCP, SB_TCP } from './actions/ovn-central.ts';
import { outsideInfo } from './actions/outside.ts';
import type { OutsideInfo } from './actions/outside.ts';
import type { Component } from './actions/types.ts';
import { boxComponents } from './components.ts';
import { recorded } from './up.ts';
import { isHeld, logFile, readSupervisor, runningPid, supervisorPid } from './proc.ts';
import { kubectlJson } from './kubectl.ts';

export interface ComponentStatus {
  name: string;
  netns: string;
  pid: number | null;
  healthy: boolean;
  /** Times its supervisor restarted it after an exit (the box's life). */
  restarts: number;
  /** How it last exited, if it ever did. */
  lastExit: string | null;
  /** Its supervisor's pid; null when none runs (it would not come back after an exit). */
  supervisor: number | null;
  /** Held down by `kovn stop` (until `kovn start` or `kovn up`). */
  held: boolean;
  log: string;
}

export interface NodeStatus {
  name: string;
  netns: string;
  ip: string;
  /** The Node's Ready condition as the apiserver reports it ("True", "False", "Unknown" or "absent"). */
  ready: string;
  reason: string;
  components: ComponentStatus[];
}

export interface BoxStatus {
  healthy: boolean;
  state: string;
  kubeconfig: string;
  temporal: { address: string; namespace: string; ui: string };
  ovn: { nb: string; sb: string; nbTcp: string; sbTcp: string };
  /** The external host beyond the cluster and its echo servers (their health is in `components`). */
  outside: OutsideInfo;
  components: ComponentStatus[];
  nodes: NodeStatus[];
}

async function check(c: Component): Promise<ComponentStatus> {
  const pid = runningPid(c.name) ?? null;
  const healthy = pid !== null && (await c.health().catch(() => false));
  const sup = readSupervisor(c.name);
  return {
    name: c.name, netns: c.netns ?? 'root', pid, healthy, restarts: sup?.restarts ?? 0, lastExit: sup?.lastExit ?? null,
    supervisor: supervisorPid(c.name) ?? null, held: isHeld(c.name), log: logFile(c.name),
  };
}

interface NodeList {
  items: { metadata: { name: string }; status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] } }[];
}

/** Health of every component and what a user needs to reach the box. */
export async function status(): Promise<BoxStatus> {
  const shape = recorded();
  const count = shape?.nodes ?? 0;
  const family = shape?.ipFamily ?? 'ipv4';
  const { central, nodes: perNode } = boxComponents(shape ?? { nodes: 0, bare: true, ipFamily: family });
  const [components, nodeComps, list] = await Promise.all([
    Promise.all(central.map(check)),
    Promise.all(perNode.map((cs) => Promise.all(cs.map(check)))),
    kubectlJson<NodeList>(['get', 'nodes', '--request-timeout=5s']).catch((): NodeList => ({ items: [] })),
  ]);
  const nodes = nodeComps.map((cs, k): NodeStatus => {
    const p = nodePaths(k + 1);
    const ready = list.items.find((n) => n.metadata.name === p.name)?.status?.conditions?.find((c) => c.type === 'Ready');
    return {
      name: p.name, netns: p.ns, ip: p.ip, ready: ready?.status ?? 'absent',
      reason: ready ? `${ready.reason ?? ''}${ready.message ? `: ${ready.message}` : ''}` : '', components: cs,
    };
  });
  const all = [...components, ...nodes.flatMap((n) => n.components)];
  return {
    healthy: count > 0 && all.every((c) => c.healthy),
    state: STATE,
    kubeconfig: files.adminKubeconfig,
    temporal: {
      address: `127.0.0.1:${PORTS.temporal}`,
      namespace: TEMPORAL_NAMESPACE,
      ui: `http://127.0.0.1:${PORTS.temporalUi}/namespaces/${TEMPORAL_NAMESPACE}/workflows`,
    },
    ovn: { nb: `unix:${files.nbSock}`, sb: `unix:${files.sbSock}`, nbTcp: NB_TCP, sbTcp: SB_TCP },
    outside: outsideInfo(family),
    components,
    nodes,
  };
}

const mark = (c: ComponentStatus): string =>
  c.healthy ? '✓' : c.held ? '✗ (kovn stop)' : c.pid === null ? (c.supervisor ? '✗ (restarting)' : '✗ (not running)') : '✗ (unhealthy)';
/** Restarts and the last exit, and a warning when nothing would restart the daemon. */
const restarts = (c: ComponentStatus): string => [
  c.restarts ? `restarts ${c.restarts} (last: ${c.lastExit ?? '?'})` : '',
  c.pid !== null && c.supervisor === null ? 'no supervisor (`kovn up` gives it one)' : '',
].filter(Boolean).join('; ');

export function printStatus(s: BoxStatus): void {
  const out: string[] = [];
  out.push(`kovn box: ${s.healthy ? 'healthy' : s.components.some((c) => c.pid !== null) ? 'DEGRADED' : 'down'}  (state ${s.state})`);
  out.push(`  export KUBECONFIG=${s.kubeconfig}`);
  out.push(`  Temporal ${s.temporal.address} namespace ${s.temporal.namespace}; UI ${s.temporal.ui}`);
  out.push(`  OVN NB ${s.ovn.nb} (${s.ovn.nbTcp}); SB ${s.ovn.sb} (${s.ovn.sbTcp})`);
  const o = s.outside;
  out.push(`  Outside ${o.host}${o.host6 ? ` and ${o.host6}` : ''} (netns ${o.netns}): HTTP :${o.httpPort}, UDP echo :${o.udpPort}`, '', 'components:');
  for (const c of s.components) out.push(`  ${mark(c).padEnd(16)} ${c.name.padEnd(26)} ${String(c.pid ?? '-').padEnd(8)} ${c.netns.padEnd(8)} ${restarts(c)}`.trimEnd());
  for (const n of s.nodes) {
    out.push('', `${n.name} ${n.ip} (netns ${n.netns}): Ready=${n.ready}${n.reason ? ` ${n.reason}` : ''}`);
    for (const c of n.components) out.push(`  ${mark(c).padEnd(16)} ${c.name.padEnd(26)} ${String(c.pid ?? '-').padEnd(8)} ${restarts(c)}`.trimEnd());
  }
  if (s.nodes.length === 0) out.push('', `no nodes (underlay ${NET.cpIp}/${NET.prefixLen})`);
  console.log(out.join('\n'));
}
