import { existsSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import { NET, PORTS, dirs } from '../config.ts';
import { runningPid } from '../proc.ts';
import type { Component } from './types.ts';

/** Ports in the root namespace's loopback that lead to a port on the control plane's loopback. */
const FORWARDS = [
  { name: 'apiserver', port: () => PORTS.apiserver, inner: 6443 },
  { name: 'temporal', port: () => PORTS.temporal, inner: 7233 },
  { name: 'temporal-ui', port: () => PORTS.temporalUi, inner: 8233 },
] as const;

export type ForwardName = (typeof FORWARDS)[number]['name'];

/** Resolves true when something accepts TCP connections on 127.0.0.1:port in this (root) namespace. */
export function tcpOpen(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, timeout: timeoutMs });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
    s.once('timeout', () => { s.destroy(); resolve(false); });
  });
}

/** Fails with a clear message when a root-namespace port is taken by a process that is not ours. */
export function assertPortFree(port: number, who: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`${who}: 127.0.0.1:${port} is already in use (${err.code ?? err.message}); free it or set another port`)));
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => srv.close(() => resolve()));
  });
}

/**
 * The two halves of each forwarder: inside the control-plane namespace a unix socket that connects to
 * its loopback, and in the root namespace a loopback port that connects to that unix socket (unix sockets
 * work across network namespaces, so no test address ever lands in the root namespace).
 */
export function forwarders(only: readonly ForwardName[]): Component[] {
  return FORWARDS.filter((f) => only.includes(f.name)).flatMap((f) => {
    const sock = join(dirs.run, `fwd-${f.name}.sock`);
    const inner = `fwd-${f.name}-cp`;
    const outer = `fwd-${f.name}`;
    return [
      {
        name: inner,
        netns: NET.cpNs,
        daemon: { name: inner, netns: NET.cpNs, cmd: 'socat', args: [`UNIX-LISTEN:${sock},fork,unlink-early,mode=600`, `TCP:127.0.0.1:${f.inner}`] },
        health: () => Promise.resolve(runningPid(inner) !== undefined && existsSync(sock)),
      },
      {
        name: outer,
        prepare: () => assertPortFree(f.port(), `forwarder ${outer}`),
        daemon: { name: outer, cmd: 'socat', args: [`TCP-LISTEN:${f.port()},bind=127.0.0.1,fork,reuseaddr`, `UNIX-CONNECT:${sock}`] },
        health: async () => runningPid(outer) !== undefined && (await tcpOpen(f.port())),
      },
    ];
  });
}
