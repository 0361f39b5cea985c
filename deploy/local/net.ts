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
