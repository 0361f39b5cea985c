/**
 * Test helpers for the cni suites: temp dirs, a real CNI server with a small in-memory handler (kovn's
 * own interface, standing in for nothing external), and the real plugin run as a child process.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CNI_ERR_UNKNOWN_CONTAINER, CniError } from './errors.ts';
import { bin, buildTool, GO_TOOLS, isBuilt } from '../deploy/local/tools.ts';
import type { AddRequest, AgentRequest, ValidAttachment } from './protocol.ts';
import type { CniResultInput } from './result.ts';
import { startCniServer } from './server.ts';
import type { CniHandler, CniServer } from './server.ts';

/** A fresh directory under /tmp, removed by the returned cleanup. Unix socket paths stay short. */
export async function tempDir(prefix = 'kovn-cni-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * An in-memory agent: ADD records an attachment and returns a dual-stack result; DEL forgets it (and
 * succeeds when there is nothing to forget); CHECK wants the attachment and a prevResult; GC keeps only
 * the valid attachments. Container IDs starting with "unknown", "boom", "busy" or "hang" misbehave.
 */
export class TestHandler implements CniHandler {
  readonly requests: AgentRequest[] = [];
  readonly attachments = new Map<string, AddRequest>();
  lastValidAttachments: ValidAttachment[] | undefined;
  notReady = false;

  async add(req: AddRequest): Promise<CniResultInput> {
    this.requests.push(req);
    await this.misbehave(req.containerId);
    this.attachments.set(`${req.containerId}/${req.ifname}`, req);
    return {
      interfaces: [{ name: req.ifname, mac: '0a:58:0a:f4:01:05', mtu: req.config.mtu ?? 1400, sandbox: req.netns }],
      ips: [
        { address: '10.244.1.5/24', gateway: '10.244.1.1', interface: 0 },
        { address: 'fd00:10:244:1::5/64', gateway: 'fd00:10:244:1::1', interface: 0 },
      ],
      routes: [{ dst: '0.0.0.0/0', gw: '10.244.1.1' }, { dst: '::/0', gw: 'fd00:10:244:1::1', mtu: 1400 }],
      dns: { nameservers: ['10.96.0.10'], search: ['default.svc.cluster.local'] },
    };
  }

  async del(req: Parameters<CniHandler['del']>[0]): Promise<void> {
    this.requests.push(req);
    await this.misbehave(req.containerId);
    this.attachments.delete(`${req.containerId}/${req.ifname}`);
  }

  async check(req: Parameters<CniHandler['check']>[0]): Promise<void> {
    this.requests.push(req);
    await this.misbehave(req.containerId);
    if (!this.attachments.has(`${req.containerId}/${req.ifname}`)) throw new CniError(CNI_ERR_UNKNOWN_CONTAINER, 'no such attachment', `${req.containerId}/${req.ifname}`);
    if (!req.config.prevResult) throw new CniError(7, 'CHECK without prevResult');
  }

  async status(req: Parameters<CniHandler['status']>[0]): Promise<void> {
    this.requests.push(req);
    if (this.notReady) throw new CniError(50, 'agent not ready', 'OVN not connected');
    await Promise.resolve();
  }

  async gc(req: Parameters<CniHandler['gc']>[0]): Promise<void> {
    this.requests.push(req);
    const valid = req.config['cni.dev/valid-attachments'] ?? [];
    this.lastValidAttachments = valid;
    const keep = new Set(valid.map((a) => `${a.containerID}/${a.ifname}`));
    for (const key of this.attachments.keys()) if (!keep.has(key)) this.attachments.delete(key);
    await Promise.resolve();
  }

  private misbehave(containerId: string): Promise<never> | undefined {
    if (containerId.startsWith('unknown')) return Promise.reject(new CniError(CNI_ERR_UNKNOWN_CONTAINER, 'container unknown', containerId));
    if (containerId.startsWith('boom')) return Promise.reject(new Error('ovsdb exploded'));
    if (containerId.startsWith('busy')) return Promise.reject(Object.assign(new Error('nb busy'), { retryable: true }));
    if (containerId.startsWith('hang')) return new Promise<never>(() => undefined);
    return undefined;
  }
}

/** A CNI server on a socket in a temp dir, with a TestHandler. */
export async function startTestAgent(): Promise<{ dir: string; socketPath: string; handler: TestHandler; server: CniServer; stop: () => Promise<void> }> {
  const { dir, cleanup } = await tempDir();
  const socketPath = join(dir, 'run', 'cni.sock');
  const handler = new TestHandler();
  const server = await startCniServer({ socketPath, handler, closeGraceMs: 500 });
  return { dir, socketPath, handler, server, stop: async () => { await server.close(); await cleanup(); } };
}

export interface PluginRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, undefined when empty. */
  json: Record<string, unknown> | undefined;
}

/** The plugin binary (cni/shim) as the box builds it; built first when it is not (a few seconds). */
export async function pluginBinary(): Promise<string> {
  const tool = GO_TOOLS.find((t) => t.module === 'kovn-cni');
  if (tool && !isBuilt(tool)) await buildTool(tool);
  return bin('kovn-cni');
}

/** Runs the plugin as containerd would: its own small environment, config on stdin. */
export async function runPlugin(env: Record<string, string>, stdin: string, argv?: string[]): Promise<PluginRun> {
  const [cmd = '', ...args] = argv ?? [await pluginBinary()];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      let json: Record<string, unknown> | undefined;
      try {
        json = stdout.trim() ? JSON.parse(stdout) as Record<string, unknown> : undefined;
      } catch { /* the test sees raw stdout */ }
      resolve({ code, stdout, stderr, json });
    });
    child.stdin.end(stdin);
  });
}

/** A kovn network config as the runtime derives it for one plugin call. */
export function netconf(socketPath: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ cniVersion: '1.0.0', name: 'kovn', type: 'kovn', agentSocket: socketPath, mtu: 1400, ...extra });
}

/** The environment for an attachment command. */
export function attachEnv(command: string, containerId: string, netns: string | undefined, extra: Record<string, string> = {}): Record<string, string> {
  return {
    CNI_COMMAND: command,
    CNI_CONTAINERID: containerId,
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/opt/cni/bin',
    CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=7d3e5c1a-0000-4000-8000-000000000001;K8S_POD_INFRA_CONTAINER_ID=' + containerId,
    ...(netns === undefined ? {} : { CNI_NETNS: netns }),
    ...extra,
  };
}
