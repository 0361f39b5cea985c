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
import { toErrorBody } from './answer.ts';
import { startCniServer } from './server.ts';
import type { CniServer } from './server.ts';
import { TestHandler, tempDir } from './test-support.ts';

interface Answer { exitCode: number; stdout: string; out: Record<string, unknown> }

/** Sends raw bytes, returns the parsed answer line with its stdout parsed too. */
function send(socketPath: string, payload: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const c = createConnection({ path: socketPath });
    let buf = '';
    c.on('connect', () => c.write(payload));
    c.on('data', (d: Buffer) => { buf += d.toString(); });
    c.on('end', () => {
      try {
        assert.ok(buf.endsWith('\n'), 'response is newline-terminated');
        resolve(parseAnswer(buf));
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
    c.on('error', reject);
  });
}

function parseAnswer(line: string): Answer {
  const a = JSON.parse(line) as { exitCode: number; stdout: string };
  return { ...a, out: (a.stdout ? JSON.parse(a.stdout) : {}) as Record<string, unknown> };
}

const config = (socketPath: string) => ({ cniVersion: '1.0.0', name: 'kovn', type: 'kovn', agentSocket: socketPath });
/** A plugin call as the plugin forwards it: its CNI_* environment and its stdin. */
const call = (socketPath: string, command: string, containerId: string, env: Record<string, string> = {}, conf: Record<string, unknown> = {}) => ({
  env: { CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_NETNS: '/var/run/netns/x', CNI_IFNAME: 'eth0', CNI_ARGS: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=p', ...env },
  stdin: JSON.stringify({ ...config(socketPath), ...conf }),
});
const addReq = (socketPath: string, containerId: string) => call(socketPath, 'ADD', containerId);

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
    assert.equal(res.exitCode, 0);
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
      assert.equal(res.exitCode, 0);
      const result = res.out as { cniVersion: string; interfaces: unknown[]; ips: unknown[] };
      assert.equal(result.cniVersion, '1.0.0');
      assert.equal(result.interfaces.length, 1);
      assert.equal(result.ips.length, 2);
    });

    it('accepts a request ended by half-close instead of a newline', async () => {
      const res = await new Promise<Answer>((resolve, reject) => {
        const c = createConnection({ path: socketPath });
        let buf = '';
        c.on('connect', () => c.end(JSON.stringify(addReq(socketPath, 'c-halfclose'))));
        c.on('data', (d: Buffer) => { buf += d.toString(); });
        c.on('end', () => resolve(parseAnswer(buf)));
        c.on('error', reject);
      });
      assert.equal(res.exitCode, 0);
    });

    it('a non-JSON request, or JSON that is not a plugin call, gets code 6', async () => {
      const res = await send(socketPath, 'hello\n');
      assert.equal(res.exitCode, 1);
      assert.equal(res.out.code, 6);
      const res2 = await send(socketPath, `${JSON.stringify({ command: 'ADD' })}\n`);
      assert.equal(res2.out.code, 6);
      assert.match(String(res2.out.details), /env/);
    });

    it('a bad environment gets code 4 naming the variable; a bad config code 7 naming the field', async () => {
      const res = await send(socketPath, `${JSON.stringify(call(socketPath, 'ADD', 'c1', { CNI_IFNAME: '' }))}\n`);
      assert.equal(res.exitCode, 1);
      assert.equal(res.out.code, 4);
      assert.match(String(res.out.msg), /\[CNI_IFNAME\]/);
      const res2 = await send(socketPath, `${JSON.stringify(call(socketPath, 'ADD', 'c1', {}, { mtu: 'big' }))}\n`);
      assert.equal(res2.out.code, 7);
      assert.match(String(res2.out.details), /^mtu:/);
      const gc = call(socketPath, 'GC', '', {}, { cniVersion: '1.1.0' });
      const res3 = await send(socketPath, `${JSON.stringify(gc)}\n`);
      assert.match(String(res3.out.details), /cni\.dev\/valid-attachments: required for GC/);
      const res4 = await send(socketPath, `${JSON.stringify(call(socketPath, 'ADD', 'c1', {}, { cniVersion: '9.9.9' }))}\n`);
      assert.equal(res4.out.code, 1, 'an unsupported version is code 1');
    });

    it('maps handler failures: CniError keeps its code, retryable -> 11, other -> 5, and logs them', async () => {
      const codes = await Promise.all(['unknown-1', 'busy-1', 'boom-1'].map(async (id) =>
        (await send(socketPath, `${JSON.stringify(addReq(socketPath, id))}\n`)).out.code));
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
        assert.equal(res.out.code, 5);
        assert.match(String(res.out.msg), /ips\[0\]\.address/);
      } finally {
        await s.close();
      }
    });

    it('serves 200 concurrent connections', async () => {
      const ids = Array.from({ length: 200 }, (_, i) => `c-par-${i}`);
      const results = await Promise.all(ids.map((id) => send(socketPath, `${JSON.stringify(addReq(socketPath, id))}\n`)));
      assert.ok(results.every((r) => r.exitCode === 0));
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
    const inFlight = send(socketPath, `${JSON.stringify(call(socketPath, 'DEL', 'c1'))}\n`);
    await new Promise((r) => setTimeout(r, 100));
    let closed = false;
    const closing = server.close().then(() => { closed = true; });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(closed, false);
    release();
    assert.equal((await inFlight).exitCode, 0);
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
