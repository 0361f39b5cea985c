/**
 * The node agent's side of the CNI socket: one plugin call per connection, answered (answer.ts) with
 * what the plugin prints, closed.
 */
import { chmod, lstat, mkdir, rename, unlink } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { answer } from './answer.ts';
import type { PluginAnswer } from './call.ts';
import { CNI_ERR_DECODE, errorOutput } from './errors.ts';
import { PluginCall } from './protocol.ts';
import type { AddRequest, CheckRequest, DelRequest, GcRequest, StatusRequest } from './protocol.ts';
import type { CniResultInput } from './result.ts';
import { LATEST_VERSION } from './versions.ts';
import { describeIssues } from './zod-issues.ts';

/**
 * What the agent does for each CNI command. Throw a CniError to report a specific code; any other
 * error becomes code 11 (try again later) when it carries `retryable: true`, else code 5.
 */
export interface CniHandler {
  /** Attach the pod; the result is rendered in the runtime's CNI version by the plugin. */
  add(req: AddRequest): Promise<CniResultInput>;
  /** Detach; must succeed when there is nothing left to remove. */
  del(req: DelRequest): Promise<void>;
  /** Verify the attachment described by `req.config.prevResult`. */
  check(req: CheckRequest): Promise<void>;
  /** Resolve when ADDs can be served; throw CniError(50 or 51) otherwise. */
  status(req: StatusRequest): Promise<void>;
  /** Release what belongs to attachments not in `req.config["cni.dev/valid-attachments"]`. */
  gc(req: GcRequest): Promise<void>;
}

export interface CniServerOptions {
  /** Absolute path of the unix socket; its directory is created, a stale socket replaced. */
  socketPath: string;
  handler: CniHandler;
  /** Called with one line per request: command, pod, sandbox, outcome, duration (the agent's logger). */
  log?: (line: string) => void;
  /** How long close() lets requests in flight finish before cutting them off (default 10 s). */
  closeGraceMs?: number;
}

/** A running server. */
export interface CniServer {
  /** Stops accepting, lets requests in flight finish (up to the grace period), removes the socket file. */
  close(): Promise<void>;
}

/** Requests are a config and a previous result: a few KiB. */
const MAX_REQUEST_BYTES = 1 << 20;
/** A client that connects and says nothing is dropped after this long. */
const IDLE_MS = 30_000;

/** Listens on `socketPath` (mode 0600) and serves CNI requests until closed. */
export async function startCniServer(opts: CniServerOptions): Promise<CniServer> {
  const { socketPath, handler } = opts;
  await mkdir(dirname(socketPath), { recursive: true, mode: 0o755 });
  await refuseIfServed(socketPath);
  const sockets = new Set<Socket>();
  // Half-open: a client may end its side after the request and still read the answer.
  const server = createServer({ allowHalfOpen: true }, (sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    serveConnection(sock, handler, opts.log);
  });
  // Bind beside the target, restrict, then rename over it: the path never exists with looser rights,
  // and a stale socket file is replaced in one step.
  const tmpPath = join(dirname(socketPath), `.${process.pid}.${Date.now()}.kovn-cni.tmp`);
  await listen(server, tmpPath);
  try {
    await chmod(tmpPath, 0o600);
    await rename(tmpPath, socketPath);
  } catch (err) {
    server.close();
    await unlink(tmpPath).catch(() => undefined);
    throw err;
  }
  const ino = (await lstat(socketPath)).ino;
  return {
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Idle clients would hold close() forever; in-flight requests get the grace period to answer.
      for (const s of sockets) if (!busy.has(s)) s.destroy();
      const cutoff = setTimeout(() => { for (const s of sockets) s.destroy(); }, opts.closeGraceMs ?? 10_000);
      await closed;
      clearTimeout(cutoff);
      // Another server may have taken the path since: remove only our own socket file.
      const st = await lstat(socketPath).catch(() => undefined);
      if (st?.ino === ino) await unlink(socketPath).catch(() => undefined);
    },
  };
}

/** Connections whose request is being handled. */
const busy = new WeakSet<Socket>();

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** A live agent on the path is an error (two agents); a dead socket file is stale and gets replaced. */
async function refuseIfServed(path: string): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (!st) return;
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket`);
  const alive = await new Promise<boolean>((resolve) => {
    const c = createConnection({ path });
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
  if (alive) throw new Error(`another process is serving ${path}`);
}

function serveConnection(sock: Socket, handler: CniHandler, log?: (line: string) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let done = false;
  sock.setTimeout(IDLE_MS, () => sock.destroy());
  sock.on('error', () => undefined); // a client that went away is not the agent's problem
  const take = (bytes: Buffer): void => {
    if (done) return;
    done = true;
    sock.setTimeout(0);
    busy.add(sock);
    void respond(bytes, handler, log).then((res) => {
      busy.delete(sock);
      sock.end(`${JSON.stringify(res)}\n`);
    });
  };
  sock.on('data', (chunk: Buffer) => {
    if (done) return;
    size += chunk.length;
    if (size > MAX_REQUEST_BYTES) {
      done = true;
      const tooBig: PluginAnswer = { stdout: errorOutput(LATEST_VERSION, { code: CNI_ERR_DECODE, msg: `request over ${MAX_REQUEST_BYTES} bytes` }), exitCode: 1 };
      sock.end(`${JSON.stringify(tooBig)}\n`);
      return;
    }
    chunks.push(chunk);
    const all = Buffer.concat(chunks);
    const nl = all.indexOf(10);
    if (nl >= 0) take(all.subarray(0, nl));
  });
  // A client may half-close instead of sending the newline.
  sock.on('end', () => {
    if (size > 0) take(Buffer.concat(chunks));
    else if (!done) sock.end();
  });
}

/** Decodes one call and answers it (see answer.ts); never throws. */
export async function respond(bytes: Buffer, handler: CniHandler, log?: (line: string) => void): Promise<PluginAnswer> {
  const fail = (msg: string, details: string): PluginAnswer => {
    log?.(`CNI call refused: ${msg} (${details})`);
    return { stdout: errorOutput(LATEST_VERSION, { code: CNI_ERR_DECODE, msg, details }), exitCode: 1, logLine: `error ${CNI_ERR_DECODE}: ${msg}` };
  };
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    return fail('request is not JSON', err instanceof Error ? err.message : String(err));
  }
  const call = PluginCall.safeParse(json);
  if (!call.success) return fail('request is not a plugin call', describeIssues(call.error));
  return answer(call.data, handler, log);
}
