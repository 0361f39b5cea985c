/**
 * The real plugin (`node cni/plugin.ts`, a child process with containerd-like env and stdin) against a
 * real CNI server on a unix socket, with a small in-memory handler behind it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SUPPORTED_VERSIONS } from './versions.ts';
import { attachEnv, netconf, runPlugin, startTestAgent } from './test-support.ts';
import type { TestHandler } from './test-support.ts';

const NETNS = '/var/run/netns/cni-1234';

describe('kovn CNI plugin against the agent socket', () => {
  let socketPath = '';
  let dir = '';
  let handler: TestHandler;
  let stop: () => Promise<void> = () => Promise.resolve();

  before(async () => {
    const agent = await startTestAgent();
    ({ socketPath, dir, handler, stop } = agent);
  });
  after(() => stop());

  it('ADD returns the agent result in spec 1.0.0 shape with the requested version', async () => {
    const r = await runPlugin(attachEnv('ADD', 'c-add-100', NETNS), netconf(socketPath));
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(r.json, {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'eth0', mac: '0a:58:0a:f4:01:05', sandbox: NETNS }],
      ips: [
        { address: '10.244.1.5/24', gateway: '10.244.1.1', interface: 0 },
        { address: 'fd00:10:244:1::5/64', gateway: 'fd00:10:244:1::1', interface: 0 },
      ],
      routes: [{ dst: '0.0.0.0/0', gw: '10.244.1.1' }, { dst: '::/0', gw: 'fd00:10:244:1::1' }],
      dns: { nameservers: ['10.96.0.10'], search: ['default.svc.cluster.local'] },
    });
    const req = handler.requests.at(-1);
    assert.equal(req?.command, 'ADD');
    assert.deepEqual(
      { id: req.containerId, netns: req.netns, ifname: req.ifname, ns: req.podNamespace, pod: req.podName, uid: req.podUid, mtu: req.config.mtu },
      { id: 'c-add-100', netns: NETNS, ifname: 'eth0', ns: 'default', pod: 'web-0', uid: '7d3e5c1a-0000-4000-8000-000000000001', mtu: 1400 },
    );
  });

  it('ADD at 1.1.0 keeps the 1.1 fields (interface and route MTU)', async () => {
    const r = await runPlugin(attachEnv('ADD', 'c-add-110', NETNS), netconf(socketPath, { cniVersion: '1.1.0', mtu: 1380 }));
    assert.equal(r.code, 0, r.stdout);
    assert.equal(r.json?.cniVersion, '1.1.0');
    assert.deepEqual(r.json?.interfaces, [{ name: 'eth0', mac: '0a:58:0a:f4:01:05', mtu: 1380, sandbox: NETNS }]);
    assert.deepEqual((r.json?.routes as unknown[])[1], { dst: '::/0', gw: 'fd00:10:244:1::1', mtu: 1400 });
  });

  for (const v of ['0.3.1', '0.4.0']) {
    it(`ADD at ${v} gives each IP its version`, async () => {
      const r = await runPlugin(attachEnv('ADD', `c-add-${v}`, NETNS), netconf(socketPath, { cniVersion: v }));
      assert.equal(r.code, 0, r.stdout);
      assert.equal(r.json?.cniVersion, v);
      assert.deepEqual((r.json?.ips as { version: string }[]).map((i) => i.version), ['4', '6']);
    });
  }

  it('DEL succeeds without CNI_NETNS, and again (idempotent)', async () => {
    const add = await runPlugin(attachEnv('ADD', 'c-del', NETNS), netconf(socketPath));
    assert.equal(add.code, 0);
    assert.ok(handler.attachments.has('c-del/eth0'));
    for (let i = 0; i < 2; i++) {
      const r = await runPlugin(attachEnv('DEL', 'c-del', undefined), netconf(socketPath, { prevResult: add.json }));
      assert.equal(r.code, 0, r.stdout);
      assert.equal(r.stdout, '');
      const req = handler.requests.at(-1);
      assert.equal(req?.command, 'DEL');
      assert.equal(req.netns, null);
    }
    assert.ok(!handler.attachments.has('c-del/eth0'));
  });

  it('CHECK passes prevResult to the agent and succeeds silently', async () => {
    const add = await runPlugin(attachEnv('ADD', 'c-check', NETNS), netconf(socketPath));
    const r = await runPlugin(attachEnv('CHECK', 'c-check', NETNS), netconf(socketPath, { prevResult: add.json }));
    assert.equal(r.code, 0, r.stdout);
    assert.equal(r.stdout, '');
    const req = handler.requests.at(-1);
    assert.equal(req?.command, 'CHECK');
    assert.deepEqual(req.config.prevResult?.ips.map((i) => i.address), ['10.244.1.5/24', 'fd00:10:244:1::5/64']);
  });

  it('CHECK of an unknown attachment prints the agent\'s CniError (code 3)', async () => {
    const r = await runPlugin(attachEnv('CHECK', 'c-never-added', NETNS), netconf(socketPath, { prevResult: { cniVersion: '1.0.0', ips: [] } }));
    assert.equal(r.code, 1);
    assert.deepEqual(r.json, { cniVersion: '1.0.0', code: 3, msg: 'no such attachment', details: 'c-never-added/eth0' });
  });

  it('CHECK needs config version 0.4.0 or later (code 1)', async () => {
    const r = await runPlugin(attachEnv('CHECK', 'c-check', NETNS), netconf(socketPath, { cniVersion: '0.3.1' }));
    assert.equal(r.code, 1);
    assert.equal(r.json?.code, 1);
  });

  it('STATUS succeeds silently when the agent is ready, code 50 when it says it is not', async () => {
    const ok = await runPlugin({ CNI_COMMAND: 'STATUS' }, netconf(socketPath, { cniVersion: '1.1.0' }));
    assert.equal(ok.code, 0, ok.stdout);
    assert.equal(ok.stdout, '');
    handler.notReady = true;
    try {
      const r = await runPlugin({ CNI_COMMAND: 'STATUS' }, netconf(socketPath, { cniVersion: '1.1.0' }));
      assert.equal(r.code, 1);
      assert.deepEqual(r.json, { cniVersion: '1.1.0', code: 50, msg: 'agent not ready', details: 'OVN not connected' });
    } finally {
      handler.notReady = false;
    }
  });

  it('GC hands the valid attachments to the agent, which drops the rest', async () => {
    await runPlugin(attachEnv('ADD', 'c-gc-keep', NETNS), netconf(socketPath));
    await runPlugin(attachEnv('ADD', 'c-gc-stale', NETNS), netconf(socketPath));
    const valid = [{ containerID: 'c-gc-keep', ifname: 'eth0' }];
    const r = await runPlugin({ CNI_COMMAND: 'GC', CNI_PATH: '/opt/cni/bin' }, netconf(socketPath, { cniVersion: '1.1.0', 'cni.dev/valid-attachments': valid }));
    assert.equal(r.code, 0, r.stdout);
    assert.deepEqual(handler.lastValidAttachments, valid);
    assert.ok(handler.attachments.has('c-gc-keep/eth0'));
    assert.ok(!handler.attachments.has('c-gc-stale/eth0'));
  });

  it('a handler exception becomes code 5; a retryable one code 11', async () => {
    const boom = await runPlugin(attachEnv('ADD', 'boom-1', NETNS), netconf(socketPath));
    assert.equal(boom.code, 1);
    assert.deepEqual(boom.json, { cniVersion: '1.0.0', code: 5, msg: 'ovsdb exploded', details: 'Error' });
    const busy = await runPlugin(attachEnv('ADD', 'busy-1', NETNS), netconf(socketPath));
    assert.equal(busy.code, 1);
    assert.equal(busy.json?.code, 11);
    assert.equal(busy.json?.msg, 'nb busy');
  });

  it('an agent that does not answer in time gives code 11 instead of hanging', async () => {
    const t0 = Date.now();
    const r = await runPlugin(attachEnv('ADD', 'hang-1', NETNS, { KOVN_CNI_TIMEOUT_MS: '300' }), netconf(socketPath));
    assert.equal(r.code, 1);
    assert.equal(r.json?.code, 11);
    assert.match(String(r.json?.details), /did not answer ADD within 0.3 s/);
    assert.ok(Date.now() - t0 < 5000);
  });

  it('appends one line per call to logFile', async () => {
    const logFile = join(dir, 'cni.log');
    await runPlugin(attachEnv('ADD', 'c-log', NETNS), netconf(socketPath, { logFile }));
    await runPlugin(attachEnv('ADD', 'unknown-log', NETNS), netconf(socketPath, { logFile }));
    const lines = (await readFile(logFile, 'utf8')).trim().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0] ?? '', /ADD c-log eth0 default\/web-0 ok$/);
    assert.match(lines[1] ?? '', /ADD unknown-log eth0 default\/web-0 error 3: container unknown/);
  });
});

describe('kovn CNI plugin without an agent', () => {
  const missing = '/run/kovn-test-no-such-dir/cni.sock';

  it('ADD gives code 11 naming the socket', async () => {
    const r = await runPlugin(attachEnv('ADD', 'c1', NETNS, { KOVN_CNI_AGENT_WAIT_MS: '300' }), netconf(missing));
    assert.equal(r.code, 1);
    assert.equal(r.json?.code, 11);
    assert.match(String(r.json?.msg), /kovn-test-no-such-dir\/cni\.sock/);
  });

  it('ADD waits for an agent that is restarting, and is served once it listens', async () => {
    const { startCniServer } = await import('./server.ts');
    const { TestHandler } = await import('./test-support.ts');
    const dir = await mkdtemp(join(tmpdir(), 'kovn-cni-wait-'));
    const socketPath = join(dir, 'cni.sock');
    const pending = runPlugin(attachEnv('ADD', 'c-wait', NETNS, { KOVN_CNI_AGENT_WAIT_MS: '10000' }), netconf(socketPath));
    await new Promise((r) => setTimeout(r, 700));
    const server = await startCniServer({ socketPath, handler: new TestHandler() });
    try {
      const r = await pending;
      assert.equal(r.code, 0, r.stdout + r.stderr);
    } finally {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('DEL is an error too (code 11): kubelet retries DEL until it succeeds', async () => {
    const r = await runPlugin(attachEnv('DEL', 'c1', undefined, { KOVN_CNI_AGENT_WAIT_MS: '300' }), netconf(missing));
    assert.equal(r.code, 1);
    assert.equal(r.json?.code, 11);
  });

  it('STATUS gives code 50', async () => {
    const r = await runPlugin({ CNI_COMMAND: 'STATUS' }, netconf(missing, { cniVersion: '1.1.0' }));
    assert.equal(r.code, 1);
    assert.equal(r.json?.code, 50);
    assert.match(String(r.json?.msg), /cni\.sock/);
  });

  it('VERSION is answered locally with the input version', async () => {
    const r = await runPlugin({ CNI_COMMAND: 'VERSION' }, JSON.stringify({ cniVersion: '1.0.0' }));
    assert.equal(r.code, 0);
    assert.deepEqual(r.json, { cniVersion: '1.0.0', supportedVersions: [...SUPPORTED_VERSIONS] });
    const empty = await runPlugin({ CNI_COMMAND: 'VERSION' }, '');
    assert.deepEqual(empty.json, { cniVersion: '1.1.0', supportedVersions: [...SUPPORTED_VERSIONS] });
  });
});

describe('bad input gets the spec\'s error codes and never reaches the handler', () => {
  // The plugin itself only needs the agent's socket from the config; the agent validates the rest.
  let sock = '';
  let handler: TestHandler;
  let stop: () => Promise<void> = () => Promise.resolve();
  before(async () => {
    ({ socketPath: sock, handler, stop } = await startTestAgent());
  });
  after(() => stop());
  const cases = (sock: string): { name: string; env: Record<string, string>; stdin: string; code: number; mentions: RegExp }[] => [
    { name: 'ADD without CNI_NETNS', env: attachEnv('ADD', 'c1', undefined), stdin: netconf(sock), code: 4, mentions: /CNI_NETNS/ },
    { name: 'ADD with an empty CNI_CONTAINERID', env: attachEnv('ADD', '', NETNS), stdin: netconf(sock), code: 4, mentions: /CNI_CONTAINERID/ },
    { name: 'a container ID with bad characters', env: attachEnv('ADD', 'a/b', NETNS), stdin: netconf(sock), code: 4, mentions: /CNI_CONTAINERID/ },
    { name: 'an interface name over 15 characters', env: attachEnv('ADD', 'c1', NETNS, { CNI_IFNAME: 'eth0123456789abc' }), stdin: netconf(sock), code: 4, mentions: /CNI_IFNAME/ },
    { name: 'an unknown CNI_ARGS key without IgnoreUnknown', env: attachEnv('ADD', 'c1', NETNS, { CNI_ARGS: 'FOO=1' }), stdin: netconf(sock), code: 4, mentions: /CNI_ARGS/ },
    { name: 'an unknown command', env: { CNI_COMMAND: 'FROB' }, stdin: netconf(sock), code: 4, mentions: /CNI_COMMAND/ },
    { name: 'no command at all', env: {}, stdin: netconf(sock), code: 4, mentions: /CNI_COMMAND/ },
    { name: 'garbage on stdin', env: attachEnv('ADD', 'c1', NETNS), stdin: 'not json{', code: 6, mentions: /decode/ },
    { name: 'a config for another plugin type', env: attachEnv('ADD', 'c1', NETNS), stdin: netconf(sock, { type: 'bridge' }), code: 7, mentions: /type/ },
    { name: 'a relative agentSocket', env: attachEnv('ADD', 'c1', NETNS), stdin: netconf('run/cni.sock'), code: 7, mentions: /agentSocket: an absolute path is required/ },
    { name: 'a config with no name', env: attachEnv('ADD', 'c1', NETNS), stdin: netconf(sock, { name: undefined }), code: 7, mentions: /name/ },
    { name: 'a bad mtu', env: attachEnv('ADD', 'c1', NETNS), stdin: netconf(sock, { mtu: 10 }), code: 7, mentions: /mtu/ },
    { name: 'a bad prevResult address', env: attachEnv('DEL', 'c1', NETNS), stdin: netconf(sock, { prevResult: { ips: [{ address: '10.0.0.300/24' }] } }), code: 7, mentions: /prevResult\.ips\[0\]\.address/ },
    { name: 'an unsupported cniVersion', env: attachEnv('ADD', 'c1', NETNS), stdin: netconf(sock, { cniVersion: '2.0.0' }), code: 1, mentions: /incompatible/ },
    { name: 'GC without cni.dev/valid-attachments', env: { CNI_COMMAND: 'GC' }, stdin: netconf(sock, { cniVersion: '1.1.0' }), code: 7, mentions: /valid-attachments/ },
    { name: 'STATUS on a 1.0.0 config', env: { CNI_COMMAND: 'STATUS' }, stdin: netconf(sock), code: 1, mentions: /STATUS/ },
  ];
  for (const { name, code } of cases('')) {
    it(`${name} -> code ${code}`, async () => {
      const c = cases(sock).find((x) => x.name === name);
      assert.ok(c);
      const r = await runPlugin(c.env, c.stdin);
      assert.equal(handler.requests.length, 0, 'the handler was not called');
      assert.equal(r.code, 1, r.stdout);
      assert.equal(r.json?.code, c.code, r.stdout);
      assert.match(`${String(r.json?.msg)} ${String(r.json?.details)}`, c.mentions);
      assert.equal(typeof r.json?.cniVersion, 'string');
    });
  }
});
