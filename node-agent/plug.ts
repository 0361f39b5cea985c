/**
 * The kernel side of a pod's network, with iproute2 and ethtool run in the node's namespace (where the
 * agent runs) and, through nsenter, in the pod's: a veth pair, the pod's MAC, addresses, routes, MTU.
 */
import { basename } from 'node:path';
import { existsSync } from 'node:fs';
import { run, runRaw } from '../lib/exec.ts';
import { CNI_ERR_INVALID_ENV, CNI_ERR_IO, CniError } from '../cni/errors.ts';

export interface PodInterface {
  netns: string;
  ifname: string;
  hostIfname: string;
  mac: string;
  /** Addresses with prefix ("10.244.1.5/24"). */
  ips: string[];
  gateways: string[];
  mtu: number;
}

const inPod = (netns: string, cmd: string, args: readonly string[]): Promise<string> =>
  run('nsenter', [`--net=${netns}`, '--', cmd, ...args], { timeoutMs: 20_000 });

/** Host-side interface name: at most 15 bytes, stable per sandbox (as OVN-Kubernetes names it). */
export const hostIfname = (containerId: string): string => containerId.slice(0, 15);

/** `ip link ... netns X` takes a name under /run/netns or a pid; containerd's paths are the former. */
function netnsArg(netns: string): string {
  if (netns.startsWith('/var/run/netns/') || netns.startsWith('/run/netns/')) return basename(netns);
  const m = /^\/proc\/(\d+)\/ns\/net$/.exec(netns);
  if (m?.[1]) return m[1];
  throw new CniError(CNI_ERR_INVALID_ENV, `unsupported netns path ${netns}`);
}

export function assertNetns(netns: string): void {
  if (!netns || !existsSync(netns)) throw new CniError(CNI_ERR_INVALID_ENV, `network namespace ${JSON.stringify(netns)} does not exist`);
}

/**
 * The plug as one shell script, so the agent spawns one process per pod: a spawn from the agent (a big
 * process) costs far more than a fork from a small shell, and the pod path is latency-bound on a busy
 * node. Arguments are positional, never interpolated. The pod side (ip -batch on stdin) runs in one
 * nsenter. OVS's userspace datapath forwards checksum-offloaded packets with bad TCP checksums, hence
 * tx offload off on both ends.
 */
const PLUG_SCRIPT = `set -e
host=$1 ifname=$2 netns=$3 target=$4 mtu=$5
add() { ip link add "$host" mtu "$mtu" type veth peer name "$ifname" mtu "$mtu" netns "$target"; }
if ! add 2>/dev/null; then
  # A half-made pair from an earlier attempt: remove both ends, then create it again.
  ip link del "$host" 2>/dev/null || true
  nsenter --net="$netns" -- ip link del "$ifname" 2>/dev/null || true
  add
fi
nsenter --net="$netns" -- sh -c 'ip -batch - && ethtool -K "$1" tx off >/dev/null' sh "$ifname"
ethtool -K "$host" tx off >/dev/null
ip link set "$host" up`;

/** Creates (or recreates) the veth pair and configures the pod side; idempotent. */
export async function plugVeth(p: PodInterface): Promise<void> {
  assertNetns(p.netns);
  const batch = [
    'link set lo up',
    `link set ${p.ifname} address ${p.mac}`,
    ...p.ips.map((ip) => `addr add ${ip} dev ${p.ifname}${ip.includes(':') ? ' nodad' : ''}`),
    `link set ${p.ifname} up`,
    ...p.gateways.map((gw) => `route add default via ${gw} dev ${p.ifname}`),
  ].join('\n');
  await run('sh', ['-c', PLUG_SCRIPT, 'sh', p.hostIfname, p.ifname, p.netns, netnsArg(p.netns), String(p.mtu)], { input: `${batch}\n`, timeoutMs: 20_000 });
}

/** Removes the pair (deleting one end removes both); nothing when it is gone already. */
export async function unplugVeth(hostIf: string): Promise<boolean> {
  const r = await runRaw('ip', ['link', 'del', hostIf]);
  return r.code === 0;
}

/** What CHECK verifies: the pod's interface carries the MAC and every address. */
export async function checkVeth(p: PodInterface): Promise<void> {
  assertNetns(p.netns);
  const out = await inPod(p.netns, 'ip', ['-o', 'addr', 'show', 'dev', p.ifname]).catch(() => '');
  for (const ip of p.ips) {
    if (!out.includes(` ${ip} `)) throw new CniError(CNI_ERR_IO, `${p.ifname} in ${p.netns} lacks ${ip}`);
  }
  const link = await inPod(p.netns, 'ip', ['-o', 'link', 'show', 'dev', p.ifname]).catch(() => '');
  if (!link.includes(p.mac)) throw new CniError(CNI_ERR_IO, `${p.ifname} in ${p.netns} does not have MAC ${p.mac}`);
  if (!(await runRaw('ip', ['link', 'show', p.hostIfname])).stdout.includes(p.hostIfname)) {
    throw new CniError(CNI_ERR_IO, `host interface ${p.hostIfname} is missing`);
  }
}

/** The management port: the node reaches its pods (and through the cluster router, every pod). */
export async function configureMgmtPort(dev: string, mac: string, ips: string[], routes: { dst: string; via: string }[], mtu: number): Promise<void> {
  for (let i = 0; i < 100 && (await runRaw('ip', ['link', 'show', dev])).code !== 0; i++) await new Promise((r) => setTimeout(r, 50));
  await run('ip', ['link', 'set', dev, 'address', mac, 'mtu', String(mtu)]);
  const have = await run('ip', ['-o', 'addr', 'show', 'dev', dev]);
  for (const ip of ips) if (!have.includes(` ${ip} `)) await run('ip', ['addr', 'add', ip, 'dev', dev, ...(ip.includes(':') ? ['nodad'] : [])]);
  await run('ip', ['link', 'set', dev, 'up']);
  for (const r of routes) await run('ip', ['route', 'replace', r.dst, 'via', r.via, 'dev', dev]);
  await runRaw('ethtool', ['-K', dev, 'tx', 'off']);
}
