import { existsSync, readFileSync, readdirSync, rmSync, rmdirSync } from 'node:fs';
import { NS_PREFIX, STATE } from './config.ts';
import { nodeComponents, nodePaths } from './actions/node.ts';
import { recordedNodes } from './up.ts';
import { deleteNs, listNs } from './net.ts';
import { daemonsWithPidfile, drainSupervisors, pidsMentioning, runningPid, stopDaemon, stopPid, supervisedNames } from './proc.ts';
import { elapsed, info, step } from './progress.ts';
import { bin } from './tools.ts';
import { runRaw, sleep } from '../../lib/exec.ts';

/** Node indexes that have state on disk (whatever nodes.json says, a crashed `up` may have left more). */
function nodeIndexes(): number[] {
  const found = existsSync(`${STATE}/nodes`)
    ? readdirSync(`${STATE}/nodes`).map((d) => Number(/^node-(\d+)$/.exec(d)?.[1])).filter((n) => n > 0)
    : [];
  const recorded = Array.from({ length: recordedNodes() }, (_, k) => k + 1);
  return [...new Set([...found, ...recorded])].sort((a, b) => a - b);
}

/** Pod network namespaces (/run/netns/cni-*) of every sandbox a node's containerd knows. */
async function sandboxNetns(sock: string): Promise<string[]> {
  const ids = (await runRaw(bin('crictl'), ['-r', `unix://${sock}`, 'pods', '-q'], { timeoutMs: 15_000 })).stdout.split('\n').filter(Boolean);
  const paths: string[] = [];
  for (const id of ids) {
    const r = await runRaw(bin('crictl'), ['-r', `unix://${sock}`, 'inspectp', id], { timeoutMs: 15_000 });
    for (const m of r.stdout.matchAll(/"path":\s*"(\/(?:var\/)?run\/netns\/[^"]+)"/g)) if (m[1]) paths.push(m[1]);
  }
  return paths;
}

/**
 * Removes every pod sandbox through CRI, so containerd runs CNI DEL and unmounts each pod namespace;
 * repeated, since one `rmp --all` under load can leave some behind (ENVIRONMENT.md).
 */
async function removeSandboxes(i: number): Promise<string> {
  const p = nodePaths(i);
  if (runningPid(`${p.name}-containerd`) === undefined) return 'containerd not running';
  const netns = await sandboxNetns(p.containerdSock);
  let left = 0;
  for (let attempt = 0; attempt < 10; attempt++) {
    await runRaw(bin('crictl'), ['-r', `unix://${p.containerdSock}`, 'rmp', '--all', '--force'], { timeoutMs: 120_000 });
    const r = await runRaw(bin('crictl'), ['-r', `unix://${p.containerdSock}`, 'pods', '-q'], { timeoutMs: 15_000 });
    left = r.stdout.split('\n').filter(Boolean).length;
    if (left === 0) break;
    await sleep(200);
  }
  for (const ns of netns) {
    if (existsSync(ns)) {
      await runRaw('umount', ['-l', ns]);
      rmSync(ns, { force: true });
    }
  }
  return `${netns.length} sandboxes removed${left ? `, ${left} left` : ''}`;
}

/** Every mount point under the state dir, deepest first (kubelet bind-mounts its root onto itself). */
function mountsUnder(root: string): string[] {
  const lines = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  const points = lines.map((l) => l.split(' ')[4]).filter((m): m is string => !!m && (m === root || m.startsWith(`${root}/`)));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Stops exactly what `up` started and removes every namespace, link, mount and socket it made. */
export async function down(): Promise<void> {
  const t0 = performance.now();
  info(`==> kovn down (${STATE})`);
  const nodes = nodeIndexes();
  // Supervisors first: from here on nothing restarts, whatever exits while the rest goes down.
  await step('supervisors told to restart nothing', () => Promise.resolve(`${drainSupervisors()} supervisors`), true);
  // kubelets first (or they recreate what is removed), then the pods through CRI (their DELs go through
  // the node agent), then the rest.
  await Promise.all(nodes.map(async (i) => {
    const p = nodePaths(i);
    await step(`${p.name} kubelet stopped`, async () => ((await stopDaemon(`${p.name}-kubelet`)) ? '' : 'was not running'), true);
    await step(`${p.name} pods removed`, () => removeSandboxes(i), true);
    await stopDaemon(`${p.name}-kovn-agent`);
    for (const c of nodeComponents(i).reverse()) {
      if (c.name.endsWith('-kubelet')) continue;
      await stopDaemon(c.name);
    }
  }));
  // The rest in reverse order of start: forwarders, then control plane with etcd last.
  const order = ['kovn-controller', 'fwd-temporal-ui', 'fwd-temporal', 'fwd-apiserver', 'fwd-temporal-ui-cp', 'fwd-temporal-cp',
    'fwd-apiserver-cp', 'ovn-northd', 'ovn-sb', 'ovn-nb', 'temporal', 'kube-scheduler', 'kube-controller-manager',
    'kube-apiserver', 'etcd'];
  await step('daemons stopped', async () => {
    const rest = [...new Set([...daemonsWithPidfile(), ...supervisedNames()])];
    const stopped: string[] = [];
    for (const name of [...order, ...rest.filter((n) => !order.includes(n))]) if (await stopDaemon(name)) stopped.push(name);
    // What outlived its parent (containerd shims, pod processes) still names our state dir.
    const stray = pidsMentioning(STATE, 'containerd-shim');
    await Promise.all(stray.map((pid) => stopPid(pid, 3000)));
    return `${stopped.length} daemons${stray.length ? `, ${stray.length} stray processes` : ''}`;
  }, true);
  await step('mounts and namespaces removed', async () => {
    // Repeated: a mount point can carry stacked mounts (one `umount` takes the top one).
    const mounts = mountsUnder(STATE);
    for (let left = mounts, round = 0; left.length > 0 && round < 5; left = mountsUnder(STATE), round++) {
      for (const m of left) await runRaw('umount', ['-l', m]);
    }
    const ours = listNs().filter((n) => n.startsWith(NS_PREFIX));
    for (const ns of ours) await deleteNs(ns);
    // containerd 1.6 puts shim sockets under /run/containerd/s whatever its config says: remove the
    // directories it made there once they are empty (rmdir refuses anything else).
    for (const d of ['/run/containerd/s', '/run/containerd/runc/k8s.io', '/run/containerd/runc', '/run/containerd']) {
      try { rmdirSync(d); } catch { /* not empty, or not there */ }
    }
    return `${mounts.length} mounts, ${ours.length} namespaces`;
  }, true);
  await step('state removed', () => Promise.resolve(rmSync(STATE, { recursive: true, force: true })), true);
  info(`==> down in ${elapsed(t0)}`);
}

