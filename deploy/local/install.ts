import { mkdirSync } from 'node:fs';
import { CACHE } from './config.ts';
import { IMAGES, buildImage } from './image.ts';
import { step, info, elapsed } from './progress.ts';
import { GO_TOOLS, buildTool, isBuilt, toolDir } from './tools.ts';
import { run, runRaw } from '../../lib/exec.ts';

/**
 * Every host binary the box, its daemons, the tests and the benchmarks call, with the Debian package
 * that brings it. The install step installs the packages and then checks the binaries, so a tool that
 * only a developer's machine happened to have fails the install (and so `npm test`) at once, by name.
 */
export const HOST_TOOLS: Record<string, string> = {
  // the data plane and its tools
  'ovsdb-server': 'openvswitch-switch', 'ovs-vswitchd': 'openvswitch-switch', 'ovs-vsctl': 'openvswitch-switch',
  'ovs-appctl': 'openvswitch-switch', 'ovs-ofctl': 'openvswitch-common', 'ovsdb-tool': 'openvswitch-switch', 'ovsdb-client': 'openvswitch-switch',
  'ovn-northd': 'ovn-central', 'ovn-nbctl': 'ovn-central', 'ovn-sbctl': 'ovn-central', 'ovn-controller': 'ovn-host',
  // the container runtime (kubelet also calls mount, iptables and conntrack)
  containerd: 'containerd', ctr: 'containerd', runc: 'runc', mount: 'mount', umount: 'mount',
  iptables: 'iptables', conntrack: 'conntrack',
  // namespaces, links and probes: the box, the node agent's plug script, the suites
  ip: 'iproute2', nsenter: 'util-linux', ethtool: 'ethtool', ping: 'iputils-ping', socat: 'socat', curl: 'curl',
  openssl: 'openssl', tar: 'tar', ps: 'procps', sh: 'dash', bash: 'bash', sha256sum: 'coreutils', busybox: 'busybox-static',
  // the independent OVSDB client the ovsdb suite checks against (OVS's Python IDL)
  python3: 'python3-openvswitch',
};

/** Debian packages the box needs: those of HOST_TOOLS, plus kernel module tools its steps call. */
export const APT_PACKAGES = [...new Set([...Object.values(HOST_TOOLS), 'python3', 'kmod'])];

/** Host tools not on PATH (python3 is Debian's, with OVS's IDL importable). */
export async function missingTools(): Promise<string[]> {
  const out: string[] = [];
  for (const [tool, pkg] of Object.entries(HOST_TOOLS)) {
    const ok = tool === 'python3'
      ? (await runRaw('/usr/bin/python3', ['-c', 'import ovs.db.idl'])).code === 0
      : (await runRaw('sh', ['-c', 'command -v "$1"', 'sh', tool], { env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' } })).code === 0;
    if (!ok) out.push(`${tool} (Debian package ${pkg})`);
  }
  return out;
}

async function missingPackages(): Promise<string[]> {
  const r = await runRaw('dpkg-query', ['-W', '-f=${Package} ${db:Status-Status}\n', ...APT_PACKAGES]);
  const installed = new Set(r.stdout.split('\n').filter((l) => l.endsWith(' installed')).map((l) => l.split(' ')[0]));
  return APT_PACKAGES.filter((p) => !installed.has(p));
}

/**
 * The one install step: Debian packages, Go-built tools (built once into the cache, keyed by version),
 * the images pods run. Idempotent: what is there already is skipped.
 */
export async function install(): Promise<void> {
  const t0 = performance.now();
  mkdirSync(CACHE, { recursive: true });
  const missing = await missingPackages();
  if (missing.length > 0) {
    await step(`apt packages: ${missing.join(' ')}`, async () => {
      const env = { DEBIAN_FRONTEND: 'noninteractive' };
      await run('apt-get', ['update', '-qq'], { env, timeoutMs: 600_000 });
      await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env, timeoutMs: 1_200_000 });
      // Debian's packages start their own daemons on install; the box runs its own, so stop those.
      for (const svc of ['ovn-central', 'ovn-host', 'openvswitch-switch', 'containerd']) {
        await runRaw('systemctl', ['disable', '--now', svc], { timeoutMs: 30_000 });
      }
      return '';
    });
  }
  for (const tool of GO_TOOLS) {
    if (isBuilt(tool)) continue;
    await step(`go build ${tool.module} (${Object.keys(tool.binaries).join(', ')}) -> ${toolDir(tool)}`, async () => {
      await buildTool(tool);
      return '';
    });
  }
  for (const image of IMAGES) {
    await step(`image ${image.ref}`, async () => {
      await buildImage(image);
      return '';
    });
  }
  const absent = await missingTools();
  if (absent.length) throw new Error(`host tools missing after the install: ${absent.join(', ')}`);
  info(`install complete in ${elapsed(t0)}`);
}
