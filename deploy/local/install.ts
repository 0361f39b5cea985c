import { mkdirSync } from 'node:fs';
import { CACHE } from './config.ts';
import { buildImage } from './image.ts';
import { step, info, elapsed } from './progress.ts';
import { GO_TOOLS, buildTool, isBuilt, toolDir } from './tools.ts';
import { run, runRaw } from '../../lib/exec.ts';

/** Debian packages the box needs: the OVN/OVS data plane, the container runtime, and tools its steps call. */
export const APT_PACKAGES = [
  'ovn-central', 'ovn-host', 'openvswitch-switch', 'python3-openvswitch',
  'containerd', 'runc', 'busybox-static',
  'iproute2', 'iptables', 'ethtool', 'conntrack', 'socat', 'curl', 'openssl', 'util-linux', 'tar', 'procps', 'kmod',
];

async function missingPackages(): Promise<string[]> {
  const r = await runRaw('dpkg-query', ['-W', '-f=${Package} ${db:Status-Status}\n', ...APT_PACKAGES]);
  const installed = new Set(r.stdout.split('\n').filter((l) => l.endsWith(' installed')).map((l) => l.split(' ')[0]));
  return APT_PACKAGES.filter((p) => !installed.has(p));
}

/**
 * The one install step: Debian packages, Go-built tools (built once into the cache, keyed by version),
 * the pod image. Idempotent: what is there already is skipped.
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
  await step('pod image kovn.local/toolbox:1', async () => {
    await buildImage();
    return '';
  });
  info(`install complete in ${elapsed(t0)}`);
}
