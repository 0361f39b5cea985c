import { existsSync } from 'node:fs';
import { NET } from '../config.ts';
import { ensureNs, inNs, ip, nsExists, underlayPort } from '../net.ts';
import type { IpFamily } from './kovn.ts';
import { succeeds } from '../../../lib/exec.ts';

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

/**
 * The underlay switch (a bridge in a namespace of its own) and the control-plane namespace on it; on a
 * dual-stack box the control plane has its IPv6 address there too.
 */
export async function underlay(family: IpFamily = 'ipv4'): Promise<string> {
  const made: string[] = [];
  if (await ensureNs(NET.underlayNs)) {
    await ip(['-n', NET.underlayNs, 'link', 'add', NET.bridge, 'type', 'bridge']);
    await ip(['-n', NET.underlayNs, 'link', 'set', NET.bridge, 'up']);
    made.push(NET.underlayNs);
  }
  if (!nsExists(NET.cpNs)) {
    await ensureNs(NET.cpNs);
    await underlayPort({ ns: NET.cpNs, dev: 'eth0', peer: 'ul-cp', ulNs: NET.underlayNs, bridge: NET.bridge });
    await ip(['-n', NET.cpNs, 'addr', 'add', `${NET.cpIp}/${NET.prefixLen}`, 'dev', 'eth0']);
    made.push(NET.cpNs);
  }
  if (family === 'dual') {
    await ensureIpv6(NET.cpNs, ['eth0']);
    if (await ensureAddr(NET.cpNs, 'eth0', `${NET.cpIp6}/${NET.underlay6.prefixLen}`)) made.push(`${NET.cpIp6} on ${NET.cpNs}`);
  }
  // Reachable on the node side of the wire before anything listens, so a dead link shows up here.
  await inNs(NET.cpNs, 'ip', ['link', 'show', 'eth0']);
  return made.length ? `created ${made.join(', ')}` : 'already there';
}
