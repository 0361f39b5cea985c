/**
 * installCni/uninstallCni on real directories, the installed wrapper run with a bare environment, and
 * ADD/CHECK/STATUS/DEL through the wrapper by the reference runtime library (cnitool) in a real netns.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { readFile, readdir, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CONFLIST_NAME, PLUGIN_DIR, PLUGIN_SCRIPT, installCni, uninstallCni } from './install.ts';
import { runPlugin, startTestAgent, tempDir } from './test-support.ts';
import type { TestHandler } from './test-support.ts';

const exec = promisify(execFile);

describe('installCni', () => {
  let dir = '';
  let cleanup: () => Promise<void> = () => Promise.resolve();
  before(async () => { ({ dir, cleanup } = await tempDir()); });
  after(() => cleanup());

  it('writes an executable wrapper with absolute paths, then the conflist; a second run changes nothing', async () => {
    const binDir = join(dir, 'bin');
    const confDir = join(dir, 'net.d');
    const opts = { binDir, confDir, agentSocket: '/run/kovn/cni.sock', nodeBin: process.execPath, mtu: 1400 };
    const first = await installCni(opts);
    assert.deepEqual(first, { binary: join(binDir, 'kovn'), conflist: join(confDir, CONFLIST_NAME), binaryChanged: true, conflistChanged: true });
    const wrapper = await readFile(first.binary, 'utf8');
    assert.ok(wrapper.startsWith('#!/bin/sh\n'));
    // The runtime runs a root-owned copy in its bin dir, never the checkout's file.
    const copy = join(binDir, PLUGIN_DIR, 'plugin.js');
    const node = join(binDir, PLUGIN_DIR, 'node');
    assert.ok(wrapper.includes(`exec '${node}' '${copy}' "$@"`), wrapper);
    assert.ok(!wrapper.includes(PLUGIN_SCRIPT) && !wrapper.includes(process.execPath));
    assert.deepEqual([(await stat(node)).uid, (await stat(node)).mode & 0o777, (await stat(node)).size], [0, 0o755, (await stat(process.execPath)).size]);
    assert.equal((await stat(first.binary)).mode & 0o777, 0o755);
    // Plain JavaScript, types stripped once at install (not on every run), imports pointing at the copies.
    for (const f of [copy, join(binDir, PLUGIN_DIR, 'plugin-command.js'), join(binDir, PLUGIN_DIR, 'agent-client.js')]) {
      const st = await stat(f);
      assert.deepEqual([st.uid, st.mode & 0o777], [0, 0o644], f);
      const js = await readFile(f, 'utf8');
      const ts = await readFile(join(dirname(PLUGIN_SCRIPT), basename(f).replace(/\.js$/, '.ts')), 'utf8');
      assert.match(ts, /^import type /m, 'the source has types to strip');
      assert.doesNotMatch(js, /^import type /m);
      assert.doesNotMatch(js, /from '\.\/[^']+\.ts'/);
    }
    assert.deepEqual(JSON.parse(await readFile(first.conflist, 'utf8')), {
      cniVersion: '1.0.0', cniVersions: ['1.0.0', '1.1.0'], name: 'kovn', plugins: [{ type: 'kovn', agentSocket: '/run/kovn/cni.sock', mtu: 1400 }],
    });
    assert.deepEqual(await installCni(opts), { ...first, binaryChanged: false, conflistChanged: false });
    const changed = await installCni({ ...opts, mtu: 1380 });
    assert.deepEqual([changed.binaryChanged, changed.conflistChanged], [false, true]);
    // No temp files left behind for the runtime to trip over.
    assert.deepEqual([...await readdir(binDir), ...await readdir(confDir)].sort(), [CONFLIST_NAME, 'kovn', PLUGIN_DIR]);
    assert.ok((await readdir(join(binDir, PLUGIN_DIR))).every((f) => !f.startsWith('.')));
  });

  it('the wrapper answers VERSION with containerd\'s bare environment (no node on PATH)', async () => {
    const binDir = join(dir, 'bin2');
    const { binary } = await installCni({ binDir, confDir: join(dir, 'conf2'), agentSocket: '/run/kovn/cni.sock', nodeBin: process.execPath, compileCache: true });
    const r = await runPlugin({ CNI_COMMAND: 'VERSION', PATH: '/nonexistent' }, '{"cniVersion":"1.0.0"}', [binary]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json?.cniVersion, '1.0.0');
    const cache = join(binDir, PLUGIN_DIR, 'compile-cache');
    assert.ok(existsSync(cache), 'compile cache dir, root-only, in the plugin\'s own dir');
    assert.equal((await stat(cache)).mode & 0o777, 0o700);
  });

  it('rejects relative paths, naming the option', async () => {
    await assert.rejects(installCni({ binDir: 'bin', confDir: '/x', agentSocket: '/s', nodeBin: '/n' }), /binDir: not an absolute path/);
  });

  it('uninstallCni removes the conflist and the wrapper, and is idempotent', async () => {
    const binDir = join(dir, 'bin3');
    const confDir = join(dir, 'conf3');
    await installCni({ binDir, confDir, agentSocket: '/run/kovn/cni.sock', nodeBin: process.execPath });
    assert.deepEqual(await uninstallCni({ binDir, confDir }), { removed: [join(confDir, CONFLIST_NAME), join(binDir, 'kovn'), join(binDir, PLUGIN_DIR)] });
    assert.deepEqual(await uninstallCni({ binDir, confDir }), { removed: [] });
  });
});

const toolsDir = join(homedir(), '.cache', 'kovn', 'tools');
const cnitool = existsSync(toolsDir)
  ? readdirSync(toolsDir).filter((d) => d.startsWith('cni-')).map((d) => join(toolsDir, d, 'cnitool')).find((p) => existsSync(p))
  : undefined;

describe('the installed plugin driven by cnitool (libcni) in a real network namespace', { skip: cnitool ? false : 'cnitool not built' }, () => {
  const nsName = `kovn-cnitest-${process.pid}`;
  const nsPath = `/run/netns/${nsName}`;
  // cnitool names the container after a hash of the netns path; libcni caches results under it.
  const containerId = `cnitool-${createHash('sha512').update(nsPath).digest('hex').slice(0, 20)}`;
  let env: Record<string, string> = {};
  let handler: TestHandler;
  let stop: () => Promise<void> = () => Promise.resolve();
  let cleanupDir: () => Promise<void> = () => Promise.resolve();

  before(async () => {
    await exec('ip', ['netns', 'add', nsName]);
    const agent = await startTestAgent();
    ({ handler, stop } = agent);
    const t = await tempDir();
    cleanupDir = t.cleanup;
    await installCni({ binDir: join(t.dir, 'bin'), confDir: join(t.dir, 'net.d'), agentSocket: agent.socketPath, nodeBin: process.execPath, mtu: 1400, compileCache: true });
    env = {
      PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
      NETCONFPATH: join(t.dir, 'net.d'),
      CNI_PATH: join(t.dir, 'bin'),
      CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=cnitest',
    };
  });
  after(async () => {
    await exec('ip', ['netns', 'del', nsName]).catch(() => undefined);
    await rm(`/var/lib/cni/results/kovn-${containerId}-eth0`, { force: true });
    await stop();
    await cleanupDir();
  });

  const tool = (...args: string[]) => exec(cnitool ?? 'cnitool', args, { env, timeout: 60_000 });

  it('ADD returns the agent\'s result for the namespace at the highest shared version (1.1.0)', async () => {
    const { stdout } = await tool('add', 'kovn', nsPath);
    const result = JSON.parse(stdout) as { cniVersion: string; interfaces: { name: string; sandbox: string; mtu: number }[]; ips: { address: string }[] };
    assert.equal(result.cniVersion, '1.1.0');
    assert.deepEqual(result.interfaces[0], { name: 'eth0', mac: '0a:58:0a:f4:01:05', mtu: 1400, sandbox: nsPath });
    assert.deepEqual(result.ips.map((i) => i.address), ['10.244.1.5/24', 'fd00:10:244:1::5/64']);
    const req = handler.requests.at(-1);
    assert.equal(req?.command, 'ADD');
    assert.deepEqual([req.containerId, req.netns, req.podNamespace, req.podName], [containerId, nsPath, 'default', 'cnitest']);
  });

  it('CHECK and STATUS succeed through the wrapper', async () => {
    await tool('check', 'kovn', nsPath);
    const check = handler.requests.at(-1);
    assert.equal(check?.command, 'CHECK');
    assert.ok(check.config.prevResult, 'libcni passes the cached ADD result');
    await tool('status', 'kovn', nsPath);
    assert.equal(handler.requests.at(-1)?.command, 'STATUS');
  });

  it('DEL removes the attachment, and a second DEL succeeds', async () => {
    await tool('del', 'kovn', nsPath);
    assert.equal(handler.requests.at(-1)?.command, 'DEL');
    assert.equal(handler.attachments.size, 0);
    await tool('del', 'kovn', nsPath);
  });
});
