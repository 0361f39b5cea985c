// JSON-RPC 1.0 over one stream socket: many requests in flight, replies matched by id, the server's
// echo answered, writes of one event-loop turn coalesced into one socket write, idle probing.
import type { Socket } from 'node:net';
import { OvsdbDisconnectedError, OvsdbProtocolError, OvsdbRpcError } from './errors.ts';
import { JsonStreamParser } from './json-stream.ts';

export interface RpcHandlers {
  /** A server notification (update*, locked, stolen, ...). */
  readonly onNotification: (method: string, params: unknown[]) => void;
  /** The connection ended; `error` says why when it was not a local close. */
  readonly onClose: (error: Error | undefined) => void;
  /** Something odd that did not break the connection (e.g. a reply for an unknown id). */
  readonly onWarning?: (error: Error) => void;
}

export interface RpcOptions {
  /** Send an echo after this long without traffic; drop the connection if still silent as long again. 0 disables. */
  readonly inactivityProbeMs?: number;
}

/** Queued bytes that trigger an immediate write. */
const FLUSH_BYTES = 16 * 1024;

interface Pending {
  readonly method: string;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: Error) => void;
  readonly transform?: ((result: unknown) => unknown) | undefined;
}

/** One JSON-RPC session over a connected socket. */
export class RpcConnection {
  readonly #socket: Socket;
  readonly #handlers: RpcHandlers;
  readonly #parser = new JsonStreamParser();
  readonly #pending = new Map<number | string, Pending>();
  #nextId = 1;
  #out: string[] = [];
  #outBytes = 0;
  #flushScheduled = false;
  #closed = false;
  #closeError: Error | undefined;
  #lastRx = Date.now();
  #probing = false;
  #probeTimer: NodeJS.Timeout | undefined;
  readonly #probeMs: number;
  /** Replies whose id matched no request. */
  unknownReplies = 0;

  constructor(socket: Socket, handlers: RpcHandlers, opts: RpcOptions = {}) {
    this.#socket = socket;
    this.#handlers = handlers;
    this.#probeMs = opts.inactivityProbeMs ?? 0;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => this.#shutdown(new OvsdbDisconnectedError(`connection error: ${err.message}`, true, { cause: err })));
    socket.on('close', () => this.#shutdown(new OvsdbDisconnectedError('connection closed by peer', true)));
    if (this.#probeMs > 0) this.#armProbe(this.#probeMs);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Number of requests awaiting a reply. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /**
   * Sends a request and resolves with its result; an error reply rejects with OvsdbRpcError, a lost
   * connection with OvsdbDisconnectedError. Aborting `signal` sends RFC 7047 `cancel` for it.
   */
  request(method: string, params: unknown[], signal?: AbortSignal): Promise<unknown> {
    if (this.#closed) return Promise.reject(this.#closeError ?? new OvsdbDisconnectedError('not connected', false));
    if (signal?.aborted) return Promise.reject(new OvsdbRpcError(method, { error: 'canceled', details: 'aborted before sending' }));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { method, resolve, reject });
      this.#write(`{"id":${id},"method":${JSON.stringify(method)},"params":${JSON.stringify(params)}}`);
      // ovsdb-server drops a canceled request without replying (unless db_change_aware), so settle it here.
      signal?.addEventListener('abort', () => {
        if (!this.#pending.delete(id)) return;
        this.notify('cancel', [id]);
        reject(new OvsdbRpcError(method, { error: 'canceled', details: 'canceled by the client' }));
      }, { once: true });
    });
  }

  /**
   * Like request() with params already serialised as a JSON array, and the result passed through
   * `transform` as it arrives (the transact hot path: one promise per request, no extra hops).
   */
  requestRaw<T = unknown>(method: string, paramsJson: string, transform?: (result: unknown) => T): Promise<T> {
    if (this.#closed) return Promise.reject(this.#closeError ?? new OvsdbDisconnectedError('not connected', false));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { method, resolve: resolve as (v: unknown) => void, reject, transform });
      this.#write(`{"id":${id},"method":"${method}","params":${paramsJson}}`);
    });
  }

  /** Sends a notification (id null), e.g. cancel. */
  notify(method: string, params: unknown[]): void {
    if (!this.#closed) this.#write(JSON.stringify({ id: null, method, params }));
  }

  /** Closes the socket; pending requests fail with `error` (or a disconnected error). */
  close(error?: Error): void {
    this.#shutdown(error ?? new OvsdbDisconnectedError('connection closed', true), true);
  }

  #write(s: string): void {
    this.#out.push(s);
    this.#outBytes += s.length;
    // A long burst starts flowing early so the server works while we are still encoding.
    if (this.#outBytes >= FLUSH_BYTES) {
      this.#flush();
      return;
    }
    if (!this.#flushScheduled) {
      // Everything written before the microtask queue drains goes out in one socket write.
      this.#flushScheduled = true;
      queueMicrotask(this.#flushBound);
    }
  }

  readonly #flushBound = (): void => this.#flush();

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#closed || this.#out.length === 0) return;
    const data = this.#out.length === 1 ? this.#out[0]! : this.#out.join('');
    this.#out = [];
    this.#outBytes = 0;
    this.#socket.write(data);
  }

  #onData(chunk: Buffer): void {
    this.#lastRx = Date.now();
    this.#probing = false;
    let values: unknown[];
    try {
      values = this.#parser.push(chunk);
    } catch (err) {
      this.#shutdown(new OvsdbProtocolError(`bad bytes from server: ${(err as Error).message}`, { cause: err }));
      return;
    }
    for (const v of values) {
      if (this.#closed) return;
      this.#dispatch(v);
    }
  }

  #dispatch(msg: unknown): void {
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
      this.#warn(new OvsdbProtocolError(`unexpected JSON-RPC message ${JSON.stringify(msg)}`));
      return;
    }
    const m = msg as { id?: unknown; method?: unknown; params?: unknown; result?: unknown; error?: unknown };
    if (typeof m.method === 'string') {
      const params = Array.isArray(m.params) ? m.params : [];
      if (m.id === null || m.id === undefined) this.#handlers.onNotification(m.method, params);
      else if (m.method === 'echo') this.#write(JSON.stringify({ id: m.id, result: params, error: null }));
      else this.#write(JSON.stringify({ id: m.id, result: null, error: { error: 'unknown method', details: m.method } }));
      return;
    }
    const key = typeof m.id === 'number' || typeof m.id === 'string' ? m.id : undefined;
    const p = key === undefined ? undefined : this.#pending.get(key);
    if (!p) {
      this.unknownReplies++;
      this.#warn(new OvsdbProtocolError(`reply for unknown id ${JSON.stringify(m.id)}`));
      return;
    }
    this.#pending.delete(key!);
    if (m.error !== null && m.error !== undefined) p.reject(new OvsdbRpcError(p.method, m.error));
    else if (!p.transform) p.resolve(m.result);
    else {
      try {
        p.resolve(p.transform(m.result));
      } catch (err) {
        p.reject(err as Error);
      }
    }
  }

  #warn(err: Error): void {
    this.#handlers.onWarning?.(err);
  }

  #armProbe(delay: number): void {
    this.#probeTimer = setTimeout(() => this.#probe(), delay);
    this.#probeTimer.unref();
  }

  #probe(): void {
    if (this.#closed) return;
    const idle = Date.now() - this.#lastRx;
    if (idle < this.#probeMs) {
      this.#armProbe(this.#probeMs - idle);
      return;
    }
    if (this.#probing) {
      this.#shutdown(new OvsdbDisconnectedError(`no reply to the inactivity probe within ${this.#probeMs} ms`, true));
      return;
    }
    this.#probing = true;
    // The reply itself resets the idle clock; its result is irrelevant.
    this.request('echo', ['kovn-probe']).catch(() => undefined);
    this.#armProbe(this.#probeMs);
  }

  #shutdown(error: Error, local = false): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeError = error;
    clearTimeout(this.#probeTimer);
    this.#out = [];
    this.#socket.destroy();
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(error);
    this.#handlers.onClose(local ? undefined : error);
  }
}
