/**
 * The outside of the cluster in a box: a namespace on the underlay that stands for the world beyond the
 * cluster. It is the nodes' default router (NET.outsideIp), with an external host behind it
 * (NET.externalHostIp on a link `world`) that runs an HTTP and a UDP echo server, each answering
 * with the client's address as the external host saw it. It forwards nothing and has no default route, so
 * whatever reaches it goes no further: nothing of the box's ever leaves the machine's own namespaces.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NET, dirs } from '../config.ts';
import { ensureAddr, ensureIpv6, ensureNs, ensureSysctl, hasLink, inNs, ip, kernelHasIpv6, underlayPort } from '../net.ts';
import { runningPid, writeAtomic } from '../proc.ts';
import type { IpFamily } from './kovn.ts';
import type { Component } from './types.ts';
import { runRaw } from '../../../lib/exec.ts';

/** Where the external host is, as `kovn status` reports it. */
export interface OutsideInfo {
  netns: string;
  host: string;
  /** Only on a dual-stack box. */
  host6?: string;
  httpPort: number;
  udpPort: number;
}

export const outsideInfo = (family: IpFamily): OutsideInfo => ({
  netns: NET.outsideNs,
  host: NET.externalHostIp,
  ...(family === 'dual' ? { host6: NET.externalHostIp6 } : {}),
  httpPort: NET.echo.http,
  udpPort: NET.echo.udp,
});

/**
 * Forwarding off, whatever the root namespace has (a new namespace takes its IPv4 settings), and router
 * advertisements ignored (one would bring an IPv6 default route).
 */
function noForwarding(devs: readonly string[]): Record<string, string> {
  const v4 = { 'net.ipv4.ip_forward': '0', ...Object.fromEntries(devs.map((d) => [`net.ipv4.conf.${d}.forwarding`, '0'])) };
  if (!kernelHasIpv6()) return v4;
  return {
    ...v4,
    'net.ipv6.conf.all.forwarding': '0',
    'net.ipv6.conf.default.accept_ra': '0',
    ...Object.fromEntries(devs.flatMap((d) => [[`net.ipv6.conf.${d}.forwarding`, '0'], [`net.ipv6.conf.${d}.accept_ra`, '0']])),
  };
}

/** Removes any default route: the outside is where packets end, never a way on. Returns how many it removed. */
async function noDefaultRoute(ns: string): Promise<number> {
  let n = 0;
  for (const fam of kernelHasIpv6() ? ['-4', '-6'] : ['-4']) {
    while ((await ip(['-n', ns, fam, 'route', 'show', 'default'])).trim()) {
      await ip(['-n', ns, fam, 'route', 'del', 'default']);
      n++;
    }
  }
  return n;
}

/**
 * The outside namespace: eth0 on the underlay bridge, `world` with the external host's address, IPv6
 * too on a dual-stack box. Idempotent: makes what is missing and says what that was.
 */
export async function outside(family: IpFamily = 'ipv4'): Promise<string> {
  const ns = NET.outsideNs;
  const made: string[] = [];
  if (await ensureNs(ns)) made.push(ns);
  if (!(await hasLink(ns, 'eth0'))) {
    await underlayPort({ ns, dev: 'eth0', peer: 'ul-out', ulNs: NET.underlayNs, bridge: NET.bridge });
    made.push('eth0');
  }
  if (!(await hasLink(ns, 'world'))) {
    // A veth whose other end stays here too: the kernel has no dummy driver (ENVIRONMENT.md), and a
    // bridge without ports has no carrier, which leaves IPv6 addresses on it tentative.
    await ip(['-n', ns, 'link', 'add', 'world', 'type', 'veth', 'peer', 'name', 'world-peer']);
    await ip(['-n', ns, 'link', 'set', 'world-peer', 'up']);
    await ip(['-n', ns, 'link', 'set', 'world', 'up']);
    made.push('world');
  }
  const sysctls = await ensureSysctl(ns, noForwarding(['eth0', 'world', 'world-peer']));
  if (sysctls.length) made.push('forwarding off');
  if (family === 'dual' && (await ensureIpv6(ns, ['eth0', 'world'])).length) made.push('IPv6 on');
  const addrs: [string, string][] = [['eth0', `${NET.outsideIp}/${NET.prefixLen}`], ['world', `${NET.externalHostIp}/24`]];
  if (family === 'dual') addrs.push(['eth0', `${NET.outsideIp6}/${NET.underlay6.prefixLen}`], ['world', `${NET.externalHostIp6}/64`]);
  for (const [dev, cidr] of addrs) if (await ensureAddr(ns, dev, cidr)) made.push(cidr);
  const routes = await noDefaultRoute(ns);
  if (routes) made.push(`${routes} default routes removed`);
  return made.length ? made.join(', ') : 'already there';
}

/**
 * The echo servers' one script (dash, as /bin/sh is): `http` reads a request's head, never a body, and
 * answers `kovn-outside` and the peer's address; `udp` answers a datagram with the peer's address. socat
 * gives IPv6 peers bracketed and written out in full: they are shortened the way ip(8) prints them.
 */
const ECHO_SCRIPT = String.raw`#!/bin/sh
# Written by kovn up (deploy/local/actions/outside.ts): the external host's echo servers run it per client.
peer=$(printf '%s\n' "$SOCAT_PEERADDR" | sed -E '
  s/[][]//g
  s/(^|:)0{1,3}([0-9a-f])/\1\2/g
  t z
  :z
  s/^0(:0){7}$/::/; t
  s/(^|:)0(:0){6}(:|$)/::/; t
  s/(^|:)0(:0){5}(:|$)/::/; t
  s/(^|:)0(:0){4}(:|$)/::/; t
  s/(^|:)0(:0){3}(:|$)/::/; t
  s/(^|:)0(:0){2}(:|$)/::/; t
  s/(^|:)0:0(:|$)/::/')
case $1 in
  http)
    cr=$(printf '\r')
    while IFS= read -r line && [ -n "$line" ] && [ "$line" != "$cr" ]; do :; done
    printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nkovn-outside\n%s\n' "$peer" ;;
  udp) printf '%s\n' "$peer" ;;
esac
`;

const echoScript = (): string => join(dirs.run, 'outside-echo.sh');

function writeEchoScript(): void {
  mkdirSync(dirs.run, { recursive: true });
  let have = '';
  try { have = readFileSync(echoScript(), 'utf8'); } catch { /* not written yet */ }
  if (have !== ECHO_SCRIPT) writeAtomic(echoScript(), ECHO_SCRIPT);
}

/** Runs a command in the outside namespace, feeding it `input`; resolves with its stdout, or '' when it fails. */
async function outsideOutput(args: readonly string[], input?: string): Promise<string> {
  const r = await runRaw('nsenter', [`--net=/run/netns/${NET.outsideNs}`, '--', ...args], { input, timeoutMs: 5000 });
  return r.code === 0 ? r.stdout : '';
}

const bracket = (host: string): string => (host.includes(':') ? `[${host}]` : host);

/**
 * The HTTP and UDP echo servers of the external host, for each address it has (IPv6 on a dual-stack box
 * only). Each listens on the external host's address alone, so that UDP answers come from the address the
 * client sent to. Healthy when it answers a client in the outside namespace with that client's address.
 */
export function echoServers(family: IpFamily): Component[] {
  const hosts = [{ v: '4', host: NET.externalHostIp }, ...(family === 'dual' ? [{ v: '6', host: NET.externalHostIp6 }] : [])];
  return hosts.flatMap(({ v, host }): Component[] => {
    const suffix = v === '4' ? '' : '6';
    const http = `outside-http${suffix}`;
    const udp = `outside-udp${suffix}`;
    return [
      {
        name: http,
        netns: NET.outsideNs,
        prepare: writeEchoScript,
        // -T: a client that never ends its request's head is cut off rather than held forever.
        daemon: { name: http, netns: NET.outsideNs, cmd: 'socat', args: ['-T', '5',
          `TCP${v}-LISTEN:${NET.echo.http},bind=${bracket(host)},fork,reuseaddr`, `EXEC:/bin/sh ${echoScript()} http`] },
        health: async () => runningPid(http) !== undefined &&
          (await outsideOutput(['curl', '-sg', '--max-time', '2', `http://${bracket(host)}:${NET.echo.http}/`])) === `kovn-outside\n${host}\n`,
      },
      {
        name: udp,
        netns: NET.outsideNs,
        prepare: writeEchoScript,
        daemon: { name: udp, netns: NET.outsideNs, cmd: 'socat', args: [
          `UDP${v}-RECVFROM:${NET.echo.udp},bind=${bracket(host)},fork`, `EXEC:/bin/sh ${echoScript()} udp`] },
        // -t 1: socat waits that long for the answer once its input ends (a datagram has no end of its own).
        health: async () => runningPid(udp) !== undefined &&
          (await outsideOutput(['socat', '-t', '1', '-', `UDP${v}:${bracket(host)}:${NET.echo.udp}`], 'kovn\n')) === `${host}\n`,
      },
    ];
  });
}

/**
 * Runs a command in the outside namespace, for tests that act as a client beyond the cluster; resolves
 * with its stdout and throws CommandError on failure. It reaches the underlay subnet only (no default
 * route), from NET.outsideIp unless the command binds the external host's address (`curl --interface
 * 203.0.113.10`); reaching a service or pod address needs a route to it through a node first.
 */
export function outsideExec(args: readonly string[], timeoutMs = 30_000): Promise<string> {
  const [cmd, ...rest] = args;
  return cmd === undefined ? Promise.reject(new Error('outsideExec: no command')) : inNs(NET.outsideNs, cmd, rest, timeoutMs);
}
