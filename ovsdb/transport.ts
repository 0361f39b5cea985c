// OVSDB endpoint strings (the ovs-vsctl/ovn-nbctl --db syntax) and opening sockets to them.
import net from 'node:net';
import tls from 'node:tls';

/** TLS material for `ssl:` endpoints (PEM strings or buffers). ovsdb-server requires a client certificate. */
export interface TlsOptions {
  readonly ca: string | Buffer;
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** Server name to verify the certificate against; defaults to the endpoint's host. */
  readonly servername?: string;
}

export type Endpoint =
  | { readonly kind: 'unix'; readonly path: string; readonly text: string }
  | { readonly kind: 'tcp' | 'ssl'; readonly host: string; readonly port: number; readonly text: string };

/** Parses `unix:/path`, `tcp:host:port`, `ssl:host:port` (IPv6 as `tcp:[::1]:6641`). */
export function parseEndpoint(text: string): Endpoint {
  const colon = text.indexOf(':');
  const kind = text.slice(0, colon);
  const rest = text.slice(colon + 1);
  if (kind === 'unix' && rest) return { kind, path: rest, text };
  if (kind === 'tcp' || kind === 'ssl') {
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(rest);
    if (m) return { kind, host: m[1] ?? m[2]!, port: Number(m[3]), text };
  }
  throw new Error(`bad OVSDB endpoint ${JSON.stringify(text)}: expected unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT`);
}

/** Opens a socket to the endpoint; rejects after `timeoutMs`. */
export function openSocket(ep: Endpoint, timeoutMs: number, tlsOpts?: TlsOptions): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    let socket: net.Socket;
    const ready = ep.kind === 'ssl' ? 'secureConnect' : 'connect';
    if (ep.kind === 'unix') socket = net.connect({ path: ep.path });
    else if (ep.kind === 'tcp') socket = net.connect({ host: ep.host, port: ep.port });
    else {
      if (!tlsOpts) {
        reject(new Error(`endpoint ${ep.text} needs tls options`));
        return;
      }
      socket = tls.connect({
        host: ep.host, port: ep.port, ca: tlsOpts.ca, cert: tlsOpts.cert, key: tlsOpts.key,
        servername: tlsOpts.servername ?? (net.isIP(ep.host) ? undefined : ep.host),
      });
    }
    const timer = setTimeout(() => socket.destroy(new Error(`connect to ${ep.text} timed out after ${timeoutMs} ms`)), timeoutMs);
    socket.once(ready, () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
