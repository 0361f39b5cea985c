// Test harness: real ovsdb-server processes (standalone or a RAFT cluster) in a fresh temp dir,
// stopped by pid and cleaned up by the caller's `after` hook.
import { spawn, execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const NB_SCHEMA = '/usr/share/ovn/ovn-nb.ovsschema';

// A released port can come back from the next bind(0): never hand the same one out twice.
const handedOut = new Set<number>();

/** A free TCP port on 127.0.0.1 (bound then released), distinct from every one returned before. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

/** Resolves once something accepts connections on the unix socket. */
export async function waitForSocket(file: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ path: file });
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`ovsdb-server socket ${file} not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** One ovsdb-server process serving one database file. */
export class OvsdbServer {
  readonly dir: string;
  readonly db: string;
  readonly sock: string;
  readonly tcpPort: number | undefined;
  #proc: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();

  constructor(dir: string, db: string, tcpPort?: number) {
    this.dir = dir;
    this.db = db;
    this.sock = path.join(dir, 'db.sock');
    this.tcpPort = tcpPort;
  }

  get unixEndpoint(): string {
    return `unix:${this.sock}`;
  }

  get tcpEndpoint(): string {
    if (this.tcpPort === undefined) throw new Error('no tcp port');
    return `tcp:127.0.0.1:${this.tcpPort}`;
  }

  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  get running(): boolean {
    return this.#proc !== undefined;
  }

  /** Starts the process and waits for its unix socket. */
  async start(extraArgs: readonly string[] = []): Promise<void> {
    const args = [
      this.db, `--remote=punix:${this.sock}`, `--pidfile=${path.join(this.dir, 'ovsdb-server.pid')}`,
      `--log-file=${path.join(this.dir, 'ovsdb-server.log')}`, `--unixctl=${path.join(this.dir, 'ovsdb-server.ctl')}`,
      '--no-chdir', '-vfile:info', '-vconsole:off', ...extraArgs,
    ];
    if (this.tcpPort !== undefined) args.push(`--remote=ptcp:${this.tcpPort}:127.0.0.1`);
    const proc = spawn('ovsdb-server', args, { stdio: 'ignore' });
    this.#proc = proc;
    this.#exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    await waitForSocket(this.sock);
  }

  /** Stops the process by pid (SIGKILL with `hard`) and waits for it to exit. */
  async stop(hard = false): Promise<void> {
    const proc = this.#proc;
    if (!proc) return;
    this.#proc = undefined;
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(hard ? 'SIGKILL' : 'SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await this.#exited;
    clearTimeout(timer);
  }

  /** Waits until `cluster/status` reports this server as a cluster member. */
  async waitForClusterMember(database: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await this.appctl('cluster/status', database).catch(() => '');
      if (/Status: cluster member/.test(status)) return;
      if (Date.now() > deadline) throw new Error(`${this.dir} did not join the cluster:\n${status}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** `ovs-appctl` against this server. */
  async appctl(...args: string[]): Promise<string> {
    const r = await run('ovs-appctl', ['-t', path.join(this.dir, 'ovsdb-server.ctl'), ...args]);
    return r.stdout;
  }

  /** `ovsdb-client -f json dump` of a database, parsed: table -> rows (cells as wire JSON). */
  async dump(database: string, extraArgs: readonly string[] = []): Promise<Map<string, Record<string, unknown>[]>> {
    const r = await run('ovsdb-client', [...extraArgs, '-f', 'json', 'dump', this.unixEndpoint, database], { maxBuffer: 256 << 20 });
    const out = new Map<string, Record<string, unknown>[]>();
    // One JSON object per table, concatenated: {"caption":"T table","headings":[...],"data":[[...]]}
    for (const line of r.stdout.split('\n')) {
      if (!line.trim()) continue;
      const t = JSON.parse(line) as { caption: string; headings: string[]; data: unknown[][] };
      const name = t.caption.replace(/ table$/, '');
      out.set(name, t.data.map((row) => Object.fromEntries(t.headings.map((h, i) => [h, row[i]]))));
    }
    return out;
  }
}

/** A temp dir plus the servers in it; `cleanup()` stops them all and removes the dir. */
export class Sandbox {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'kovn-ovsdb-'));
  readonly servers: OvsdbServer[] = [];

  /** A standalone database from `schema`, served on a unix socket (and TCP when asked). */
  async standalone(opts: { schema?: string; tcp?: boolean; name?: string } = {}): Promise<OvsdbServer> {
    const dir = path.join(this.dir, opts.name ?? `s${this.servers.length}`);
    mkdirSync(dir);
    const db = path.join(dir, 'db');
    await run('ovsdb-tool', ['create', db, opts.schema ?? NB_SCHEMA]);
    const srv = new OvsdbServer(dir, db, opts.tcp ? await freePort() : undefined);
    this.servers.push(srv);
    await srv.start();
    return srv;
  }

  /** A RAFT cluster of `n` members on loopback; every member also serves clients on unix and TCP. */
  async cluster(n = 3, schema = NB_SCHEMA, database = 'OVN_Northbound'): Promise<OvsdbServer[]> {
    const members: OvsdbServer[] = [];
    const raftPorts: number[] = [];
    for (let i = 0; i < n; i++) raftPorts.push(await freePort());
    for (let i = 0; i < n; i++) {
      const dir = path.join(this.dir, `m${i}`);
      mkdirSync(dir);
      const db = path.join(dir, 'db');
      const local = `tcp:127.0.0.1:${raftPorts[i]}`;
      if (i === 0) await run('ovsdb-tool', ['create-cluster', db, schema, local]);
      else await run('ovsdb-tool', ['join-cluster', db, database, local, `tcp:127.0.0.1:${raftPorts[0]}`]);
      members.push(new OvsdbServer(dir, db, await freePort()));
    }
    this.servers.push(...members);
    await Promise.all(members.map((m) => m.start()));
    // Joining members become cluster members only once they reach the first one.
    await Promise.all(members.map((m) => m.waitForClusterMember(database)));
    return members;
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop().catch(() => undefined)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
