import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { NET, PORTS, STATE, dirs, files } from './config.ts';
import { controlPlane, controlPlaneCerts } from './actions/control-plane.ts';
import { forwarders } from './actions/forwarders.ts';
import { nodeComponents, nodePaths, prepareNode } from './actions/node.ts';
import { ovnCentral } from './actions/ovn-central.ts';
import { temporal } from './actions/temporal.ts';
import { underlay } from './actions/underlay.ts';
import type { Component } from './actions/types.ts';
import { imageTar } from './image.ts';
import { ensureCa } from './pki.ts';
import { runningPid, startDaemon, waitHealthy } from './proc.ts';
import { elapsed, info, step } from './progress.ts';
import { GO_TOOLS, isBuilt } from './tools.ts';
import { kubectlJson } from './kubectl.ts';
import { sleep } from '../../lib/exec.ts';

/** Starts a component unless it already runs healthy; then runs its idempotent `after` hook. */
async function ensure(c: Component): Promise<string> {
  let note = 'already running';
  if (runningPid(c.name) === undefined) {
    await c.prepare?.();
    startDaemon(c.daemon);
    note = '';
  }
  await waitHealthy(c.name, c.health, c.startTimeoutMs ?? 30_000);
  await c.after?.();
  return note;
}

const ensureAll = async (cs: readonly Component[]): Promise<void> => {
  for (const c of cs) await step(c.name, () => ensure(c), true);
};

/** Number of nodes the box has (recorded by `up`). */
export function recordedNodes(): number {
  if (!existsSync(files.nodesFile)) return 0;
  const n = Number((JSON.parse(readFileSync(files.nodesFile, 'utf8')) as { nodes?: unknown }).nodes);
  return Number.isInteger(n) && n > 0 ? n : 0;
}

function preflight(): void {
  if (process.getuid?.() !== 0) throw new Error('kovn up needs root (network namespaces, mounts, OVS)');
  const missing = GO_TOOLS.filter((t) => !isBuilt(t)).map((t) => t.module);
  if (missing.length) throw new Error(`tools not built: ${missing.join(', ')}; run \`kovn install\` (or \`npm start\`)`);
  if (!existsSync(imageTar())) throw new Error('pod image not built; run `kovn install` (or `npm start`)');
}

async function waitNodes(count: number): Promise<string> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const list = await kubectlJson<{ items: { metadata: { name: string }; status?: { addresses?: { type: string; address: string }[] } }[] }>(
      ['get', 'nodes']).catch(() => ({ items: [] }));
    const registered = list.items.filter((n) => n.status?.addresses?.some((a) => a.type === 'InternalIP'));
    if (registered.length >= count) return `${registered.length} registered`;
    if (Date.now() > deadline) {
      throw new Error(`only ${registered.length}/${count} nodes registered after 120s; see ${dirs.log}/node-*-kubelet.log`);
    }
    await sleep(250);
  }
}

/** Brings the cluster in a box up; a second call changes nothing. */
export async function up(opts: { nodes: number }): Promise<void> {
  const t0 = performance.now();
  preflight();
  const existing = recordedNodes();
  const nodes = Math.max(opts.nodes, existing);
  if (existing > opts.nodes) info(`note: the box already has ${existing} nodes; keeping them (run \`kovn down\` first to shrink)`);
  info(`==> kovn up: ${nodes} nodes, state in ${STATE}`);
  for (const d of [dirs.pid, dirs.log, dirs.run]) mkdirSync(d, { recursive: true });
  writeFileSync(files.nodesFile, JSON.stringify({ nodes }));

  await step('certificates', async () => {
    const made = [await ensureCa(), await controlPlaneCerts()].some(Boolean);
    return made ? '' : 'already there';
  }, true);
  await step('underlay', underlay, true);
  // Three independent chains start together; each step still reports on its own.
  await Promise.all([
    ensureAll([...controlPlane().slice(0, 2), ...forwarders(['apiserver']), ...controlPlane().slice(2)]),
    ensureAll([temporal(), ...forwarders(['temporal', 'temporal-ui'])]),
    ensureAll(ovnCentral()),
  ]);
  await Promise.all(Array.from({ length: nodes }, async (_, k) => {
    const i = k + 1;
    await step(`${nodePaths(i).name} namespace`, async () => ((await prepareNode(i)) ? '' : 'already there'), true);
    await ensureAll(nodeComponents(i));
  }));
  await step('nodes registered', () => waitNodes(nodes), true);
  info(`==> up in ${elapsed(t0)}
  kubeconfig:   ${files.adminKubeconfig}
  export KUBECONFIG=${files.adminKubeconfig}
  Temporal:     127.0.0.1:${PORTS.temporal} (namespace kovn)
  Temporal UI:  http://127.0.0.1:${PORTS.temporalUi}/namespaces/kovn/workflows
  OVN NB / SB:  unix:${files.nbSock} / unix:${files.sbSock} (nodes: tcp:${NET.cpIp}:6641 / 6642)`);
}
