/**
 * installCni/uninstallCni on real directories, the installed plugin run with a bare environment, and
 * ADD/CHECK/STATUS/DEL through it by the reference runtime library (cnitool) in a real netns.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CONFLIST_NAME, OLD_PLUGIN_DIR, installCni, uninstallCni } from './install.ts';
import { SUPPORTED_VERSIONS } from './versions.ts';
import { pluginBinary, runPlugin, startTestAgent, tempDir } from './test-support.ts';
import type { TestHandler } from './test-support.ts';

const exec = promisify(execFile);

describe('installCni', () => {
  let dir = '';
  let plugin = '';
  let cleanup: () => Promise<void> = () => Promise.resolve();
  before(async () => {
    ({ dir, cleanup } = await tempDir());
    plugin = await pluginBinary();
  });
  after(() => cleanup());

  it('copies the plugin binary root-owned into the bin dir, then writes the conflist; a second run changes nothing', async () => {
    const binDir = join(dir, 'bin');
    const confDir = join(dir, 'net.d');
    const opts = { binDir, confDir, agentSocket: '/run/kovn/cni.sock', pluginBinary: plugin, mtu: 1400 };
    const first = await installCni(opts);
    assert.deepEqual(first, { binary: join(binDir, 'kovn'), conflist: join(confDir, CONFLIST_NAME), binaryChanged: true, conflistChanged: true });
    // The runtime runs a root-owned copy in its bin dir, never the build's file.
    const st = await stat(first.binary);
    assert.deepEqual([st.uid, st.mode & 0o777], [0, 0o755]);
    assert.ok((await readFile(first.binary)).equals(await readFile(plugin)), 'the same bytes');
    assert.deepEqual(JSON.parse(await readFile(first.conflist, 'utf8')), {
      cniVersion: '1.0.0', cniVersions: ['1.0.0', '1.1.0'], name: 'kovn', plugins: [{ type: 'kovn', agentSocket: '/run/kovn/cni.sock', mtu: 1400 }],
    });
    assert.deepEqual(await installCni(opts), { ...first, binaryChanged: false, conflistChanged: false });
    const changed = await installCni({ ...opts, mtu: 1380 });
    assert.deepEqual([changed.binaryChanged, changed.conflistChanged], [false, true]);
    // No temp files left behind for the runtime to trip over.
    assert.deepEqual([...await readdir(binDir), ...await readdir(confDir)].sort(), [CONFLIST_NAME, 'kovn']);
  });

  it('replaces what an install of the Node plugin left (its wrapper and kovn.d/, interpreter included)', async () => {
    const binDir = join(dir, 'bin-old');
    await mkdir(join(binDir, OLD_PLUGIN_DIR), { recursive: true });
    await writeFile(join(binDir, OLD_PLUGIN_DIR, 'plugin.js'), '');
    await writeFile(join(binDir, 'kovn'), "#!/bin/sh\nexec node plugin.js\n", { mode: 0o755 });
    const r = await installCni({ binDir, confDir: join(dir, 'conf-old'), agentSocket: '/run/kovn/cni.sock', pluginBinary: plugin });
    assert.equal(r.binaryChanged, true);
    assert.ok((await readFile(r.binary)).equals(await readFile(plugin)));
    assert.deepEqual(await readdir(binDir), ['kovn']);
  });

  it('the plugin answers VERSION with containerd\'s bare environment (nothing on PATH)', async () => {
    const binDir = join(dir, 'bin2');
    const { binary } = await installCni({ binDir, confDir: join(dir, 'conf2'), agentSocket: '/run/kovn/cni.sock', pluginBinary: plugin });
    const r = await runPlugin({ CNI_COMMAND: 'VERSION', PATH: '/nonexistent' }, '{"cniVersion":"1.0.0"}', [binary]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.json, { cniVersion: '1.0.0', supportedVersions: [...SUPPORTED_VERSIONS] });
  });

  it('rejects relative paths, naming the option', async () => {
    await assert.rejects(installCni({ binDir: 'bin', confDir: '/x', agentSocket: '/s', pluginBinary: '/p' }), /binDir: not an absolute path/);
  });

  it('uninstallCni removes the conflist and the plugin, and is idempotent', async () => {
    const binDir = join(dir, 'bin3');
    const confDir = join(dir, 'conf3');
    await installCni({ binDir, confDir, agentSocket: '/run/kovn/cni.sock', pluginBinary: plugin });
    assert.deepEqual(await uninstallCni({ binDir, confDir }), { removed: [join(confDir, CONFLIST_NAME), join(binDir, 'kovn')] });
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
    await installCni({ binDir: join(t.dir, 'bin'), confDir: join(t.dir, 'net.d'), agentSocket: agent.socketPath, pluginBinary: await pluginBinary(), mtu: 1400 });
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

  it('CHECK and STATUS succeed through the installed plugin', async () => {
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
