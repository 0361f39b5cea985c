// The allocation file's single-writer lock, with real processes: two agents of one node never run at once.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, test } from 'node:test';
import { IpamLockedError, lockAllocations, lockName } from './ipam.ts';

const dir = mkdtempSync(join(tmpdir(), 'kovn-ipam-lock-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const ipamTs = new URL('./ipam.ts', import.meta.url).pathname;

/** A process that takes the lock of `file`: prints "locked" and holds it, or prints the error and exits 1. */
function contender(file: string): { child: ChildProcess; output: Promise<string>; exit: Promise<number | null> } {
  const script = `import { lockAllocations } from ${JSON.stringify(ipamTs)};
await lockAllocations(process.argv[1]).then(() => { console.log('locked'); setInterval(() => {}, 60_000); },
  (err) => { console.error(err.message); process.exit(1); });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const output = new Promise<string>((r) => {
    const check = (): void => { if (/locked/.test(out)) r(out); };
    child.stdout?.on('data', check);
    child.stderr?.on('data', check);
    void exit.then(() => r(out));
  });
  return { child, output, exit };
}

test('a second process cannot take the lock: it fails naming the file and the holder pid; the holder is unaffected', async () => {
  const file = join(dir, 'a.json');
  const first = contender(file);
  try {
    assert.match(await first.output, /^locked/);
    const second = contender(file);
    assert.equal(await second.exit, 1);
    const msg = await second.output;
    assert.ok(msg.includes(`the allocation file ${file} is locked by another node agent (pid ${first.child.pid})`), msg);
    assert.equal(first.child.exitCode, null, 'the holder still runs');
  } finally {
    first.child.kill('SIGKILL');
    await first.exit;
  }
});

test('a SIGKILLed holder frees the lock at once: the next process takes it without waiting', async () => {
  const file = join(dir, 'b.json');
  const first = contender(file);
  assert.match(await first.output, /^locked/);
  first.child.kill('SIGKILL');
  await first.exit;
  const t0 = performance.now();
  const next = contender(file);
  try {
    assert.match(await next.output, /^locked/);
    assert.ok(performance.now() - t0 < 5000);
  } finally {
    next.child.kill('SIGKILL');
    await next.exit;
  }
});

test('in one process: the lock is per file (by absolute path), refused while held, free again after release', async () => {
  const a = join(dir, 'c.json');
  assert.equal(lockName(a), lockName(relative(process.cwd(), a)));
  assert.notEqual(lockName(a), lockName(join(dir, 'd.json')));
  const lock = await lockAllocations(a);
  const other = await lockAllocations(join(dir, 'd.json'));
  await assert.rejects(lockAllocations(a), (err: unknown) =>
    err instanceof IpamLockedError && err.file === a && err.holder === process.pid);
  await lock.release();
  const again = await lockAllocations(a);
  await Promise.all([again.release(), other.release()]);
});
