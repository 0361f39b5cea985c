import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { DNS, NET, PORTS, STATE, dirs, files } from './config.ts';
import { controlPlane, controlPlaneCerts } from './actions/control-plane.ts';
import { forwarders } from './actions/forwarders.ts';
import { nodeComponents, nodePaths, prepareNode, seedTunnelNeighbours } from './actions/node.ts';
import { ovnCentral } from './actions/ovn-central.ts';
import { clusterDns } from './actions/dns.ts';
import { echoServers, outside } from './actions/outside.ts';
import { temporal } from './actions/temporal.ts';
import { underlay } from './actions/underlay.ts';
import type { Component } from './actions/types.ts';
import { controller, kovnAccess, nodeAgent, workflowBundle } from './actions/kovn.ts';
import type { IpFamily } from './actions/kovn.ts';
import { IMAGES, imageTar } from './image.ts';
import { ensureCa } from './pki.ts';
import { holdFile, isHeld, startDaemon, stopDaemon, supervisorPid, waitHealthy } from './proc.ts';
import { elapsed, info, step } from './progress.ts';
import { GO_TOOLS, isBuilt } from './tools.ts';
import { kubectl, kubectlJson } from './kubectl.ts';
import { sleep } from '../../lib/exec.ts';

/**
 * Starts a component under its supervisor unless its supervisor already runs (it restarts the daemon by
 * itself), clearing a `kovn stop` hold; waits until it is healthy, then runs its idempotent `after` hook.
 */
export async function ensure(c: Component): Promise<string> {
  let note = 'already running';
  const held = isHeld(c.name);
  rmSync(holdFile(c.name), { force: true });
  if (supervisorPid(c.name) === undefined) {
    // A daemon whose supervisor is gone would not come back after a crash: run it under a new one.
    const orphan = await stopDaemon(c.name);
    await c.prepare?.();
    startDaemon(c.daemon);
    note = held ? 'was held by `kovn stop`' : orphan ? 'restarted under a new supervisor' : '';
  }
  await waitHealthy(c.name, c.health, c.startTimeoutMs ?? 30_000);
  await c.after?.();
  return note;
}

const ensureAll = async (cs: readonly Component[]): Promise<void> => {
  for (const c of cs) await step(c.name, () => ensure(c), true);
};

export interface BoxShape {
  nodes: number;
  /** Without kovn: a bare cluster, as before a network provider is installed. */
  bare: boolean;
  ipFamily: IpFamily;
}

/** What `up` recorded about the box, if anything. */
export function recorded(): BoxShape | undefined {
  if (!existsSync(files.nodesFile)) return undefined;
  const r = JSON.parse(readFileSync(files.nodesFile, 'utf8')) as Partial<BoxShape>;
  const nodes = Number(r.nodes);
  return { nodes: Number.isInteger(nodes) && nodes > 0 ? nodes : 0, bare: r.bare === true, ipFamily: r.ipFamily === 'dual' ? 'dual' : 'ipv4' };
}

export const recordedNodes = (): number => recorded()?.nodes ?? 0;

function preflight(): void {
  if (process.getuid?.() !== 0) throw new Error('kovn up needs root (network namespaces, mounts, OVS)');
  const missing = GO_TOOLS.filter((t) => !isBuilt(t)).map((t) => t.module);
  if (missing.length) throw new Error(`tools not built: ${missing.join(', ')}; run \`kovn install\` (or \`npm start\`)`);
  const unbuilt = IMAGES.filter((i) => !existsSync(imageTar(i))).map((i) => i.ref);
  if (unbuilt.length) throw new Error(`images not built: ${unbuilt.join(', ')}; run \`kovn install\` (or \`npm start\`)`);
  // Unix socket paths are limited to 107 bytes; the deepest the box makes is ovn-controller's control socket.
  const deepest = `${dirs.node('node-10')}/ovs/ovn-controller.4194304.ctl`;
  if (deepest.length > 107) throw new Error(`state dir ${STATE} is too deep for unix socket paths; set KOVN_STATE_DIR to a shorter path`);
}

/**
 * Polls until `check` returns a note (the step's result), or fails after `timeoutMs` with the last
 * state it saw and where to look.
 */
async function pollUntil(timeoutMs: number, check: () => Promise<{ done: string } | { waiting: string }>, hint: string): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await check();
    if ('done' in r) return r.done;
    if (Date.now() > deadline) throw new Error(`${r.waiting} after ${timeoutMs / 1000}s; see ${hint}`);
    await sleep(250);
  }
}

interface NodeList { items: { status?: { addresses?: { type: string }[]; conditions?: { type: string; status: string }[] } }[] }
const listNodes = (): Promise<NodeList> => kubectlJson<NodeList>(['get', 'nodes']).catch((): NodeList => ({ items: [] }));

const waitNodes = (count: number): Promise<string> => pollUntil(120_000, async () => {
  const n = (await listNodes()).items.filter((x) => x.status?.addresses?.some((a) => a.type === 'InternalIP')).length;
  return n >= count ? { done: `${n} registered` } : { waiting: `only ${n}/${count} nodes registered` };
}, `${dirs.log}/node-*-kubelet.log`);

const waitReady = (count: number): Promise<string> => pollUntil(120_000, async () => {
  const n = (await listNodes()).items.filter((x) => x.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
  return n >= count ? { done: `${n} Ready` } : { waiting: `only ${n}/${count} nodes Ready` };
}, `${dirs.log}/node-*-kovn-agent.log and kovn-controller.log`);

/** Brings the cluster in a box up, every component of it (components held by `kovn stop` too); a second call changes nothing. */
export async function up(opts: BoxShape): Promise<void> {
  const t0 = performance.now();
  preflight();
  const before = recorded();
  const nodes = Math.max(opts.nodes, before?.nodes ?? 0);
  if ((before?.nodes ?? 0) > opts.nodes) info(`note: the box already has ${before?.nodes} nodes; keeping them (run \`kovn down\` first to shrink)`);
  if (before && (before.bare !== opts.bare || before.ipFamily !== opts.ipFamily)) {
    throw new Error(`the box runs ${before.bare ? 'bare' : 'with kovn'} (${before.ipFamily}); run \`kovn down\` before changing that`);
  }
  const { bare, ipFamily } = opts;
  info(`==> kovn up: ${nodes} nodes, ${bare ? 'bare (no network provider)' : `kovn, ${ipFamily}`}, state in ${STATE}`);
  for (const d of [dirs.pid, dirs.log, dirs.run]) mkdirSync(d, { recursive: true });
  writeFileSync(files.nodesFile, JSON.stringify({ nodes, bare, ipFamily }));

  await step('certificates', async () => {
    const made = [await ensureCa(), await controlPlaneCerts()].some(Boolean);
    return made ? '' : 'already there';
  }, true);
  await step('underlay', () => underlay(ipFamily), true);
  await step('outside', () => outside(ipFamily), true);
  // Four independent chains start together; each step still reports on its own.
  await Promise.all([
    ensureAll([...controlPlane(ipFamily).slice(0, 2), ...forwarders(['apiserver']), ...controlPlane(ipFamily).slice(2)]),
    ensureAll([temporal(), ...forwarders(['temporal', 'temporal-ui'])]),
    ensureAll(ovnCentral()),
    ensureAll(echoServers(ipFamily)),
  ]);
  let bundle = '';
  if (!bare) {
    await step('kovn access (certificates, RBAC)', async () => void (await kovnAccess(nodes)), true);
    bundle = await step('workflow bundle', async () => (await workflowBundle()).file, true);
    await ensureAll([controller(ipFamily, bundle)]);
  }
  await Promise.all(Array.from({ length: nodes }, async (_, k) => {
    const i = k + 1;
    await step(`${nodePaths(i).name} namespace`, async () => ((await prepareNode(i, ipFamily === 'dual')) ? '' : 'already there'), true);
    await ensureAll([...nodeComponents(i, ipFamily === 'dual'), ...(bare ? [] : [nodeAgent(i, ipFamily, bundle)])]);
  }));
  await step('tunnel neighbours', () => seedTunnelNeighbours(nodes), true);
  await step('nodes registered', () => waitNodes(nodes), true);
  // Pods are refused until the controller-manager has made the namespace's service account.
  await step('default service account', () => pollUntil(60_000, async () =>
    ((await kubectl(['get', 'serviceaccount', 'default', '-n', 'default', '-o', 'name']).then(() => true, () => false))
      ? { done: '' } : { waiting: 'no default service account' }), `${dirs.log}/kube-controller-manager.log`), true);
  if (!bare) {
    await step('nodes Ready', () => waitReady(nodes), true);
    await step('cluster DNS (CoreDNS)', clusterDns, true);
  }
  info(`==> up in ${elapsed(t0)}
  kubeconfig:   ${files.adminKubeconfig}
  export KUBECONFIG=${files.adminKubeconfig}
  Temporal:     127.0.0.1:${PORTS.temporal} (namespace kovn)
  Temporal UI:  http://127.0.0.1:${PORTS.temporalUi}/namespaces/kovn/workflows
  DNS:          ${bare ? 'none (no network provider)' : `kube-dns ${DNS.serviceIp} (CoreDNS, ${DNS.domain})`}
  OVN NB / SB:  unix:${files.nbSock} / unix:${files.sbSock} (nodes: tcp:${NET.cpIp}:6641 / 6642)
  outside:      ${NET.outsideNs}, external host ${NET.externalHostIp}${ipFamily === 'dual' ? ` and ${NET.externalHostIp6}` : ''} (HTTP :${NET.echo.http}, UDP echo :${NET.echo.udp})`);
}
