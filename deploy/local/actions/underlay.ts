import { NET } from '../config.ts';
import { ensureAddr, ensureIpv6, ensureNs, inNs, ip, nsExists, underlayPort } from '../net.ts';
import type { IpFamily } from './kovn.ts';

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
