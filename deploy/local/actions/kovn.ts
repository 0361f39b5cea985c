import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NET, REPO, STATE, TEMPORAL_NAMESPACE, dirs, files } from '../config.ts';
import { ensureCert, writeKubeconfig } from '../pki.ts';
import { runningPid } from '../proc.ts';
import { kubectl } from '../kubectl.ts';
import { nodePaths } from './node.ts';
import { bin } from '../tools.ts';
import { SB_TCP } from './ovn-central.ts';
import type { Component } from './types.ts';
import { DUAL_STACK_CLUSTER, IPV4_CLUSTER } from '../../../lib/cluster-config.ts';
import type { ClusterConfig } from '../../../lib/cluster-config.ts';
import type { ControllerConfig, NodeAgentConfig } from '../../../lib/daemon-config.ts';

export type IpFamily = 'ipv4' | 'dual';
export const clusterConfig = (f: IpFamily): ClusterConfig => (f === 'dual'
  ? { ...DUAL_STACK_CLUSTER, loadBalancerPools: [NET.lbPool, NET.lbPool6] }
  : { ...IPV4_CLUSTER, loadBalancerPools: [NET.lbPool] });
/** The bundle is named by a hash of the code it is built from, so changed workflows get a new one. */
function bundleFile(): string {
  const h = createHash('sha256');
  for (const dir of ['workflows', 'lib']) {
    for (const f of readdirSync(join(REPO, dir)).filter((n) => n.endsWith('.ts')).sort()) h.update(f).update(readFileSync(join(REPO, dir, f)));
  }
  return join(STATE, `workflow-bundle-${h.digest('hex').slice(0, 12)}.js`);
}
const node24 = process.execPath;

/**
 * kovn's identities (client certificates bound by deploy/rbac/kovn.yaml), its RBAC, and the admission
 * policy that keeps k8s.ovn.org/* annotations kovn's own (deploy/policy/annotations.yaml).
 */
export async function kovnAccess(nodes: number): Promise<void> {
  await ensureCert('kovn-controller', '/CN=kovn-controller');
  writeKubeconfig(join(dirs.pki, 'kovn-controller.kubeconfig'), 'https://127.0.0.1:6443', 'kovn-controller');
  for (let i = 1; i <= nodes; i++) {
    const p = nodePaths(i);
    mkdirSync(join(p.dir, 'kovn'), { recursive: true });
    await ensureCert(`kovn-node-${p.name}`, `/O=kovn:nodes/CN=kovn-node:${p.name}`);
    writeKubeconfig(join(p.dir, 'kovn-agent.kubeconfig'), `https://${NET.cpIp}:6443`, `kovn-node-${p.name}`);
  }
  await kubectl(['apply', '-f', join(REPO, 'deploy/rbac/kovn.yaml'), '-f', join(REPO, 'deploy/policy/annotations.yaml')]);
}

/**
 * One webpack bundle of the workflows for every daemon (each would otherwise bundle at start); its
 * path is computed once per `up` and handed to every daemon's config.
 */
export async function workflowBundle(): Promise<{ file: string; made: boolean }> {
  const file = bundleFile();
  if (existsSync(file)) return { file, made: false };
  const { bundleWorkflowCode } = await import('@temporalio/worker');
  const { code } = await bundleWorkflowCode({ workflowsPath: join(REPO, 'workflows/index.ts'), logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} } });
  writeFileSync(file, code);
  return { file, made: true };
}

/** Healthy: the daemon runs and has written its ready file (with its own pid). */
function readyPid(name: string, file: string | undefined): boolean {
  const pid = runningPid(name);
  try {
    return pid !== undefined && !!file && Number(readFileSync(file, 'utf8').trim()) === pid;
  } catch {
    return false;
  }
}

export function controller(family: IpFamily, bundle = ''): Component {
  const cfgFile = join(STATE, 'controller.json');
  const cfg: ControllerConfig = {
    kubeconfig: join(dirs.pki, 'kovn-controller.kubeconfig'),
    temporal: { address: '127.0.0.1:7233', namespace: TEMPORAL_NAMESPACE },
    nb: [`unix:${files.nbSock}`],
    sb: [`unix:${files.sbSock}`],
    cluster: clusterConfig(family),
    workflowBundle: bundle,
    identity: 'kovn-controller-box',
    readyFile: join(dirs.run, 'kovn-controller.ready'),
  };
  return {
    name: 'kovn-controller',
    netns: NET.cpNs,
    prepare: () => {
      rmSync(cfg.readyFile ?? '', { force: true });
      writeFileSync(cfgFile, JSON.stringify(cfg, null, 2));
    },
    daemon: { name: 'kovn-controller', netns: NET.cpNs, cmd: node24, args: [join(REPO, 'watchers/main.ts'), cfgFile] },
    health: () => Promise.resolve(readyPid('kovn-controller', cfg.readyFile)),
    startTimeoutMs: 60_000,
  };
}

export function nodeAgent(i: number, family: IpFamily, bundle = ''): Component {
  const p = nodePaths(i);
  const name = `${p.name}-kovn-agent`;
  const cfgFile = join(p.dir, 'agent.json');
  const cfg: NodeAgentConfig = {
    node: p.name,
    kubeconfig: join(p.dir, 'kovn-agent.kubeconfig'),
    temporal: { address: `${NET.cpIp}:7233`, namespace: TEMPORAL_NAMESPACE },
    ovsSock: p.ovsSock,
    encapIp: p.ip,
    sbRemote: SB_TCP,
    gatewayInterface: 'eth0',
    ipamFile: join(p.dir, 'kovn', 'ipam.json'),
    cniSocket: join(p.dir, 'kovn', 'cni.sock'),
    cniBinDir: p.cniBinDir,
    cniConfDir: p.cniConfDir,
    cniPlugin: bin('kovn-cni'),
    cluster: clusterConfig(family),
    sweepSeconds: 300,
    workflowBundle: bundle,
    readyFile: join(dirs.run, `${name}.ready`),
  };
  return {
    name,
    netns: p.ns,
    prepare: () => {
      rmSync(cfg.readyFile ?? '', { force: true });
      writeFileSync(cfgFile, JSON.stringify(cfg, null, 2));
    },
    daemon: { name, netns: p.ns, cmd: node24, args: [join(REPO, 'node-agent/main.ts'), cfgFile] },
    health: () => Promise.resolve(readyPid(name, cfg.readyFile)),
    startTimeoutMs: 60_000,
  };
}
