/**
 * The host's own connections to Services, in the node's kernel (as kube-proxy's rules are):
 * - a socket bound to another address than the masquerade one (the node's IP) is SNATed to it on the
 *   way to the bridge, so every host -> Service connection reaches the gateway router from the
 *   masquerade address without a conntrack pass in the bridge ahead of OVN's (which the userspace
 *   datapath gets wrong when the backend is on this node);
 * - the host's connections to its own NodePorts (any local address but loopback) are DNATed to the
 *   Service's ClusterIP, which the host reaches through the gateway router. No process on the host
 *   listens in the NodePort range;
 * - a gateway router's connection to this host as a Service's backend (OVN's masquerade address to
 *   the host's) is DNATed to the node's own address, the endpoint's, so a process listening on the
 *   node IP alone answers it too.
 * Pure rules here; keepHostNat applies them with iptables-restore, in chains of kovn's own.
 */
import type { V1Service } from '@kubernetes/client-node';
import { parseCidr } from '../lib/cidr.ts';
import type { Family } from '../lib/cidr.ts';
import { run, runRaw } from '../lib/exec.ts';
import { MASQUERADE } from '../activities/translate/gateway.ts';

export const SNAT_CHAIN = 'KOVN-HOST-SNAT';
export const NODEPORT_CHAIN = 'KOVN-NODEPORTS';
export const BACKEND_CHAIN = 'KOVN-HOST-BACKEND';
/** Where each chain is jumped to from. */
const HOOKS: readonly [string, string][] = [['POSTROUTING', SNAT_CHAIN], ['OUTPUT', NODEPORT_CHAIN], ['PREROUTING', BACKEND_CHAIN]];
/** How soon a failed apply is tried again. */
const RETRY_MS = 5_000;

/** A NodePort as the host's kernel reaches it: the Service's ClusterIP of one family and its port. */
export interface HostNodePort {
  protocol: 'tcp' | 'udp';
  nodePort: number;
  clusterIp: string;
  port: number;
}

/**
 * The NodePorts of every NodePort and LoadBalancer Service, per ClusterIP family, sorted. SCTP is left
 * out: these kernels have no SCTP, and the rule would fail the whole table.
 */
export function hostNodePortsOf(services: readonly V1Service[]): HostNodePort[] {
  const out: HostNodePort[] = [];
  for (const s of services) {
    if (s.spec?.type !== 'NodePort' && s.spec?.type !== 'LoadBalancer') continue;
    const ips = (s.spec.clusterIPs ?? (s.spec.clusterIP ? [s.spec.clusterIP] : [])).filter((ip) => ip !== 'None');
    for (const p of s.spec.ports ?? []) {
      const protocol = (p.protocol ?? 'TCP').toLowerCase();
      if (!p.nodePort || (protocol !== 'tcp' && protocol !== 'udp')) continue;
      for (const clusterIp of ips) out.push({ protocol, nodePort: p.nodePort, clusterIp, port: p.port });
    }
  }
  const key = (n: HostNodePort): string => `${n.nodePort}/${n.protocol}/${n.clusterIp}`;
  return out.sort((a, b) => a.nodePort - b.nodePort || key(a).localeCompare(key(b)));
}

export interface HostNatInput {
  bridge: string;
  family: Family;
  serviceCidrs: readonly string[];
  nodePorts: readonly HostNodePort[];
  /** The node's own address of this family (on the bridge), if it has one. */
  nodeIp?: string | undefined;
}

/** The nat table's kovn chains for one family, as `iptables-restore --noflush` input (it empties them first). */
export function hostNatRules(i: HostNatInput): string {
  const v6 = i.family === 6;
  const masq = MASQUERADE[i.family].host;
  const m = MASQUERADE[i.family];
  const lines = ['*nat', `:${SNAT_CHAIN} - [0:0]`, `:${NODEPORT_CHAIN} - [0:0]`, `:${BACKEND_CHAIN} - [0:0]`];
  for (const svc of i.serviceCidrs.filter((c) => parseCidr(c).family === i.family)) {
    lines.push(`-A ${SNAT_CHAIN} -o ${i.bridge} -d ${svc} ! -s ${masq} -j SNAT --to-source ${masq}`);
  }
  for (const n of i.nodePorts.filter((x) => x.clusterIp.includes(':') === v6)) {
    const to = v6 ? `[${n.clusterIp}]:${n.port}` : `${n.clusterIp}:${n.port}`;
    // Loopback is left alone: its source can never leave the host.
    lines.push(`-A ${NODEPORT_CHAIN} ! -d ${v6 ? '::1/128' : '127.0.0.0/8'} -m addrtype --dst-type LOCAL -p ${n.protocol} -m ${n.protocol} --dport ${n.nodePort} -j DNAT --to-destination ${to}`);
  }
  if (i.nodeIp) lines.push(`-A ${BACKEND_CHAIN} -i ${i.bridge} -s ${m.ovn} -d ${m.host} -j DNAT --to-destination ${i.nodeIp}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/**
 * Keeps the host's kovn chains as hostNatRules says: each family applied when its rules differ, the
 * jumps to them checked on every sync (someone may have flushed them), a failure tried again soon.
 */
export function keepHostNat(opts: { bridge: string; families: readonly Family[]; serviceCidrs: readonly string[]; nodeIps: () => Promise<readonly string[]>; log: (m: string) => void }): { sync: (nodePorts: readonly HostNodePort[]) => Promise<void> } {
  const last = new Map<Family, string>();
  let running: Promise<void> = Promise.resolve();
  let retry: NodeJS.Timeout | undefined;
  let wanted: readonly HostNodePort[] = [];
  const once = async (): Promise<void> => {
    let failed = false;
    const ips = await opts.nodeIps().catch((err: unknown) => {
      failed = true;
      opts.log(`host NAT rules: the node's addresses: ${err instanceof Error ? err.message : String(err)}`);
      return [] as string[];
    });
    for (const family of opts.families) {
      const tool = family === 6 ? 'ip6tables' : 'iptables';
      const nodeIp = ips.find((ip) => ip.includes(':') === (family === 6));
      const rules = hostNatRules({ bridge: opts.bridge, family, serviceCidrs: opts.serviceCidrs, nodePorts: wanted, nodeIp });
      try {
        if (last.get(family) !== rules) {
          await run(`${tool}-restore`, ['--noflush', '--wait'], { input: rules, timeoutMs: 20_000 });
          last.set(family, rules);
        }
        for (const [hook, chain] of HOOKS) {
          if ((await runRaw(tool, ['-w', '-t', 'nat', '-C', hook, '-j', chain])).code !== 0) await run(tool, ['-w', '-t', 'nat', '-I', hook, '-j', chain]);
        }
      } catch (err) {
        failed = true;
        last.delete(family);
        opts.log(`host NAT rules (${tool}): ${err instanceof Error ? err.message : String(err)}; trying again in ${RETRY_MS / 1000} s`);
      }
    }
    if (failed && !retry) retry = setTimeout(() => { retry = undefined; void sync(wanted); }, RETRY_MS);
  };
  const sync = (nodePorts: readonly HostNodePort[]): Promise<void> => {
    wanted = nodePorts;
    return (running = running.then(once, once));
  };
  return { sync };
}
