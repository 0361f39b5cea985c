// OvsdbClient: one logical connection to one database over a list of endpoints, kept alive with
// reconnects, leader checks for clustered databases, monitor resumption, probes and locks.
import { Subject } from 'rxjs';
import type { Observable } from 'rxjs';
import { Cache } from './cache.ts';
import type { RowEvent } from './cache.ts';
import { decodeResults, encodeOperationJson } from './encode.ts';
import {
  OvsdbClosedError, OvsdbDisconnectedError, OvsdbRpcError, OvsdbSchemaError,
} from './errors.ts';
import { modelProblems, modelSchema } from './model.ts';
import type { DatabaseModel, TableMap } from './model.ts';
import { applyUpdates, applyUpdates2, completeTables, dropUnseen, monitorRequests, monitoredColumns } from './monitor.ts';
import type { ApplyStats, ApplyTarget, MissingRow, MonitorMethod, MonitorSpec } from './monitor.ts';
import type { Operation, OperationResult } from './ops.ts';
import { RpcConnection } from './rpc.ts';
import { parseSchema } from './schema.ts';
import type { DatabaseSchema } from './schema.ts';
import { openSocket, parseEndpoint } from './transport.ts';
import type { Endpoint, TlsOptions } from './transport.ts';

/** Options of OvsdbClient.connect. */
export interface ConnectOptions<M extends TableMap> {
  /** `unix:PATH`, `tcp:HOST:PORT`, `ssl:HOST:PORT`; several for a clustered database. */
  readonly endpoints: readonly string[];
  /** Database name, e.g. 'OVN_Northbound'. */
  readonly database: string;
  /** Generated model: typed rows, and a schema check at every connect. */
  readonly model?: DatabaseModel<M>;
  /** Only use a member that is the cluster leader (default true; no effect on standalone databases). */
  readonly leaderOnly?: boolean;
  readonly tls?: TlsOptions;
  /** Echo after this much silence, drop the connection if still silent as long again (default 5000; 0 off). */
  readonly inactivityProbeMs?: number;
  /** Reconnect backoff (default 100 ms doubling to 5 s); `false` closes the client on the first loss. */
  readonly reconnect?: { readonly initialDelayMs?: number; readonly maxDelayMs?: number } | false;
  /** Per-attempt socket connect timeout (default 5000). */
  readonly connectTimeoutMs?: number;
  /** How long connect() keeps trying before it rejects (default 30000). */
  readonly initialConnectTimeoutMs?: number;
  /** How long transact/monitor wait for a connection before failing with a retryable error (default 10000). */
  readonly disconnectedWaitMs?: number;
  /** Force a monitor method (default: the newest the server supports). */
  readonly monitorMethod?: MonitorMethod;
}

/** A connection state change. */
export interface ConnectionEvent {
  readonly state: 'connected' | 'disconnected';
  readonly endpoint: string;
  readonly error?: Error;
}

/** A lock state change (RFC 7047 4.1.8-4.1.10); 'lost' means the connection holding it dropped. */
export interface LockEvent {
  readonly lock: string;
  readonly state: 'locked' | 'stolen' | 'lost';
}

/** What the last (re)synchronisation of a monitor received. */
export interface MonitorSync {
  readonly method: MonitorMethod;
  /** monitor_cond_since only: whether the server still had our last transaction id. */
  readonly found: boolean | undefined;
  /** Rows carried by the monitor reply. */
  readonly rows: number;
}

/** A running monitor. */
export interface MonitorHandle {
  readonly id: string;
  /** The last sync (first monitor reply, the reply after a reconnect, or after a resync). */
  readonly lastSync: MonitorSync;
  /** Full resyncs done because an update named a row the cache did not have (the cache was out of sync). */
  readonly resyncs: number;
  /** Sends monitor_cancel; cached rows stay. */
  cancel(): Promise<void>;
}

interface MonitorState {
  readonly id: string;
  readonly spec: MonitorSpec<TableMap>;
  method: MonitorMethod;
  lastTxnId: string | undefined;
  lastSync: MonitorSync;
  readonly target: ApplyTarget;
  /** Between sending a resync and applying its snapshot: updates of the old monitor are dropped. */
  resyncing: boolean;
  resyncs: number;
}

interface Waiter {
  readonly resolve: (rpc: RpcConnection) => void;
  readonly reject: (e: Error) => void;
}

const ZERO_UUID = '00000000-0000-0000-0000-000000000000';
const SERVER_MONITOR = 'kovn-server-db';

/** Client of one OVSDB database. Create with `OvsdbClient.connect`. */
export class OvsdbClient<M extends TableMap = TableMap> {
  /** Replica of the monitored tables. */
  readonly cache = new Cache<M>();
  readonly #opts: ConnectOptions<M>;
  readonly #endpoints: Endpoint[];
  readonly #model: DatabaseSchema | undefined;
  #schema: DatabaseSchema | undefined;
  #rpc: RpcConnection | undefined;
  #endpoint = '';
  #nextEndpoint = 0;
  #closed = false;
  #reconnecting = false;
  #waiters = new Set<Waiter>();
  readonly #monitors = new Map<string, MonitorState>();
  #monitorSeq = 0;
  readonly #locks = new Set<string>();
  readonly #connection = new Subject<ConnectionEvent>();
  readonly #lockEvents = new Subject<LockEvent>();
  readonly #warnings = new Subject<Error>();
  #fatal: Error | undefined;
  #wakeUp: (() => void) | undefined;
  /** Successful connections so far (1 after connect()). */
  connects = 0;

  private constructor(opts: ConnectOptions<M>) {
    this.#opts = opts;
    if (opts.endpoints.length === 0) throw new Error('OvsdbClient: no endpoints');
    this.#endpoints = opts.endpoints.map(parseEndpoint);
    this.#model = opts.model ? modelSchema(opts.model) : undefined;
  }

  /**
   * Connects to the first usable endpoint (the leader, with leaderOnly) and checks the server's schema
   * against the model. Rejects with OvsdbSchemaError on a mismatch, or after initialConnectTimeoutMs.
   */
  static async connect<M extends TableMap = TableMap>(opts: ConnectOptions<M>): Promise<OvsdbClient<M>> {
    const client = new OvsdbClient<M>(opts);
    client.#startReconnect(0);
    try {
      await client.#whenConnected(opts.initialConnectTimeoutMs ?? 30_000);
    } catch (err) {
      client.close();
      throw client.#fatal ?? err;
    }
    return client;
  }

  /** Every row change applied to the cache. */
  get events$(): Observable<RowEvent> {
    return this.cache.events$;
  }

  /** Connected/disconnected transitions. */
  get connection$(): Observable<ConnectionEvent> {
    return this.#connection.asObservable();
  }

  /** locked/stolen/lost notifications. */
  get locks$(): Observable<LockEvent> {
    return this.#lockEvents.asObservable();
  }

  /** Non-fatal protocol oddities (e.g. a reply for an unknown id). */
  get warnings$(): Observable<Error> {
    return this.#warnings.asObservable();
  }

  /** True while a usable connection exists. */
  get connected(): boolean {
    return this.#rpc !== undefined && !this.#rpc.closed && !this.#reconnecting;
  }

  /** The endpoint in use (last connected). */
  get endpoint(): string {
    return this.#endpoint;
  }

  /** The schema rows are typed by: the model's, else the server's. */
  get schema(): DatabaseSchema {
    if (!this.#schema) throw new OvsdbDisconnectedError('no schema yet', false);
    return this.#model ?? this.#schema;
  }

  /** The server's own schema (as of the last connect). */
  get serverSchema(): DatabaseSchema | undefined {
    return this.#schema;
  }

  /**
   * Runs the operations as one transaction. Resolves with one decoded result per operation; the first
   * failed operation (or a commit error) rejects with a typed error naming it (see isRetryableOvsdbError).
   * While disconnected it waits up to disconnectedWaitMs, then rejects with a retryable error.
   */
  transact(ops: readonly Operation[], opts: { readonly signal?: AbortSignal } = {}): Promise<OperationResult[]> {
    let schema: DatabaseSchema;
    let params: string;
    try {
      schema = this.schema;
      params = `[${JSON.stringify(this.#opts.database)}`;
      for (const op of ops) params += `,${encodeOperationJson(schema, op)}`;
      params += ']';
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    const decode = (reply: unknown): OperationResult[] => decodeResults(schema, ops, reply);
    // Hot path: connected, no abort signal; one promise settled straight from the reply.
    if (this.connected && !opts.signal) return this.#rpc!.requestRaw('transact', params, decode);
    return this.#transactSlow(params, decode, opts.signal);
  }

  async #transactSlow(params: string, decode: (reply: unknown) => OperationResult[], signal?: AbortSignal): Promise<OperationResult[]> {
    const rpc = this.connected ? this.#rpc! : await this.#whenConnected(this.#opts.disconnectedWaitMs ?? 10_000);
    if (!signal) return rpc.requestRaw('transact', params, decode);
    return decode(await rpc.request('transact', JSON.parse(params) as unknown[], signal));
  }

  /**
   * Monitors tables into the cache and keeps them current across reconnects. Resolves once the
   * initial rows are cached. A table may be in only one monitor at a time.
   */
  async monitor(spec: MonitorSpec<M>, opts: { readonly method?: MonitorMethod } = {}): Promise<MonitorHandle> {
    const schema = this.schema;
    for (const t of Object.keys(spec)) {
      for (const m of this.#monitors.values()) if (t in m.spec) throw new Error(`table ${t} is already monitored by ${m.id}`);
      if (!schema.tables.has(t)) throw new OvsdbSchemaError(`cannot monitor`, [`table ${t} is not in ${schema.name}`]);
    }
    const method = opts.method ?? this.#opts.monitorMethod ?? 'monitor_cond_since';
    const tables = spec as MonitorSpec<TableMap>;
    const target: ApplyTarget = { cache: this.cache, schema, columns: monitoredColumns(schema, tables), complete: completeTables(tables) };
    const state: MonitorState = {
      id: `kovn-${++this.#monitorSeq}`, spec: tables, method, lastTxnId: undefined,
      lastSync: { method, found: undefined, rows: 0 }, target, resyncing: false, resyncs: 0,
    };
    // Validate conditions/columns before registering.
    monitorRequests(schema, state.spec, method === 'monitor' ? 'monitor' : 'monitor_cond');
    this.#configureCache(state);
    this.#monitors.set(state.id, state);
    const rpc = this.connected ? this.#rpc! : await this.#whenConnected(this.#opts.disconnectedWaitMs ?? 10_000);
    try {
      await this.#syncMonitor(rpc, state);
    } catch (err) {
      // A reconnect re-sends every registered monitor before it reports "connected".
      if (!(err instanceof OvsdbDisconnectedError)) {
        this.#monitors.delete(state.id);
        throw err;
      }
      await this.#whenConnected(this.#opts.disconnectedWaitMs ?? 10_000);
    }
    return this.#handle(state);
  }

  /** The running monitors. */
  get monitors(): MonitorHandle[] {
    return [...this.#monitors.values()].map((m) => this.#handle(m));
  }

  #handle(state: MonitorState): MonitorHandle {
    return {
      id: state.id,
      get lastSync() {
        return state.lastSync;
      },
      get resyncs() {
        return state.resyncs;
      },
      cancel: async () => {
        this.#monitors.delete(state.id);
        if (this.connected) await this.#rpc!.request('monitor_cancel', [state.id]);
      },
    };
  }

  /** Requests a lock; true if granted now, else a 'locked' event follows when it is. Re-requested after reconnects. */
  async lock(name: string): Promise<boolean> {
    this.#locks.add(name);
    const r = (await this.#call('lock', [name])) as { locked?: boolean };
    return r.locked === true;
  }

  /** Takes a lock from its holder (who gets 'stolen'). */
  async steal(name: string): Promise<void> {
    this.#locks.add(name);
    await this.#call('steal', [name]);
  }

  async unlock(name: string): Promise<void> {
    this.#locks.delete(name);
    await this.#call('unlock', [name]);
  }

  /** Round trip to the server. */
  async echo(...args: unknown[]): Promise<unknown[]> {
    return (await this.#call('echo', args)) as unknown[];
  }

  async listDbs(): Promise<string[]> {
    return (await this.#call('list_dbs', [])) as string[];
  }

  /** The raw schema JSON of a database. */
  async getSchema(database = this.#opts.database): Promise<unknown> {
    return this.#call('get_schema', [database]);
  }

  /** The server's unique id (RFC 7047 extension); distinguishes members of a cluster. */
  async getServerId(): Promise<string> {
    return (await this.#call('get_server_id', [])) as string;
  }

  /** Runs a raw JSON-RPC method (escape hatch for the _Server database and tests). */
  async call(method: string, params: unknown[]): Promise<unknown> {
    return this.#call(method, params);
  }

  /** Closes the connection and stops reconnecting. Pending requests fail with OvsdbClosedError. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#wakeUp?.();
    const err = new OvsdbClosedError();
    for (const w of this.#waiters) w.reject(err);
    this.#waiters.clear();
    this.#rpc?.close(err);
    this.#connection.complete();
    this.#lockEvents.complete();
    this.#warnings.complete();
    this.cache.complete();
  }

  async #call(method: string, params: unknown[]): Promise<unknown> {
    const rpc = this.connected ? this.#rpc! : await this.#whenConnected(this.#opts.disconnectedWaitMs ?? 10_000);
    return rpc.request(method, params);
  }

  #whenConnected(timeoutMs: number): Promise<RpcConnection> {
    if (this.#closed) return Promise.reject(this.#fatal ?? new OvsdbClosedError());
    if (this.connected) return Promise.resolve(this.#rpc!);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(w);
        reject(new OvsdbDisconnectedError(`not connected to ${this.#opts.database} within ${timeoutMs} ms`, false));
      }, timeoutMs);
      const w: Waiter = {
        resolve: (rpc) => (clearTimeout(timer), resolve(rpc)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
      this.#waiters.add(w);
    });
  }

  #configureCache(state: MonitorState): void {
    for (const [t, m] of Object.entries(state.spec)) {
      const table = this.schema.tables.get(t)!;
      this.cache.table(t).configure(table, m?.columns, m?.externalIdIndexes ?? [], m?.columnIndexes ?? []);
    }
  }

  /** A backoff pause that close() cuts short, so a closed client never holds the process open. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wakeUp = undefined;
        resolve();
      }, ms);
      this.#wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  #startReconnect(delay: number): void {
    if (this.#closed || this.#reconnecting) return;
    this.#reconnecting = true;
    void this.#reconnectLoop(delay);
  }

  async #reconnectLoop(firstDelay: number): Promise<void> {
    const rc = this.#opts.reconnect === false ? undefined : this.#opts.reconnect;
    const initial = rc?.initialDelayMs ?? 100;
    const max = rc?.maxDelayMs ?? 5000;
    let delay = firstDelay;
    while (!this.#closed) {
      if (delay > 0) await this.#sleep(delay * (0.8 + Math.random() * 0.4));
      // One round tries every endpoint, starting after the one that failed last.
      for (let i = 0; i < this.#endpoints.length && !this.#closed; i++) {
        const ep = this.#endpoints[this.#nextEndpoint % this.#endpoints.length]!;
        this.#nextEndpoint++;
        try {
          const rpc = await this.#establish(ep);
          if (this.#closed) {
            rpc.close();
            return;
          }
          this.#rpc = rpc;
          this.#endpoint = ep.text;
          this.#reconnecting = false;
          this.connects++;
          this.#nextEndpoint--;
          this.#connection.next({ state: 'connected', endpoint: ep.text });
          const waiters = [...this.#waiters];
          this.#waiters.clear();
          for (const w of waiters) w.resolve(rpc);
          return;
        } catch (err) {
          if (err instanceof OvsdbSchemaError) {
            this.#fatal = err;
            this.close();
            return;
          }
          this.#warnings.next(err as Error);
        }
      }
      if (this.#opts.reconnect === false && this.connects > 0) {
        this.close();
        return;
      }
      delay = delay === 0 ? initial : Math.min(delay * 2, max);
    }
  }

  /** Opens, checks schema and leadership, restores monitors and locks. Throws to try the next endpoint. */
  async #establish(ep: Endpoint): Promise<RpcConnection> {
    const socket = await openSocket(ep, this.#opts.connectTimeoutMs ?? 5000, this.#opts.tls);
    let ready = false;
    const rpc: RpcConnection = new RpcConnection(socket, {
      onNotification: (method, params) => this.#onNotification(rpc, method, params),
      onClose: (error) => {
        if (ready) this.#onDisconnect(rpc, ep, error);
      },
      onWarning: (e) => this.#warnings.next(e),
    }, { inactivityProbeMs: this.#opts.inactivityProbeMs ?? 5000 });
    try {
      const server = parseSchema(await rpc.request('get_schema', [this.#opts.database]));
      if (this.#model) {
        const problems = modelProblems(this.#model, server);
        if (problems.length > 0) throw new OvsdbSchemaError(`server ${ep.text} does not match model ${this.#model.name}`, problems);
      }
      this.#schema = server;
      if (this.#opts.leaderOnly !== false) await this.#checkLeader(rpc, ep);
      for (const m of this.#monitors.values()) await this.#syncMonitor(rpc, m);
      for (const l of this.#locks) void rpc.request('lock', [l]).catch(() => undefined);
      if (rpc.closed) throw new OvsdbDisconnectedError(`${ep.text} closed during setup`, false);
      ready = true;
      return rpc;
    } catch (err) {
      rpc.close();
      throw err;
    }
  }

  /** libovsdb's rule: a clustered database is usable only on a connected leader; watch for changes. */
  async #checkLeader(rpc: RpcConnection, ep: Endpoint): Promise<void> {
    let reply: unknown;
    try {
      reply = await rpc.request('monitor_cond', ['_Server', SERVER_MONITOR, {
        Database: [{ columns: ['name', 'model', 'connected', 'leader'], where: [['name', '==', this.#opts.database]] }],
      }]);
    } catch (err) {
      if (err instanceof OvsdbRpcError) return; // no _Server database: an old standalone server
      throw err;
    }
    const rows = Object.values((reply as { Database?: Record<string, { initial?: ServerDbRow }> }).Database ?? {});
    const row = rows[0]?.initial;
    if (!row) throw new OvsdbDisconnectedError(`${ep.text} does not serve ${this.#opts.database}`, false);
    if (row.model === 'clustered' && !(row.connected === true && row.leader === true)) {
      throw new OvsdbDisconnectedError(`${ep.text} is not the cluster leader`, false);
    }
  }

  async #syncMonitor(rpc: RpcConnection, m: MonitorState): Promise<void> {
    const schema = this.schema;
    for (;;) {
      const requests = monitorRequests(schema, m.spec, m.method);
      const since = m.method === 'monitor_cond_since';
      const params = [this.#opts.database, m.id, requests, ...(since ? [m.lastTxnId ?? ZERO_UUID] : [])];
      try {
        // Applied while the reply is dispatched, so that no update following it on the wire is
        // applied before it (an await would let the rest of the socket chunk through first).
        await rpc.requestRaw(m.method, JSON.stringify(params), (reply) => this.#applySnapshot(rpc, m, reply));
        return;
      } catch (err) {
        // Older servers: fall back to the previous monitor method.
        if (err instanceof OvsdbRpcError && /unknown method/i.test(err.code) && m.method !== 'monitor') {
          m.method = m.method === 'monitor_cond_since' ? 'monitor_cond' : 'monitor';
          continue;
        }
        throw err;
      }
    }
  }

  /** A monitor reply: a full snapshot (replaces the cached tables) or, when found, the changes since. */
  #applySnapshot(rpc: RpcConnection, m: MonitorState, reply: unknown): void {
    const stats: ApplyStats = { rows: 0 };
    const seen = new Map<string, Set<string>>(Object.keys(m.spec).map((t) => [t, new Set<string>()]));
    m.resyncing = false;
    let missing: MissingRow[];
    if (m.method === 'monitor_cond_since') {
      const [found, last, updates] = reply as [boolean, string, unknown];
      missing = applyUpdates2(m.target, updates, stats, found ? undefined : seen);
      if (!found) dropUnseen(this.cache, seen);
      m.lastTxnId = last;
      m.lastSync = { method: m.method, found, rows: stats.rows };
    } else {
      missing = (m.method === 'monitor' ? applyUpdates : applyUpdates2)(m.target, reply, stats, seen);
      dropUnseen(this.cache, seen);
      m.lastSync = { method: m.method, found: undefined, rows: stats.rows };
    }
    if (missing.length > 0) this.#outOfSync(rpc, m, missing);
  }

  /**
   * An update named a row the cache lacks: an update was lost, and the cached rows cannot be trusted.
   * Re-requests the full snapshot on the same connection (as a reconnect does), dropping the old
   * monitor's updates until it arrives; if that fails, the connection is replaced and the reconnect
   * does it.
   */
  #outOfSync(rpc: RpcConnection, m: MonitorState, missing: readonly MissingRow[]): void {
    // Whatever sync comes next (this resync or a reconnect's) must be a full one.
    m.lastTxnId = undefined;
    if (m.resyncing) return;
    m.resyncing = true;
    m.resyncs++;
    const what = missing.slice(0, 3).map((r) => `${r.op} of ${r.table} ${r.uuid}`).join(', ');
    this.#warnings.next(new Error(`monitor ${m.id}: cache out of sync (${what}${missing.length > 3 ? ', ...' : ''} not cached); resyncing`));
    const resync = async (): Promise<void> => {
      await rpc.request('monitor_cancel', [m.id]);
      if (this.#monitors.get(m.id) === m) await this.#syncMonitor(rpc, m);
    };
    resync().catch((err: unknown) => {
      m.resyncing = false;
      if (!rpc.closed) rpc.close(new OvsdbDisconnectedError(`resync of monitor ${m.id} failed: ${err instanceof Error ? err.message : String(err)}`, true));
    });
  }

  #onNotification(rpc: RpcConnection, method: string, params: unknown[]): void {
    if (method === 'update2' && params[0] === SERVER_MONITOR) {
      this.#onServerUpdate(rpc, params[1]);
      return;
    }
    const m = typeof params[0] === 'string' ? this.#monitors.get(params[0]) : undefined;
    // A resync's snapshot supersedes whatever the old monitor still sends.
    const live = m && !m.resyncing ? m : undefined;
    const check = (missing: MissingRow[]): void => {
      if (live && missing.length > 0) this.#outOfSync(rpc, live, missing);
    };
    switch (method) {
      case 'update':
        if (live) check(applyUpdates(live.target, params[1]));
        break;
      case 'update2':
        if (live) check(applyUpdates2(live.target, params[1]));
        break;
      case 'update3':
        if (live) {
          const missing = applyUpdates2(live.target, params[2]);
          live.lastTxnId = params[1] as string;
          check(missing);
        }
        break;
      case 'locked':
      case 'stolen':
        this.#lockEvents.next({ lock: String(params[0]), state: method });
        break;
      case 'monitor_canceled':
        // The server dropped our monitor (e.g. schema converted): reconnect to re-create it.
        rpc.close(new OvsdbDisconnectedError('server canceled a monitor', true));
        break;
    }
  }

  #onServerUpdate(rpc: RpcConnection, updates: unknown): void {
    if (this.#opts.leaderOnly === false) return;
    const rows = Object.values((updates as { Database?: Record<string, { modify?: ServerDbRow }> }).Database ?? {});
    for (const r of rows) {
      const mod = r.modify;
      if (mod && (mod.leader === false || mod.connected === false)) {
        rpc.close(new OvsdbDisconnectedError('server is no longer the cluster leader', true));
      }
    }
  }

  #onDisconnect(rpc: RpcConnection, ep: Endpoint, error: Error | undefined): void {
    if (this.#rpc !== rpc) return;
    for (const l of this.#locks) this.#lockEvents.next({ lock: l, state: 'lost' });
    if (this.#closed) return;
    this.#connection.next({ state: 'disconnected', endpoint: ep.text, ...(error ? { error } : {}) });
    if (this.#opts.reconnect === false) {
      this.close();
      return;
    }
    // Go straight to the other members: a leader change should not wait for a backoff.
    this.#nextEndpoint++;
    this.#startReconnect(this.#endpoints.length > 1 ? 0 : (this.#opts.reconnect?.initialDelayMs ?? 100));
  }
}

interface ServerDbRow {
  readonly name?: string;
  readonly model?: string;
  readonly connected?: boolean;
  readonly leader?: boolean;
}


