import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, mkdirSync, rmSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE, REPO } from './config.ts';
import { run } from '../../lib/exec.ts';
import { LATEST_VERSION, SUPPORTED_VERSIONS } from '../../cni/versions.ts';

/** A Go-built tool: one module (under tools/go/, or kovn's own at `dir`), built into a cache dir keyed by its sources. */
export interface GoTool {
  module: string;
  /** The module's directory in the repo, when not tools/go/<module> (kovn's own Go code). */
  dir?: string;
  /** Binary name -> Go package path. */
  binaries: Record<string, string>;
  ldflags?: string;
}

const K8S_VERSION = 'v1.35.4';
const k8sLdflags = [
  `-X k8s.io/component-base/version.gitVersion=${K8S_VERSION}`,
  '-X k8s.io/component-base/version.gitMajor=1',
  '-X k8s.io/component-base/version.gitMinor=35',
  '-X k8s.io/component-base/version.gitTreeState=clean',
].join(' ');

export const GO_TOOLS: readonly GoTool[] = [
  { module: 'temporal', binaries: { temporal: 'github.com/temporalio/cli/cmd/temporal' } },
  { module: 'etcd', binaries: { etcd: 'go.etcd.io/etcd/server/v3', etcdctl: 'go.etcd.io/etcd/etcdctl/v3' } },
  {
    module: 'kubernetes',
    ldflags: k8sLdflags,
    binaries: {
      'kube-apiserver': 'k8s.io/kubernetes/cmd/kube-apiserver',
      'kube-controller-manager': 'k8s.io/kubernetes/cmd/kube-controller-manager',
      'kube-scheduler': 'k8s.io/kubernetes/cmd/kube-scheduler',
      kubectl: 'k8s.io/kubernetes/cmd/kubectl',
      kubelet: 'k8s.io/kubernetes/cmd/kubelet',
    },
  },
  // The box's cluster DNS: CoreDNS with only the plugins it uses (tools/go/coredns/main.go).
  { module: 'coredns', ldflags: '-s -w', binaries: { coredns: '.' } },
  { module: 'crictl', binaries: { crictl: 'sigs.k8s.io/cri-tools/cmd/crictl' } },
  // kovn's CNI plugin (cni/shim), with the CNI versions it reports taken from cni/versions.ts.
  {
    module: 'kovn-cni',
    dir: 'cni/shim',
    ldflags: `-s -w -X main.supportedVersions=${SUPPORTED_VERSIONS.join(',')} -X main.latestVersion=${LATEST_VERSION}`,
    binaries: { 'kovn-cni': '.' },
  },
  {
    module: 'cni',
    binaries: {
      cnitool: 'github.com/containernetworking/cni/cnitool',
      bridge: 'github.com/containernetworking/plugins/plugins/main/bridge',
      'host-local': 'github.com/containernetworking/plugins/plugins/ipam/host-local',
      loopback: 'github.com/containernetworking/plugins/plugins/main/loopback',
    },
  },
];

/** The cache dir of a tool: its name plus a hash of everything that decides the build. */
export function toolDir(tool: GoTool): string {
  const src = sourceDir(tool);
  const h = createHash('sha256');
  // go.mod, go.sum (a module of the standard library alone has none), then every Go source.
  const sources = readdirSync(src).filter((f) => f.endsWith('.go')).sort();
  for (const f of ['go.mod', 'go.sum', ...sources]) if (existsSync(join(src, f))) h.update(readFileSync(join(src, f)));
  h.update(JSON.stringify(tool));
  return join(CACHE, 'tools', `${tool.module}-${h.digest('hex').slice(0, 12)}`);
}

const sourceDir = (tool: GoTool): string => join(REPO, tool.dir ?? join('tools/go', tool.module));

const byBinary = new Map(GO_TOOLS.flatMap((t) => Object.keys(t.binaries).map((b) => [b, t] as const)));

/** Absolute path of a Go-built binary in the cache (whether or not it has been built yet). */
export function bin(name: string): string {
  const tool = byBinary.get(name);
  if (!tool) throw new Error(`unknown tool binary ${name}`);
  return join(toolDir(tool), name);
}

export function isBuilt(tool: GoTool): boolean {
  return existsSync(join(toolDir(tool), '.complete'));
}

/** Builds every binary of a tool into a temp dir and moves it into place, so a half build never counts. */
export async function buildTool(tool: GoTool): Promise<void> {
  const dest = toolDir(tool);
  const tmp = `${dest}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const goBin = existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : 'go';
  for (const [name, pkg] of Object.entries(tool.binaries)) {
    const args = ['build', '-trimpath', '-o', join(tmp, name)];
    if (tool.ldflags) args.push('-ldflags', tool.ldflags);
    args.push(pkg);
    await run(goBin, args, { cwd: sourceDir(tool), env: { CGO_ENABLED: '0' } });
  }
  writeFileSync(join(tmp, '.complete'), new Date().toISOString());
  rmSync(dest, { recursive: true, force: true });
  renameSync(tmp, dest);
}
