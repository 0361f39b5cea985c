/**
 * Conntrack entries the node's datapath must forget when a UDP or SCTP backend leaves a VIP (OVN
 * leaves them; kube-proxy and OVN-Kubernetes flush them). The userspace datapath flushes by a
 * connection's original, pre-NAT tuple in its own zone, so the entries are found in a dump first.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { StaleFlow } from '../activities/translate/service.ts';
import { run, sleep } from '../lib/exec.ts';

export interface CtEntry {
  protocol: string;
  zone: number;
  orig: { src: string; dst: string; sport: number; dport: number };
  reply: { src: string; dst: string; sport: number; dport: number };
}

const TUPLE = String.raw`\(src=([^,]+),dst=([^,]+),sport=(\d+),dport=(\d+)[^)]*\)`;
const LINE = new RegExp(String.raw`^(\w+),orig=${TUPLE},reply=${TUPLE}(?:.*?,zone=(\d+))?`);

/** The entries of `dpctl/dump-conntrack` that have ports (UDP, SCTP, TCP); others are skipped. */
export function parseConntrack(dump: string): CtEntry[] {
  const out: CtEntry[] = [];
  for (const line of dump.split('\n')) {
    const m = LINE.exec(line.trim());
    if (!m) continue;
    out.push({
      protocol: m[1]!,
      zone: Number(m[10] ?? 0),
      orig: { src: m[2]!, dst: m[3]!, sport: Number(m[4]), dport: Number(m[5]) },
      reply: { src: m[6]!, dst: m[7]!, sport: Number(m[8]), dport: Number(m[9]) },
    });
  }
  return out;
}

/** The entries of a stale flow: sent to its VIP and port, answered (after DNAT) by its old backend. */
export function staleEntries(entries: readonly CtEntry[], flows: readonly StaleFlow[]): CtEntry[] {
  return entries.filter((e) => flows.some((f) => e.protocol === f.protocol && e.orig.dst === f.vip && e.orig.dport === f.port
    && e.reply.src === f.backend && e.reply.sport === f.backendPort));
}

const PROTO_NUMBER: Record<string, number> = { udp: 17, sctp: 132, tcp: 6 };

/** `dpctl/flush-conntrack` arguments that remove exactly one entry: its zone and original tuple. */
export function flushArgs(e: CtEntry): string[] {
  const v6 = e.orig.src.includes(':');
  const tuple = [`${v6 ? 'ct_ipv6_src' : 'ct_nw_src'}=${e.orig.src}`, `${v6 ? 'ct_ipv6_dst' : 'ct_nw_dst'}=${e.orig.dst}`,
    `ct_nw_proto=${PROTO_NUMBER[e.protocol] ?? 0}`, `ct_tp_src=${e.orig.sport}`, `ct_tp_dst=${e.orig.dport}`].join(',');
  return ['dpctl/flush-conntrack', `zone=${e.zone}`, tuple];
}

/** ovs-appctl for the node's ovs-vswitchd, found beside its database socket (the box's layout) or by its pidfile there. */
function appctl(ovsSock: string, args: readonly string[]): Promise<string> {
  const dir = dirname(ovsSock);
  const ctl = join(dir, 'ovs-vswitchd.ctl');
  return run('ovs-appctl', ['-t', existsSync(ctl) ? ctl : 'ovs-vswitchd', ...args], { env: { OVS_RUNDIR: dir }, timeoutMs: 10_000 });
}

/**
 * Flushes the node's entries of the stale flows; returns how many went. Twice, half a second apart:
 * ovn-controller may not have installed the new load balancer yet when the first pass runs, and a
 * packet in between would make a new entry to the old backend.
 */
export async function flushStale(ovsSock: string, flows: readonly StaleFlow[]): Promise<number> {
  if (flows.length === 0) return 0;
  let n = 0;
  for (const pass of [0, 1]) {
    if (pass) await sleep(500);
    const stale = staleEntries(parseConntrack(await appctl(ovsSock, ['dpctl/dump-conntrack'])), flows);
    for (const e of stale) await appctl(ovsSock, flushArgs(e));
    n += stale.length;
  }
  return n;
}
