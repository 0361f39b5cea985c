// The box's supervisor on plain processes (no box): restart after any exit, no restart once stopped or
// drained, one supervisor per name. Its own state dir, so it never meets a running box.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

const state = mkdtempSync(join(tmpdir(), 'kovn-supervise-'));
process.env.KOVN_STATE_DIR = state;
const proc = await import('./proc.ts');
const { alive, drainSupervisors, logFile, readSupervisor, runningPid, startDaemon, stopDaemon, supervisorPid } = proc;
after(() => rmSync(state, { recursive: true, force: true }));

async function until<T>(what: string, f: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const sleeper = (name: string): number => startDaemon({ name, cmd: 'sleep', args: ['1000'] });

test('a SIGKILLed daemon is back within seconds with a new pid, the restart counted and its exit logged', async () => {
  sleeper('a');
  const first = await until('the first pid', () => runningPid('a'));
  process.kill(first, 'SIGKILL');
  const t0 = Date.now();
  const second = await until('a new pid', () => { const p = runningPid('a'); return p !== first && p; });
  assert.ok(Date.now() - t0 < 3000, `restarted after ${Date.now() - t0} ms`);
  assert.equal(readSupervisor('a')?.restarts, 1);
  assert.match(readSupervisor('a')?.lastExit ?? '', /signal SIGKILL/);
  assert.match(readFileSync(logFile('a'), 'utf8'), /supervisor of a: exited \(signal SIGKILL.*restart #1 in 1s/);
  assert.equal(await stopDaemon('a'), true);
  assert.equal(alive(second), false);
});

test('stopped, it stays stopped: the supervisor and the daemon are gone, the pidfile too, and nothing comes back', async () => {
  const sup = sleeper('b');
  const pid = await until('the pid', () => runningPid('b'));
  assert.equal(await stopDaemon('b'), true);
  assert.equal(alive(sup), false);
  assert.equal(alive(pid), false);
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(runningPid('b'), undefined);
  assert.equal(readSupervisor('b')?.state, 'stopped');
  assert.equal(await stopDaemon('b'), false, 'nothing left to stop');
});

test('one supervisor per name: startDaemon refuses a second, and a second started by hand exits at once', async () => {
  sleeper('c');
  const pid = await until('the pid', () => runningPid('c'));
  assert.throws(() => sleeper('c'), /c already runs under its supervisor/);
  const second = spawn('bash', [new URL('./supervise.sh', import.meta.url).pathname, state, 'c', '--', 'sleep', '1000'], { stdio: 'ignore' });
  assert.equal(await new Promise((r) => second.once('exit', r)), 3);
  assert.equal(runningPid('c'), pid, 'the first one is untouched');
  await stopDaemon('c');
});

test('drained (kovn down), a supervisor restarts nothing and exits with its daemon', async () => {
  const sup = sleeper('d');
  const pid = await until('the pid', () => runningPid('d'));
  await until('the supervisor', () => readSupervisor('d')?.state === 'running');
  assert.ok(drainSupervisors() >= 1);
  await new Promise((r) => setTimeout(r, 200));
  process.kill(pid, 'SIGKILL');
  await until('the supervisor exits', () => !alive(sup));
  assert.equal(runningPid('d'), undefined);
  assert.equal(readSupervisor('d')?.restarts, 0);
});

test('a daemon that runs but fails its liveness probe is SIGKILLed and restarted; one that passes it is left alone', { timeout: 30_000 }, async () => {
  const ok = join(state, 'alive');
  const probe = { SUPERVISE_LIVENESS: `test -e '${ok}'`, SUPERVISE_LIVENESS_EVERY: '1', SUPERVISE_LIVENESS_FAILURES: '2' };
  writeFileSync(ok, '');
  startDaemon({ name: 'l', cmd: 'sleep', args: ['1000'], env: probe });
  const first = await until('the first pid', () => runningPid('l'));
  await new Promise((r) => setTimeout(r, 3500));
  assert.equal(runningPid('l'), first, 'alive: not restarted');
  rmSync(ok);
  const second = await until('a new pid once the probe fails', () => { const p = runningPid('l'); return p !== first && p; }, 10_000);
  assert.equal(alive(first), false);
  assert.match(readFileSync(logFile('l'), 'utf8'), /liveness probe failed \(2\/2\)[\s\S]*not alive: SIGKILL[\s\S]*exited \(signal SIGKILL/);
  assert.equal(readSupervisor('l')?.restarts, 1);
  writeFileSync(ok, '');
  assert.equal(await stopDaemon('l'), true);
  assert.equal(alive(second), false);
});

test('a daemon that exits at once is restarted with a growing delay, not in a hot loop', async () => {
  startDaemon({ name: 'e', cmd: 'false', args: [] });
  await new Promise((r) => setTimeout(r, 3500));
  // Exits at about 0 s, 1 s and 3 s (delays 1 s, 2 s, then 4 s).
  const n = readSupervisor('e')?.restarts ?? 0;
  assert.ok(n >= 2 && n <= 3, `${n} restarts in 3.5 s`);
  assert.ok(supervisorPid('e'));
  await stopDaemon('e');
});

test('a daemon that ignores SIGTERM is SIGKILLed by its supervisor after the 10 s grace', { timeout: 30_000 }, async () => {
  // The ignored disposition survives exec: sleep itself ignores SIGTERM.
  startDaemon({ name: 'f', cmd: 'sh', args: ['-c', 'trap "" TERM; exec sleep 1000'] });
  const pid = await until('the pid', () => runningPid('f'));
  await new Promise((r) => setTimeout(r, 300));
  const t0 = Date.now();
  assert.equal(await stopDaemon('f'), true);
  const took = Date.now() - t0;
  assert.equal(alive(pid), false);
  assert.ok(took >= 9000 && took < 13_000, `stopped after ${took} ms`);
  assert.match(readFileSync(logFile('f'), 'utf8'), /still running after 10s: SIGKILL/);
});
