/**
 * The node's pod address allocator. The agent owns IPAM for its node subnets: an allocation is keyed by
 * pod UID (asking twice returns the same addresses), persisted atomically before it is returned (so it
 * survives an agent restart), and an address is handed out again only after its release. Next-fit
 * allocation delays reuse of a just-released address as long as the subnet allows.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, realpathSync, renameSync, writeSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Server } from 'node:net';
import { basename, dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { formatCidr, nthAddress, offsetOf, parseCidr, size } from '../lib/cidr.ts';
import type { Cidr } from '../lib/cidr.ts';
import { InvalidInputError } from '../lib/errors.ts';

/** Offsets kept out of the pool: .0 network, .1 gateway (router port), .2 management port. */
const RESERVED_LOW = 3n;
/** IPv6 pools are huge; allocation only walks this many offsets. */
const V6_POOL = 65_536n;

export interface Allocation {
  uid: string;
  pod: string;
  /** One address per family, each with its prefix length ("10.244.1.5/24"). */
  ips: string[];
}

const Store = z.object({
  subnets: z.array(z.string()),
  cursor: z.record(z.string(), z.string()),
  // portGone: when NB was found to hold no port for the UID (its address waits only for the node's checks).
  allocations: z.record(z.string(), z.object({ pod: z.string(), ips: z.array(z.string()), at: z.number().optional(), portGone: z.number().optional() })),
});
type Store = z.infer<typeof Store>;

function readStore(file: string): Store | undefined {
  if (!existsSync(file)) return undefined;
  const parsed = Store.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) throw new Error(`IPAM store ${file} is corrupt: ${parsed.error.issues[0]?.message ?? ''}`);
  return parsed.data;
}

export class IpamExhaustedError extends InvalidInputError {
  constructor(subnet: string) {
    super('SubnetExhausted', `no free address left in ${subnet}`);
  }
}

export class Ipam {
  readonly #file: string;
  #store: Store;
  #subnets: Cidr[];
  /** Addresses in use, by subnet, as offsets. */
  #used = new Map<string, Set<bigint>>();

  private constructor(file: string, store: Store) {
    this.#file = file;
    this.#store = store;
    this.#subnets = store.subnets.map(parseCidr);
    for (const s of this.#subnets) this.#used.set(formatCidr(s), new Set());
    for (const a of Object.values(store.allocations)) for (const ip of a.ips) this.#mark(ip, true);
  }

  /**
   * Opens the allocator persisted in `file` for the given node subnets. Allocations outside the subnets
   * (the node's subnet changed) are dropped: their addresses cannot be valid any more.
   */
  static open(file: string, subnets: readonly string[]): Ipam {
    let store: Store = readStore(file) ?? { subnets: [...subnets], cursor: {}, allocations: {} };
    const same = store.subnets.length === subnets.length && store.subnets.every((s, i) => s === subnets[i]);
    if (!same) {
      const cidrs = subnets.map(parseCidr);
      const inside = (ip: string): boolean => cidrs.some((c) => { try { offsetOf(c, ip.split('/')[0] ?? ''); return true; } catch { return false; } });
      const allocations = Object.fromEntries(Object.entries(store.allocations).filter(([, a]) => a.ips.every(inside) && a.ips.length === cidrs.length));
      store = { subnets: [...subnets], cursor: {}, allocations };
    }
    const ipam = new Ipam(file, store);
    ipam.#save();
    return ipam;
  }

  /** Opens the persisted store as it is (its own subnets); undefined when there is none yet. */
  static load(file: string): Ipam | undefined {
    const store = readStore(file);
    return store ? new Ipam(file, store) : undefined;
  }

  get subnets(): string[] {
    return [...this.#store.subnets];
  }

  get(uid: string): Allocation | undefined {
    const a = this.#store.allocations[uid];
    return a ? { uid, pod: a.pod, ips: [...a.ips] } : undefined;
  }

  list(): Allocation[] {
    return Object.entries(this.#store.allocations).map(([uid, a]) => ({ uid, pod: a.pod, ips: [...a.ips] }));
  }

  /** The pod's addresses: its existing allocation, or a new one persisted before it is returned. */
  allocate(uid: string, pod: string): Allocation {
    const existing = this.get(uid);
    if (existing) return existing;
    if (this.#subnets.length === 0) throw new InvalidInputError('NoSubnet', 'the node has no pod subnet yet');
    const ips = this.#subnets.map((s) => this.#next(s));
    this.#store.allocations[uid] = { pod, ips, at: Date.now() };
    for (const ip of ips) this.#mark(ip, true);
    this.#save();
    return { uid, pod, ips };
  }

  /**
   * Puts back an allocation found in the cluster (a rebuild): its addresses as they are, one per subnet;
   * false when they do not fit this node's subnets or one is taken.
   */
  restore(a: Allocation): boolean {
    if (this.get(a.uid) || a.ips.length !== this.#subnets.length) return false;
    const fits = this.#subnets.every((s) => a.ips.some((ipp) => {
      const [ip = '', len] = ipp.split('/');
      try {
        const off = offsetOf(s, ip);
        return Number(len) === s.prefix && off >= RESERVED_LOW && !this.#used.get(formatCidr(s))?.has(off);
      } catch {
        return false;
      }
    }));
    if (!fits) return false;
    this.#store.allocations[a.uid] = { pod: a.pod, ips: [...a.ips], at: Date.now() };
    for (const ip of a.ips) this.#mark(ip, true);
    this.#save();
    return true;
  }

  /** Releases a pod's addresses; false when it had none. */
  release(uid: string): boolean {
    const a = this.#store.allocations[uid];
    if (!a) return false;
    delete this.#store.allocations[uid];
    // An address two allocations claim (one of them being put right) stays in use for the other.
    const still = new Set(Object.values(this.#store.allocations).flatMap((x) => x.ips));
    for (const ip of a.ips) if (!still.has(ip)) this.#mark(ip, false);
    this.#save();
    return true;
  }

  /**
   * Makes sure an allocation an ADD recorded is in the store (a store rebuilt while the ADD was in
   * flight lacks it): put back as it is, even over an allocation that took its address meanwhile,
   * whose own ADD then finds the address held and drops it. False when the UID holds other addresses.
   */
  hold(a: Allocation): boolean {
    const have = this.get(a.uid);
    if (have) {
      if (have.ips.join() !== a.ips.join()) return false;
      this.setPortGone(a.uid, false); // its port was just published
      return true;
    }
    this.#store.allocations[a.uid] = { pod: a.pod, ips: [...a.ips], at: Date.now() };
    for (const ip of a.ips) this.#mark(ip, true);
    this.#save();
    return true;
  }

  /**
   * Records that NB holds no port for the UID (true), or holds one again (false): an address whose port
   * is gone is freed as soon as its node confirms the pod gone and unplugged, whoever asked first.
   */
  setPortGone(uid: string, gone: boolean): void {
    const a = this.#store.allocations[uid];
    if (!a || (a.portGone !== undefined) === gone) return;
    if (gone) a.portGone = Date.now();
    else delete a.portGone;
    this.#save();
  }

  portGone(uid: string): boolean {
    return this.#store.allocations[uid]?.portGone !== undefined;
  }

  /**
   * Allocations older than `minAgeMs` (or whose port is gone) whose pod UID is not in `live`: addresses of pods that vanished
   * while a release could not run (the agent was down, a run was interrupted). The age guard keeps a
   * fresh allocation whose pod the caller has not seen yet. Read-only: the caller releases them.
   */
  stale(live: ReadonlySet<string>, minAgeMs: number): Allocation[] {
    const now = Date.now();
    // One whose port NB no longer holds has no ADD in flight to wait for, whatever its age.
    return this.list().filter((a) => {
      const s = this.#store.allocations[a.uid];
      return !live.has(a.uid) && (s?.portGone !== undefined || now - (s?.at ?? 0) > minAgeMs);
    });
  }

  #next(s: Cidr): string {
    const key = formatCidr(s);
    const used = this.#used.get(key) ?? new Set<bigint>();
    const total = s.family === 4 ? size(s) - 1n : RESERVED_LOW + V6_POOL; // v4: keep the broadcast address
    const span = total - RESERVED_LOW;
    if (span <= 0n) throw new IpamExhaustedError(key);
    const start = BigInt(this.#store.cursor[key] ?? String(RESERVED_LOW));
    for (let i = 0n; i < span; i++) {
      const off = RESERVED_LOW + ((start - RESERVED_LOW + i) % span);
      if (!used.has(off)) {
        this.#store.cursor[key] = String(RESERVED_LOW + ((off - RESERVED_LOW + 1n) % span));
        return `${nthAddress(s, off)}/${s.prefix}`;
      }
    }
    throw new IpamExhaustedError(key);
  }

  #mark(ipWithPrefix: string, inUse: boolean): void {
    const ip = ipWithPrefix.split('/')[0] ?? '';
    for (const s of this.#subnets) {
      let off: bigint;
      try {
        off = offsetOf(s, ip);
      } catch {
        continue;
      }
      const set = this.#used.get(formatCidr(s));
      if (inUse) set?.add(off);
      else set?.delete(off);
    }
  }

  /**
   * Write-to-temp, fsync, rename, fsync the directory: a crash leaves the old or the new store, never
   * half of one, and once this returns the rename itself is on disk too.
   */
  #save(): void {
    const dir = dirname(this.#file);
    mkdirSync(dir, { recursive: true });
    const tmp = `${this.#file}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(this.#store));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.#file);
    const dirFd = openSync(dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }
}

/** Another process holds the allocation file: a second agent for the node. */
export class IpamLockedError extends Error {
  override readonly name = 'IpamLockedError';
  readonly file: string;
  /** The holder's pid, when it answered. */
  readonly holder: number | undefined;
  constructor(file: string, holder: number | undefined) {
    super(`the allocation file ${file} is locked by another node agent (${holder === undefined ? 'pid unknown' : `pid ${holder}`}); ` +
      'only one agent per node may run');
    this.file = file;
    this.holder = holder;
  }
}

/** The allocation file's exclusive lock, held until `release` or the process's end. */
export interface IpamLock {
  readonly file: string;
  release(): Promise<void>;
}

/**
 * The abstract socket name (a leading NUL: no file anywhere) for a file, from its real path (symlinks
 * resolved: two paths to one file are one lock). Abstract sockets belong to a network namespace: the
 * lock excludes every agent of the node's namespace, where the box and a real node run it.
 */
export function lockName(file: string): string {
  const abs = resolve(file);
  let real = abs;
  try {
    real = join(realpathSync(dirname(abs)), basename(abs));
  } catch {
    /* the directory does not exist yet: nobody else can have it either */
  }
  return `\0kovn-ipam-lock:${createHash('sha256').update(real).digest('hex').slice(0, 32)}`;
}

const listen = (server: Server, path: string): Promise<NodeJS.ErrnoException | undefined> => new Promise((done) => {
  server.once('error', done);
  server.listen({ path, exclusive: true }, () => {
    server.off('error', done);
    done(undefined);
  });
});

/** Asks the holder of a lock for its pid; undefined when nobody answers (it died meanwhile, or hangs). */
const holderOf = (path: string): Promise<number | 'gone' | undefined> => new Promise((done) => {
  let got = '';
  const s = connect({ path });
  s.setTimeout(1000, () => { s.destroy(); done(undefined); });
  s.setEncoding('utf8').on('data', (d: string) => (got += d));
  s.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' ? 'gone' : undefined));
  s.once('end', () => {
    s.destroy();
    const pid = Number(got.trim());
    done(Number.isInteger(pid) && pid > 0 ? pid : undefined);
  });
});

/**
 * Takes the single-writer lock of an allocation file for this process's life, so that two agents of one
 * node never run at once; fails with {@link IpamLockedError} naming the holder. Node has no flock(2): the
 * lock is an abstract-namespace unix socket (Linux) named after the file's absolute path. bind() is atomic
 * and the kernel frees the name the moment the process dies, SIGKILL included, so no lockfile can go
 * stale. Abstract names are scoped per network namespace: a node's agent always runs in its node's
 * namespace, so every contender for one node's file meets there. The holder answers a connection with
 * its pid. The socket does not keep the process alive.
 */
export async function lockAllocations(file: string): Promise<IpamLock> {
  const path = lockName(file);
  for (let attempt = 0; ; attempt++) {
    const server = createServer((c) => c.end(`${process.pid}\n`));
    const err = await listen(server, path);
    if (!err) {
      server.unref();
      return { file, release: () => new Promise<void>((done) => server.close(() => done())) };
    }
    if (err.code !== 'EADDRINUSE') throw new Error(`locking the allocation file ${file}: ${err.message}`);
    const holder = await holderOf(path);
    // The holder died between our bind and our connect: its name is free again.
    if (holder === 'gone' && attempt < 3) continue;
    throw new IpamLockedError(file, holder === 'gone' ? undefined : holder);
  }
}
