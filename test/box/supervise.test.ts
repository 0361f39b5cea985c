// The box is supervised: a daemon that dies comes back by itself, `kovn stop` holds one down and `kovn
// start` brings it back, and a node never runs two agents at once. The suite owns the box (a 1-node one).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO, dirs } from '../../deploy/local/config.ts';
import { runningPid } from '../../deploy/local/proc.ts';
import type { ComponentStatus } from '../../deploy/local/status.ts';
import { componentStatus, downLeavesNothing, kovn, until } from './helpers.ts';

const CONTROLLER = 'kovn-controller';
const AGENT = 'node-1-kovn-agent';

async function component(name: string): Promise<ComponentStatus> {
  const c = await componentStatus(name);
  assert.ok(c, `${name} in kovn status`);
  return c;
}

/** The component once it is healthy with a pid other than `old`. */
const backHealthy = (name: string, old: number | undefined, timeoutMs: number): Promise<ComponentStatus> =>
  until(`${name} healthy with a new pid`, async () => {
    const c = await component(name);
    return c.healthy && c.pid !== null && c.pid !== old ? c : undefined;
  }, timeoutMs);

describe('a supervised box', { timeout: 10 * 60_000 }, () => {
  before(async () => {
    const down = await kovn(['down']);
    assert.equal(down.code, 0, down.out);
    const up = await kovn(['up', '--nodes', '1']);
    assert.equal(up.code, 0, up.out);
  });

  test('the controller and a node agent, SIGKILLed, come back by themselves healthy with new pids; restarts are counted', async () => {
    const old = { ctl: runningPid(CONTROLLER), agent: runningPid(AGENT) };
    assert.ok(old.ctl && old.agent);
    const restarts: Record<string, number> = { [CONTROLLER]: (await component(CONTROLLER)).restarts, [AGENT]: (await component(AGENT)).restarts };
    process.kill(old.ctl, 'SIGKILL');
    process.kill(old.agent, 'SIGKILL');
    const t0 = Date.now();
    const [ctl, agent] = await Promise.all([backHealthy(CONTROLLER, old.ctl, 15_000), backHealthy(AGENT, old.agent, 15_000)]);
    const took = Date.now() - t0;
    assert.ok(took < 12_000, `back after ${took} ms`);
    for (const c of [ctl, agent]) {
      assert.equal(c.restarts, (restarts[c.name] ?? 0) + 1, c.name);
      assert.match(c.lastExit ?? '', /signal SIGKILL/);
      assert.ok(c.supervisor);
    }
  });

  test('kovn stop holds the node agent down; kovn start brings it back', async () => {
    const old = runningPid(AGENT);
    const { restarts } = await component(AGENT);
    const stop = await kovn(['stop', AGENT]);
    assert.equal(stop.code, 0, stop.out);
    assert.equal(runningPid(AGENT), undefined);
    await new Promise((r) => setTimeout(r, 5000));
    const held = await component(AGENT);
    assert.deepEqual([held.pid, held.supervisor, held.held, held.healthy], [null, null, true, false], 'still down 5 s later');
    assert.equal((await kovn(['status'])).code, 1, 'the box is not healthy while a component is held');
    const start = await kovn(['start', AGENT]);
    assert.equal(start.code, 0, start.out);
    const back = await backHealthy(AGENT, old, 5000);
    assert.equal(back.held, false);
    assert.equal(back.restarts, restarts, 'a deliberate stop and start is no restart');
  });

  test('kovn stop/start of an unknown name: exit code 2 and the names, on stderr', () => {
    const r = spawnSync(process.execPath, [join(REPO, 'bin/kovn.ts'), 'stop', 'no-such-thing'], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /no component named "no-such-thing"/);
    for (const name of [CONTROLLER, AGENT, 'etcd', 'node-1-kubelet']) assert.match(r.stderr, new RegExp(`^  ${name}$`, 'm'));
  });

  test('a second agent for node-1, started by hand beside the first, fails on the allocation file lock; the first is unaffected', async () => {
    const first = await component(AGENT);
    // In the node's namespace, as every agent of the node runs (the lock is scoped per network namespace).
    const nodeDir = dirs.node('node-1');
    const second = spawn('nsenter', ['--net=/run/netns/kovn-node-1', '--', process.execPath, join(REPO, 'node-agent/main.ts'), join(nodeDir, 'agent.json')],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    second.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    second.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const code = await new Promise<number | null>((r) => second.once('exit', r));
    assert.notEqual(code, 0, out);
    assert.ok(out.includes(`the allocation file ${join(nodeDir, 'kovn', 'ipam.json')} is locked by another node agent (pid ${first.pid})`), out);
    const now = await component(AGENT);
    assert.deepEqual([now.pid, now.healthy, now.restarts], [first.pid, true, first.restarts]);
  });

  test('down stops every supervisor and daemon and leaves nothing behind', async () => {
    await downLeavesNothing();
    assert.equal(spawnSync('pgrep', ['-f', `${REPO}/deploy/local/supervise.sh`]).status, 1, 'no supervisor runs');
  });

  after(async () => {
    await kovn(['down']);
  });
});
