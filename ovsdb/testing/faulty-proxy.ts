// A real unix-socket relay in front of a real ovsdb-server that can inject raw bytes towards the
// client, silently swallow the server's replies, hold them back for a while (a client whose monitor
// updates lag) or drop the connections, to test the client's handling of a broken or slow peer.
import net from 'node:net';

export class FaultyProxy {
  readonly path: string;
  readonly #upstream: string;
  readonly #server: net.Server;
  readonly #clients = new Set<net.Socket>();
  readonly #muted = new WeakSet<net.Socket>();
  readonly #held = new Map<net.Socket, Buffer[]>();
  #holding = false;
  /** Client connections accepted so far. */
  accepted = 0;

  constructor(listenPath: string, upstreamPath: string) {
    this.path = listenPath;
    this.#upstream = upstreamPath;
    this.#server = net.createServer((c) => this.#relay(c));
  }

  get endpoint(): string {
    return `unix:${this.path}`;
  }

  start(): Promise<void> {
    return new Promise((resolve) => this.#server.listen(this.path, resolve));
  }

  /** Writes raw bytes to every connected client, as if the server sent them. */
  inject(bytes: string): void {
    for (const c of this.#clients) c.write(bytes);
  }

  /** From now on, server->client bytes of the current connections are dropped (a hung server). */
  muteCurrent(): void {
    for (const c of this.#clients) this.#muted.add(c);
  }

  /** From now on, server->client bytes are held back, in order, until release(). */
  hold(): void {
    this.#holding = true;
  }

  /** Delivers what was held back, then relays as before. */
  release(): void {
    this.#holding = false;
    for (const [c, chunks] of this.#held) for (const d of chunks) c.write(d);
    this.#held.clear();
  }

  /** Cuts every current connection (what was held back is lost), as a network failure would; new ones relay freely. */
  dropCurrent(): void {
    this.#holding = false;
    this.#held.clear();
    for (const c of this.#clients) c.destroy();
  }

  close(): Promise<void> {
    for (const c of this.#clients) c.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #relay(client: net.Socket): void {
    this.accepted++;
    this.#clients.add(client);
    const up = net.connect({ path: this.#upstream });
    client.on('data', (d) => up.write(d));
    up.on('data', (d: Buffer) => {
      if (this.#muted.has(client)) return;
      if (this.#holding) this.#held.set(client, [...(this.#held.get(client) ?? []), d]);
      else client.write(d);
    });
    const end = (): void => {
      this.#clients.delete(client);
      client.destroy();
      up.destroy();
    };
    client.on('close', end).on('error', end);
    up.on('close', end).on('error', end);
  }
}
