import { existsSync, readdirSync } from 'node:fs';
import { run, runRaw, succeeds } from '../../lib/exec.ts';

/** Runs a command inside a network namespace (nsenter keeps the mount namespace, unlike `ip netns exec`). */
export function inNs(ns: string, cmd: string, args: readonly string[], timeoutMs = 30_000): Promise<string> {
  return run('nsenter', [`--net=/run/netns/${ns}`, '--', cmd, ...args], { timeoutMs });
}

export function inNsOk(ns: string, cmd: string, args: readonly string[], timeoutMs = 10_000): Promise<boolean> {
  return succeeds('nsenter', [`--net=/run/netns/${ns}`, '--', cmd, ...args], { timeoutMs });
}

export const nsExists = (ns: string): boolean => existsSync(`/run/netns/${ns}`);

export function listNs(): string[] {
  return existsSync('/run/netns') ? readdirSync('/run/netns') : [];
}

export async function ip(args: readonly string[]): Promise<string> {
  return run('ip', args);
}

/** Creates a namespace with loopback up, unless it exists. Returns false when it already existed. */
export async function ensureNs(ns: string): Promise<boolean> {
  if (nsExists(ns)) return false;
  await ip(['netns', 'add', ns]);
  await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  return true;
}

export async function deleteNs(ns: string): Promise<void> {
  if (nsExists(ns)) await runRaw('ip', ['netns', 'del', ns]);
}

/**
 * Transmit checksum offload off: OVS's userspace datapath forwards CHECKSUM_PARTIAL packets from veths
 * with bad TCP checksums, so TCP breaks while ping works (ENVIRONMENT.md).
 */
export async function txOff(ns: string, dev: string): Promise<void> {
  await inNs(ns, 'ethtool', ['-K', dev, 'tx', 'off']);
}

/** A veth from `ns` (named `dev`) into the underlay bridge (named `peer` there), with offload off on both ends. */
export async function underlayPort(opts: { ns: string; dev: string; peer: string; ulNs: string; bridge: string }): Promise<void> {
  const { ns, dev, peer, ulNs, bridge } = opts;
  await ip(['link', 'add', dev, 'netns', ns, 'type', 'veth', 'peer', 'name', peer, 'netns', ulNs]);
  await ip(['-n', ulNs, 'link', 'set', peer, 'master', bridge, 'up']);
  await ip(['-n', ns, 'link', 'set', dev, 'up']);
  await txOff(ulNs, peer);
  await txOff(ns, dev);
}

export const hasLink = (ns: string, dev: string): Promise<boolean> => succeeds('ip', ['-n', ns, 'link', 'show', 'dev', dev]);

/**
 * Adds an address to a link unless it has it; IPv6 ones with `nodad`, so they are usable at once rather
 * than tentative for a second or two. Returns true when it added it.
 */
export async function ensureAddr(ns: string, dev: string, cidr: string): Promise<boolean> {
  if ((await ip(['-n', ns, '-o', 'addr', 'show', 'dev', dev])).includes(` ${cidr} `)) return false;
  await ip(['-n', ns, 'addr', 'add', cidr, 'dev', dev, ...(cidr.includes(':') ? ['nodad'] : [])]);
  return true;
}

/** Sets sysctls in a namespace (/proc/sys/net is per namespace) where they differ; returns the keys it changed. */
export async function ensureSysctl(ns: string, want: Record<string, string>): Promise<string[]> {
  const keys = Object.keys(want);
  const have = (await inNs(ns, 'sysctl', ['-n', ...keys])).split('\n');
  const changed = keys.filter((k, n) => have[n]?.trim() !== want[k]);
  if (changed.length) await inNs(ns, 'sysctl', ['-q', '-w', ...changed.map((k) => `${k}=${want[k]}`)]);
  return changed;
}

/** True when the kernel has IPv6 at all (not booted with ipv6.disable=1). */
export const kernelHasIpv6 = (): boolean => existsSync('/proc/sys/net/ipv6');

/**
 * IPv6 on for a namespace and its links: a new namespace can start with it off, when it inherits the
 * root's settings (net.core.devconf_inherit_init_net=1), and a link keeps the value it was made with.
 */
export async function ensureIpv6(ns: string, devs: readonly string[]): Promise<string[]> {
  if (!kernelHasIpv6()) throw new Error('a dual-stack box needs IPv6 in the kernel (it was booted with ipv6.disable=1)');
  const off = Object.fromEntries(['all', 'default', ...devs].map((d) => [`net.ipv6.conf.${d}.disable_ipv6`, '0']));
  return ensureSysctl(ns, off);
}
