/**
 * The agent's CNI server on a real unix socket: file mode, stale sockets, validation, error mapping,
 * concurrency, close.
 */
import assert from 'node:assert/strict';
import { lstat, rename, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CniError } from './errors.ts';
import { startCniServer, toErrorBody } from './server.ts';
import type { CniServer } from './server.ts';
import { TestHandler, tempDir } from './test-support.ts';

/** Sends raw bytes, returns the parsed response line. */
function send(socketPath: string, payload: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const c = createConnection({ path: socketPath });
    let buf = '';
    c.on('connect', () => c.write(payload));
    c.on('data', (d: Buffer) => { buf += d.toString(); });
    c.on('end', () => {
      try {
        assert.ok(buf.endsWith('\n'), 'response is newline-terminated');
        resolve(JSON.parse(buf) as Record<string, unknown>);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
    c.on('error', reject);
  });
}

const config = (socketPath: string) => ({ cniVersion: '1.0.0', name: 'kovn', type: 'kovn', agentSocket: socketPath });
const addReq = (socketPath: string, containerId: string) => ({
  command: 'ADD', containerId, netns: '/var/run/netns/x', ifname: 'eth0', podNamespace: 'default', podName: 'p', podUid: null, config: config(socketPath),
});

describe('startCniServer', () => {
  let dir = '';
  let cleanup: () => Promise<void> = () => Promise.resolve();
  before(async () => { ({ dir, cleanup } = await tempDir()); });
  after(() => cleanup());

  it('creates the parent dir and a socket file with mode 0600, removed on close', async () => {
    const socketPath = join(dir, 'a', 'b', 'cni.sock');
    const server = await startCniServer({ socketPath, handler: new TestHandler() });
    const st = await lstat(socketPath);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
    await server.close();
    await assert.rejects(lstat(socketPath), { code: 'ENOENT' });
  });

  it('replaces a stale socket file, refuses a live one and a non-socket', async () => {
    const socketPath = join(dir, 'stale.sock');
    // A socket file whose server is gone: bind, then drop the handle without unlinking.
    const old = createServer();
    await new Promise<void>((r) => old.listen(socketPath, r));
    const ghost = join(dir, 'ghost.sock');
    await rename(socketPath, ghost); // libuv unlinks the bound name on close; keep the file under another
    await new Promise<void>((r) => old.close(() => r()));
    await rename(ghost, socketPath);
    assert.ok((await lstat(socketPath)).isSocket());

    const server = await startCniServer({ socketPath, handler: new TestHandler() });
    const res = await send(socketPath, `${JSON.stringify(addReq(socketPath, 'c1'))}\n`);
    assert.equal(res.ok, true);
    await assert.rejects(startCniServer({ socketPath, handler: new TestHandler() }), /another process is serving/);
    await server.close();

    const plain = join(dir, 'plain');
    await writeFile(plain, 'x');
    await assert.rejects(startCniServer({ socketPath: plain, handler: new TestHandler() }), /not a socket/);
  });

  describe('requests', () => {
    let socketPath = '';
    const handler = new TestHandler();
    const lines: string[] = [];
    let server: CniServer | undefined;
    before(async () => {
      socketPath = join(dir, 'req.sock');
      server = await startCniServer({ socketPath, handler, log: (l) => lines.push(l) });
    });
    after(() => server?.close());

    it('answers ADD with the validated result (defaults filled)', async () => {
      const res = await send(socketPath, `${JSON.stringify(addReq(socketPath, 'c-ok'))}\n`);
      assert.equal(res.ok, true);
      const result = res.result as { interfaces: unknown[]; ips: unknown[] };
      assert.equal(result.interfaces.length, 1);
      assert.equal(result.ips.length, 2);
    });

    it('accepts a request ended by half-close instead of a newline', async () => {
      const res = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const c = createConnection({ path: socketPath });
        let buf = '';
        c.on('connect', () => c.end(JSON.stringify(addReq(socketPath, 'c-halfclose'))));
        c.on('data', (d: Buffer) => { buf += d.toString(); });
        c.on('end', () => resolve(JSON.parse(buf) as Record<string, unknown>));
        c.on('error', reject);
      });
      assert.equal(res.ok, true);
    });

    it('a non-JSON request gets code 6', async () => {
      const res = await send(socketPath, 'hello\n');
      assert.deepEqual((res.error as { code: number }).code, 6);
    });

    it('an invalid request gets code 7 naming the field', async () => {
      const bad = { ...addReq(socketPath, 'c1'), ifname: '' };
      const res = await send(socketPath, `${JSON.stringify(bad)}\n`);
      assert.equal(res.ok, false);
      const error = res.error as { code: number; details: string };
      assert.equal(error.code, 7);
      assert.match(error.details, /^ifname:/);
      const badConf = { ...addReq(socketPath, 'c1'), config: { ...config(socketPath), mtu: 'big' } };
      const res2 = await send(socketPath, `${JSON.stringify(badConf)}\n`);
      assert.match((res2.error as { details: string }).details, /config\.mtu/);
      const gc = { ...addReq(socketPath, 'c1'), command: 'GC', containerId: null, netns: null, ifname: null };
      const res3 = await send(socketPath, `${JSON.stringify(gc)}\n`);
      assert.match((res3.error as { details: string }).details, /config\.cni\.dev\/valid-attachments: required for GC/);
      const noCmd = await send(socketPath, `${JSON.stringify({ ...addReq(socketPath, 'c1'), command: 'VERSION' })}\n`);
      assert.match((noCmd.error as { details: string }).details, /command/);
    });

    it('maps handler failures: CniError keeps its code, retryable -> 11, other -> 5, and logs them', async () => {
      const codes = await Promise.all(['unknown-1', 'busy-1', 'boom-1'].map(async (id) =>
        ((await send(socketPath, `${JSON.stringify(addReq(socketPath, id))}\n`)).error as { code: number }).code));
      assert.deepEqual(codes, [3, 11, 5]);
      assert.equal(lines.filter((l) => /^CNI ADD .*(unknown|busy|boom)-1 failed in \d+ ms/.test(l)).length, 3);
    });

    it('an invalid ADD result from the handler is code 5, not a malformed answer', async () => {
      const h = new TestHandler();
      h.add = () => Promise.resolve({ ips: [{ address: '10.0.0.1' }] });
      const p = join(dir, 'badresult.sock');
      const s = await startCniServer({ socketPath: p, handler: h });
      try {
        const res = await send(p, `${JSON.stringify(addReq(p, 'c1'))}\n`);
        assert.equal((res.error as { code: number }).code, 5);
        assert.match((res.error as { msg: string }).msg, /ips\[0\]\.address/);
      } finally {
        await s.close();
      }
    });

    it('serves 200 concurrent connections', async () => {
      const ids = Array.from({ length: 200 }, (_, i) => `c-par-${i}`);
      const results = await Promise.all(ids.map((id) => send(socketPath, `${JSON.stringify(addReq(socketPath, id))}\n`)));
      assert.ok(results.every((r) => r.ok === true));
      assert.ok(ids.every((id) => handler.attachments.has(`${id}/eth0`)));
    });
  });

  it('close() drops idle clients and waits for requests in flight', async () => {
    const socketPath = join(dir, 'close.sock');
    const handler = new TestHandler();
    let release: () => void = () => undefined;
    handler.del = () => new Promise<void>((r) => { release = r; });
    const server = await startCniServer({ socketPath, handler });
    const idle = createConnection({ path: socketPath });
    await new Promise((r) => idle.once('connect', r));
    const inFlight = send(socketPath, `${JSON.stringify({ ...addReq(socketPath, 'c1'), command: 'DEL' })}\n`);
    await new Promise((r) => setTimeout(r, 100));
    let closed = false;
    const closing = server.close().then(() => { closed = true; });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(closed, false);
    release();
    assert.equal((await inFlight).ok, true);
    await closing;
    idle.destroy();
  });

  it('close() cuts off a request that outlives the grace period', async () => {
    const socketPath = join(dir, 'grace.sock');
    const handler = new TestHandler();
    const server = await startCniServer({ socketPath, handler, closeGraceMs: 200 });
    const c = createConnection({ path: socketPath });
    c.on('error', () => undefined);
    const ended = new Promise((r) => c.once('close', r));
    c.write(`${JSON.stringify(addReq(socketPath, 'hang-1'))}\n`);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await server.close();
    await ended;
    assert.ok(Date.now() - t0 < 2000);
  });
});

describe('toErrorBody', () => {
  it('classifies thrown values', () => {
    assert.deepEqual(toErrorBody(new CniError(3, 'gone', 'c1')), { code: 3, msg: 'gone', details: 'c1' });
    assert.deepEqual(toErrorBody(Object.assign(new Error('later'), { retryable: true })), { code: 11, msg: 'later', details: 'Error' });
    assert.deepEqual(toErrorBody(Object.assign(new Error('no'), { retryable: false })), { code: 5, msg: 'no', details: 'Error' });
    assert.deepEqual(toErrorBody('weird'), { code: 5, msg: 'weird', details: 'Error' });
    // A CniError from another copy of the module is recognised by name.
    assert.equal(toErrorBody({ name: 'CniError', code: 51, msg: 'degraded', details: '', toBody: () => ({ code: 51, msg: 'degraded' }) }).code, 51);
  });
});
