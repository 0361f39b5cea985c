/**
 * The node agent's activities. Regular ones (allocateAddress, releaseAddress, setupNode) are called by
 * the controller's workflows on this node's task queue; local ones (the CNI steps) run inside the
 * node-side CNI workflows this agent starts itself. Built by a factory that receives their clients.
 */
import { POD_NETWORKS, PodNetworks, readAnnotation } from '../lib/annotations.ts';
import type { Change } from '../lib/change.ts';
import type { ClusterConfig } from '../lib/cluster-config.ts';
import { z } from 'zod';
import { formatCidr, overlaps, parseCidr, parseIp } from '../lib/cidr.ts';
import { DNS_LABEL, DNS_SUBDOMAIN, POD_UID } from '../lib/names.ts';
import { CNI_NAME_RE, ifname } from '../cni/env.ts';
import { InvalidInputError } from '../lib/errors.ts';
import { mgmtPort, nodeAddresses, macFromIp } from '../activities/translate/topology.ts';
import { podNetworks, podPortName } from '../activities/translate/pod.ts';
import { CNI_ERR_TRY_AGAIN_LATER, CniError } from '../cni/errors.ts';
import { renameSync } from 'node:fs';
import { Ipam } from './ipam.ts';
import type { Allocation } from './ipam.ts';
import type { V1Pod } from '@kubernetes/client-node';
import type { NodePods } from './pod-watch.ts';
import { getPod } from '../lib/kube.ts';
import type { Kube } from '../lib/kube.ts';
import { POD_KEY, SANDBOX_KEY, deletePort, ensureChassis, ensurePort, podPorts, systemId, waitOvnInstalled } from './ovs.ts';
import type { OvsClient, PodPort } from './ovs.ts';
import { checkVeth, configureMgmtPort, hostIfname, plugVeth, unplugVeth } from './plug.ts';
import { bridgeFor, bridgeMapping, ensureHostMasquerade, gatewayFacts } from './gateway.ts';
import type { GatewayFacts } from '../activities/translate/gateway.ts';
import type { StaleFlow } from '../activities/translate/service.ts';
import { flushStale } from './conntrack.ts';

/** The same addresses, in any order ("10.244.1.5/24" and "10.244.1.5/24"). */
const sameAddresses = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && [...a].sort().join() === [...b].sort().join();

export interface NodeAgentDeps {
  node: string;
  /** The chassis settings the agent keeps in Open_vSwitch (system-id defaults to the node name). */
  chassis: { encapIp: string; sbRemote: string };
  /** The gateway interface; the external bridge is made from it at start (ensureExternalBridge). */
  gatewayInterface: string;
  /** Re-installs the external bridge's flows if they differ (keepBridgeFlows). */
  syncBridgeFlows?: () => Promise<void>;
  ipamFile: string;
  ovs: OvsClient;
  /** The node's Open_vSwitch database socket; its ovs-vswitchd (for conntrack) is found beside it. */
  ovsSock: string;
  pods: NodePods;
  cluster: ClusterConfig;
  /** For live reads: a pod's address is freed only once the apiserver itself says the pod is gone. */
  kube: Kube;
  /** Settles once a lost allocation store is rebuilt: nothing allocates, frees or re-keys before. */
  restored?: Promise<void>;
}

export interface PodAttachment {
  namespace: string;
  name: string;
  uid: string;
  containerId: string;
  netns: string;
  ifname: string;
}

export interface AttachmentResult {
  /** Where the ADD's time went, in ms: waiting for the annotation, plugging, waiting for ovn-installed. */
  timings?: { annotationMs: number; plugMs: number; installedMs: number };
  mac: string;
  ips: string[];
  gateways: string[];
  hostIfname: string;
  mtu: number;
  changes: Change[];
}

/** What a missed DEL left behind on a node (see findOrphans). */
export interface Orphans {
  /** pod-gone: found by the agent, each rechecked before removal; runtime-gc: the runtime's CNI GC said so. */
  reason: 'pod-gone' | 'runtime-gc';
  ports: PodPort[];
  addresses: { uid: string; pod: string; ips: string[] }[];
}

/**
 * The inputs the controller's workflows send this agent, validated at the edge: a workflow (or anyone
 * who can start one on this node's queue) never gets an address outside the cluster's networks, a
 * subnet of the wrong size, or a pod key that is no Kubernetes name.
 */
function inputSchemas(cluster: ClusterConfig) {
  const uid = z.string().regex(POD_UID, 'not a pod UID');
  const namespace = z.string().regex(DNS_LABEL, 'not a namespace name');
  const name = z.string().regex(DNS_SUBDOMAIN, 'not a pod name');
  const pod = z.string().refine((p) => { const [ns = '', n = '', rest] = p.split('/'); return rest === undefined && DNS_LABEL.test(ns) && DNS_SUBDOMAIN.test(n); }, 'not namespace/name');
  const subnet = z.string().refine((s) => {
    try {
      const c = parseCidr(s);
      return formatCidr(c) === s && cluster.clusterNetworks.some((n) => {
        const net = parseCidr(n.cidr);
        return net.family === c.family && c.prefix === n.hostPrefix && overlaps(net, c);
      });
    } catch {
      return false;
    }
  }, 'not a node subnet of the cluster networks');
  const subnets = z.array(subnet).min(1).max(cluster.clusterNetworks.length);
  const containerId = z.string().regex(CNI_NAME_RE, 'not a container ID').max(256);
  // A pod port's host end is named after its sandbox; the management port (k8s-*) is never one.
  const hostIf = ifname.refine((n) => CNI_NAME_RE.test(n) && !n.startsWith('k8s-'), 'not a pod port name');
  const netns = z.string().regex(/^\/(var\/run|run)\/netns\/[^/]+$|^\/proc\/\d+\/ns\/net$/, 'not a network namespace path');
  const ipWithPrefix = z.string().refine((a) => { try { const [ip = '', len] = a.split('/'); parseIp(ip); return len !== undefined && /^\d+$/.test(len); } catch { return false; } }, 'not an address/prefix');
  const ip = z.string().refine((a) => { try { parseIp(a); return true; } catch { return false; } }, 'not an IP address');
  const attachment = z.object({ namespace, name, uid: z.union([uid, z.literal('')]), containerId, netns, ifname });
  const net = { ips: z.array(ipWithPrefix).min(1).max(2), mac: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/, 'not a MAC address') };
  return {
    allocate: z.object({ uid, pod, subnets }),
    release: z.object({ uid }),
    setup: z.object({ subnets }),
    waitNetwork: z.object({ namespace, name, uid: z.union([uid, z.literal('')]) }),
    allocatePod: z.object({ namespace, name, uid: z.union([uid, z.literal('')]) }),
    held: z.object({ uid, pod, ips: z.array(ipWithPrefix).min(1).max(2) }),
    rebuild: z.object({ subnets: z.array(subnet).max(cluster.clusterNetworks.length), ports: z.array(z.object({ uid, pod, ips: z.array(ipWithPrefix).min(1).max(2) })) }),
    plug: attachment.extend({ ...net, gateways: z.array(ip).max(2) }),
    check: attachment.extend(net),
    installed: z.object({ hostIfname: hostIf }),
    unplug: z.object({ containerId }),
    flush: z.object({
      flows: z.array(z.object({ protocol: z.enum(['udp', 'sctp']), vip: ip, port: z.number().int().min(1).max(65_535), backend: ip, backendPort: z.number().int().min(1).max(65_535) })).max(10_000),
    }),
    orphans: z.object({
      reason: z.enum(['pod-gone', 'runtime-gc']),
      ports: z.array(z.object({ name: hostIf, ifaceId: z.string(), sandbox: z.string(), uid: z.string(), pod: z.string() })),
      addresses: z.array(z.object({ uid, pod, ips: z.array(ipWithPrefix) })),
    }),
  };
}

function parseInput<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const first = r.error.issues[0];
  throw new InvalidInputError('InvalidActivityInput', `${what}: ${first?.path.join('.') || '(input)'}: ${first?.message ?? 'invalid'}`);
}

/**
 * Why a pod's network is kept: undefined only when the apiserver itself (a live read, never a cache that
 * a cut watch may have left stale) says the pod incarnation is gone or done.
 */
async function podLive(kube: Kube, node: string, pod: string, uid: string): Promise<string | undefined> {
  const [namespace = '', name = ''] = pod.split('/');
  let p: V1Pod | undefined;
  try {
    p = await getPod(kube, namespace, name);
  } catch (err) {
    return `the apiserver could not confirm that ${pod} is gone (${err instanceof Error ? err.message : String(err)})`;
  }
  // Bound elsewhere (a node asked for a pod that was never its own): not this node's to keep.
  const live = p?.metadata?.uid === uid && p.spec?.nodeName === node && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed';
  return live ? `${pod} (uid ${uid}) still exists` : undefined;
}

/** Why an address is kept instead of freed: its pod's port is still plugged here, or its pod is not confirmed gone. */
async function stillInUse(kube: Kube, ovs: OvsClient, node: string, a: Allocation): Promise<string | undefined> {
  if (podPorts(ovs).some((p) => p.uid === a.uid)) return 'its pod\'s OVS port is still plugged on this node';
  return podLive(kube, node, a.pod, a.uid);
}

export function createNodeAgentActivities({ node, chassis, gatewayInterface, syncBridgeFlows, ipamFile, ovs, ovsSock, pods, cluster, kube, restored = Promise.resolve() }: NodeAgentDeps) {
  const bridge = bridgeFor(gatewayInterface);
  const inputs = inputSchemas(cluster);
  // The store is keyed by the node's subnets, which only setupNode sets: a release or an allocation
  // never re-keys it (that would drop every allocation and hand addresses out twice). A store that is
  // missing or corrupt is rebuilt from the cluster (rebuildAllocations) before anything else uses it.
  let ipam: Ipam | undefined;
  const current = (): Ipam | undefined => (ipam ??= Ipam.load(ipamFile));
  /** Frees an address once NB holds no port for it (setPortGone), it is unplugged here and its pod is gone. */
  const freeIfDue = async (uid: string): Promise<{ released: boolean; ips: string[]; kept?: string }> => {
    const i = current();
    const a = i?.get(uid);
    if (!i || !a) return { released: false, ips: [] };
    if (!i.portGone(uid)) return { released: false, ips: a.ips, kept: 'its logical port is not known to be gone from NB' };
    const kept = await stillInUse(kube, ovs, node, a);
    if (kept) return { released: false, ips: a.ips, kept };
    return { released: i.release(uid), ips: a.ips };
  };
  /** Removes an OVS port and its veth; then the address of its pod, if that was all that held it. */
  const unplug = async (host: string): Promise<Change[]> => {
    const was = podPorts(ovs).find((p) => p.name === host);
    const changes = await deletePort(ovs, host);
    if (await unplugVeth(host)) changes.push({ db: 'node', table: 'veth', row: host, op: 'delete' });
    if (was?.uid) {
      const r = await freeIfDue(was.uid);
      if (r.released) changes.push({ db: 'node', table: 'IPAM', row: `${was.pod} ${r.ips.join(',')}`, op: 'delete' });
    }
    return changes;
  };
  const rebuild = (r: { subnets: string[]; ports: { uid: string; pod: string; ips: string[] }[] }): Change[] => {
    if (r.subnets.length === 0) return [];
    const i = Ipam.open(ipamFile, r.subnets);
    const changes: Change[] = [];
    for (const a of r.ports) {
      if (!a.uid || !i.restore(a)) continue;
      changes.push({ db: 'node', table: 'IPAM', row: `${node}:${a.ips.join(',')}`, op: 'insert' });
    }
    ipam = i;
    return changes;
  };

  const activities = {
    /** The pod's addresses (the same ones on every call for one pod UID), persisted before returning. */
    async allocateAddress(input: { uid: string; pod: string; subnets: string[] }): Promise<{ ips: string[]; created: boolean }> {
      await restored;
      const { uid, pod, subnets } = parseInput(inputs.allocate, input, 'allocateAddress');
      let i = current();
      if (!i || i.subnets.length === 0) i = ipam = Ipam.open(ipamFile, subnets);
      if (i.subnets.join() !== subnets.join()) throw new Error(`node subnets are changing (${i.subnets.join()} -> ${subnets.join()}); waiting for the node's setup`);
      const had = i.get(uid);
      i.setPortGone(uid, false); // the controller is about to write its port again
      return { ips: i.allocate(uid, pod).ips, created: !had };
    },

    /**
     * Called once NB holds no port for the pod UID (the controller removed it, or said so): frees its
     * addresses when its pod is confirmed gone by a live read and its OVS port is gone. Otherwise keeps
     * them, says why, and remembers (durably) that only this node's checks remain: the unplug that ends
     * the pod here frees them, and the sweep as a last resort.
     */
    async releaseAddress(input: { uid: string }): Promise<{ released: boolean; ips: string[]; kept?: string }> {
      await restored;
      const { uid } = parseInput(inputs.release, input, 'releaseAddress');
      current()?.setPortGone(uid, true);
      return freeIfDue(uid);
    },

    /** CNI ADD, step 1: this node's address for the pod incarnation (allocated once per UID, persisted). */
    async allocatePod(input: { namespace: string; name: string; uid: string }): Promise<{ uid: string; ips: string[]; mac: string; gateways: string[]; created: boolean }> {
      await restored;
      const a = parseInput(inputs.allocatePod, input, 'allocatePod');
      // Runtimes pass K8S_POD_UID; without it, the incarnation this node's cache knows.
      const uid = a.uid || (await pods.waitFor(a.namespace, a.name, (p) => Boolean(p.metadata?.uid), 10_000, 'its UID')
        .catch(() => { throw new CniError(CNI_ERR_TRY_AGAIN_LATER, 'pod not seen yet', `pod ${a.namespace}/${a.name} is not in this node's cache`); })).metadata?.uid;
      const i = current();
      if (!uid) throw new InvalidInputError('NoPodUid', `pod ${a.namespace}/${a.name} has no UID`);
      if (!i || i.subnets.length === 0) throw new CniError(CNI_ERR_TRY_AGAIN_LATER, 'node network not ready', `node ${node} has no pod subnet yet`);
      const had = i.get(uid);
      const { ips } = i.allocate(uid, `${a.namespace}/${a.name}`);
      const net = podNetworks(ips, i.subnets).default;
      if (!net) throw new InvalidInputError('NoPodNetwork', `pod ${a.namespace}/${a.name} has no default network`);
      return { uid, ips: net.ip_addresses, mac: net.mac_address, gateways: net.gateway_ips ?? [], created: !had };
    },

    /** CNI ADD, after its port is published: its allocation is in the store (see Ipam.hold). */
    async holdAllocation(input: { uid: string; pod: string; ips: string[] }): Promise<void> {
      await restored;
      const a = parseInput(inputs.held, input, 'holdAllocation');
      // Missing from the store: put back only for a pod a live read does not show gone. An ADD that was
      // still retrying (its agent killed under it) when the pod's DEL freed the address must not take it
      // back: nothing would free it again before the sweep.
      if (!current()?.get(a.uid) && !(await podLive(kube, node, a.pod, a.uid))) {
        throw new InvalidInputError('PodGone', `pod ${a.pod} (uid ${a.uid}) is gone: its address stays free`);
      }
      if (!current()?.hold(a)) throw new InvalidInputError('AllocationChanged', `pod ${a.pod} (uid ${a.uid}) holds other addresses than ${a.ips.join(', ')} on node ${node}`);
    },

    /** An ADD's allocation whose address another port holds in NB: dropped, so the retry gets another. */
    async dropAllocation(input: { uid: string; pod: string; ips: string[] }): Promise<boolean> {
      await restored;
      const a = parseInput(inputs.held, input, 'dropAllocation');
      const i = current();
      return i?.get(a.uid)?.ips.join() === a.ips.join() ? i.release(a.uid) : false;
    },

    /** Whether the allocation store must be rebuilt (missing, or unreadable: set aside as `<file>.corrupt-<time>`). */
    allocationsLost(): { lost: boolean; reason?: string } {
      if (ipam) return { lost: false };
      try {
        return Ipam.load(ipamFile) ? { lost: false } : { lost: true, reason: `${ipamFile} does not exist` };
      } catch (err) {
        const aside = `${ipamFile}.corrupt-${Date.now()}`;
        renameSync(ipamFile, aside);
        return { lost: true, reason: `${err instanceof Error ? err.message : String(err)} (kept as ${aside})` };
      }
    },

    /**
     * Rebuilds a lost store from what the cluster shows: the ports of this node's switch in NB (read by
     * the controller), kovn's own rows. Not from pods' annotations: anyone allowed to write a pod (the
     * break-glass group) could set one and so pick an address. An ADD in flight puts its own allocation
     * back (holdAllocation) before it plugs.
     */
    rebuildAllocations(input: { subnets: string[]; ports: { uid: string; pod: string; ips: string[] }[] }): Promise<Change[]> {
      return Promise.resolve().then(() => rebuild(parseInput(inputs.rebuild, input, 'rebuildAllocations')));
    },


    /**
     * What a missed DEL left on this node (the agent was down, a sandbox vanished with its runtime): pod
     * ports whose pod UID is no longer bound here, and addresses of such pods older than `minAddressAgeMs`.
     * Read-only. A port is plugged only once its pod is in the cache, so a fresh port is never taken for
     * an orphan; and nothing is an orphan before the pods have been listed once (an empty cache then
     * means "not known yet", not "no pods").
     */
    findOrphans(minAddressAgeMs: number): Orphans {
      if (!pods.synced) return { reason: 'pod-gone', ports: [], addresses: [] };
      const ports = podPorts(ovs);
      const live = pods.liveUids();
      return {
        reason: 'pod-gone',
        ports: ports.filter((p) => p.uid !== '' && !live.has(p.uid)),
        addresses: (current()?.stale(live, minAddressAgeMs) ?? []).map(({ uid, pod, ips }) => ({ uid, pod, ips })),
      };
    },

    /** Removes orphans; those findOrphans found only after checking again that their pod is still gone. */
    async removeOrphans(input: Orphans): Promise<Change[]> {
      await restored;
      const o = parseInput(inputs.orphans, input, 'removeOrphans');
      // Only ports kovn plugged for a pod (they carry its sandbox key) are ever removed here.
      const plugged = new Set(podPorts(ovs).map((p) => p.name));
      o.ports = o.ports.filter((p) => plugged.has(p.name));
      if (o.reason === 'pod-gone' && !pods.synced) throw new Error('the pods of this node have not been listed yet');
      const live = o.reason === 'pod-gone' ? pods.liveUids() : new Set<string>();
      const changes: Change[] = [];
      for (const p of o.ports.filter((x) => !live.has(x.uid))) {
        // The runtime's own GC is proof for its sandboxes; for a pod the cache lacks, only the apiserver is.
        if (o.reason === 'pod-gone' && (await podLive(kube, node, p.pod, p.uid))) continue;
        changes.push(...(await unplug(p.name)));
      }
      for (const a of o.addresses.filter((x) => !live.has(x.uid))) {
        // The cache is not proof that a pod is gone (a watch cut for long, say): the apiserver is.
        const held = current()?.get(a.uid);
        if (!held || (await stillInUse(kube, ovs, node, held))) continue;
        if (current()?.release(a.uid)) changes.push({ db: 'node', table: 'IPAM', row: `${a.pod} ${a.ips.join(',')}`, op: 'delete' });
      }
      return changes;
    },

    async setupNode(input: { subnets: string[] }): Promise<{ chassisId: string; changes: Change[]; gateway: GatewayFacts }> {
      await restored;
      const { subnets } = parseInput(inputs.setup, input, 'setupNode');
      const i = current();
      if (!i || i.subnets.join() !== subnets.join()) ipam = Ipam.open(ipamFile, subnets);
      const changes = await ensureChassis(ovs, { systemId: node, ...chassis, bridgeMappings: bridgeMapping(bridge) });
      await ensureHostMasquerade(bridge, cluster);
      await syncBridgeFlows?.();
      const chassisId = systemId(ovs) ?? node;
      const name = mgmtPort(node);
      changes.push(...(await ensurePort(ovs, name, 'internal', { 'iface-id': name })));
      const { gateway, mgmt } = nodeAddresses(subnets);
      const routes = cluster.clusterNetworks.map((n) => {
        const gw = gateway.find((g) => g.includes(':') === n.cidr.includes(':'));
        return { dst: n.cidr, via: (gw ?? '').split('/')[0] ?? '' };
      });
      await configureMgmtPort(name, macFromIp(mgmt[0] ?? ''), mgmt, routes, cluster.mtu);
      return { chassisId, changes, gateway: await gatewayFacts(bridge) };
    },

    /** CNI ADD, step 1: the controller's share, written when the pod was bound: its pod-networks annotation. */
    async waitPodNetwork(input: { namespace: string; name: string; uid: string }): Promise<{ ips: string[]; mac: string; gateways: string[]; waitedMs: number }> {
      const a = parseInput(inputs.waitNetwork, input, 'waitPodNetwork');
      const t0 = Date.now();
      // What is plugged comes from this agent's own allocation for the pod UID, never from the annotation,
      // which anyone allowed to write the pod could have set: the annotation only says that the
      // controller has published that allocation (a forged one waits until the controller replaces it).
      const published = (p: V1Pod): Allocation | undefined => {
        if (a.uid && p.metadata?.uid !== a.uid) return undefined;
        const alloc = current()?.get(p.metadata?.uid ?? '');
        if (!alloc) return undefined;
        try {
          const net = readAnnotation(p.metadata?.annotations, POD_NETWORKS, PodNetworks)?.default;
          return net && sameAddresses(net.ip_addresses, alloc.ips) ? alloc : undefined;
        } catch {
          return undefined;
        }
      };
      const pod = await pods.waitFor(a.namespace, a.name, (p) => published(p) !== undefined, 60_000, `its allocation published in ${POD_NETWORKS}`).catch((err: unknown) => {
        throw new CniError(CNI_ERR_TRY_AGAIN_LATER, 'pod network not ready', err instanceof Error ? err.message : String(err));
      });
      const alloc = published(pod);
      const subnets = current()?.subnets ?? [];
      if (!alloc) throw new InvalidInputError('NoPodNetwork', `pod ${a.namespace}/${a.name} has no address of this node's`);
      const net = podNetworks(alloc.ips, subnets).default;
      if (!net) throw new InvalidInputError('NoPodNetwork', `pod ${a.namespace}/${a.name} has no default network`);
      return { ips: net.ip_addresses, mac: net.mac_address, gateways: net.gateway_ips ?? [], waitedMs: Date.now() - t0 };
    },

    /** CNI ADD, step 2: veth pair, addresses and routes in the pod, OVS port with the OVN interface id. */
    async plugPod(input: PodAttachment & { ips: string[]; mac: string; gateways: string[] }): Promise<AttachmentResult & { plugMs: number }> {
      const a = parseInput(inputs.plug, input, 'plugPod');
      const t0 = Date.now();
      const host = hostIfname(a.containerId);
      const ifaceId = podPortName(a.namespace, a.name);
      const iface = { netns: a.netns, ifname: a.ifname, hostIfname: host, mac: a.mac, ips: a.ips, gateways: a.gateways, mtu: cluster.mtu };
      // A re-ADD of a live sandbox (the runtime retrying, or asking again after a restart) gets the
      // attachment it already has: tearing it down would cut the pod's connections.
      const port = podPorts(ovs).find((p) => p.name === host);
      if (port?.ifaceId === ifaceId && port.uid === a.uid && (await checkVeth(iface).then(() => true, () => false))) {
        return { mac: a.mac, ips: a.ips, gateways: a.gateways, hostIfname: host, mtu: cluster.mtu, changes: [], plugMs: Date.now() - t0 };
      }
      await plugVeth(iface);
      const changes = await ensurePort(ovs, host, '', {
        'iface-id': ifaceId, 'iface-id-ver': a.uid, [SANDBOX_KEY]: a.containerId, [POD_KEY]: `${a.namespace}/${a.name}`,
      });
      // An earlier sandbox of this pod whose DEL never came: two interfaces with one iface-id would make
      // ovn-controller flap the binding between them, so the sandbox kubelet asks for now wins, once its
      // own port is in place (kubelet only makes a new sandbox when the old one is dead).
      for (const old of podPorts(ovs).filter((p) => p.ifaceId === ifaceId && p.name !== host)) changes.push(...(await unplug(old.name)));
      changes.push({ db: 'node', table: 'veth', row: `${host}<->${a.ifname}`, op: 'insert' });
      return { mac: a.mac, ips: a.ips, gateways: a.gateways, hostIfname: host, mtu: cluster.mtu, changes, plugMs: Date.now() - t0 };
    },

    /** CNI ADD, step 3: ovn-controller has bound the port and installed its flows. */
    async waitInstalled(input: { hostIfname: string }): Promise<{ waitedMs: number }> {
      const { hostIfname: host } = parseInput(inputs.installed, input, 'waitInstalled');
      const t0 = Date.now();
      await waitOvnInstalled(ovs, host, 30_000);
      return { waitedMs: Date.now() - t0 };
    },

    /**
     * CNI ADD once its port is published: holdAllocation, plugPod and waitInstalled as one local
     * activity, so the run has two activations fewer (each costs the workflow thread a few calls into
     * its sandbox). Each step is idempotent, so a retry of the whole is safe.
     */
    async attachPod(input: PodAttachment & { pod: string; ips: string[]; mac: string; gateways: string[] }): Promise<AttachmentResult & { plugMs: number; installedMs: number }> {
      await activities.holdAllocation({ uid: input.uid, pod: input.pod, ips: input.ips });
      const { plugMs, ...res } = await activities.plugPod(input);
      const { waitedMs } = await activities.waitInstalled({ hostIfname: res.hostIfname });
      return { ...res, plugMs, installedMs: waitedMs };
    },

    /** The pod incarnation a sandbox's OVS port was plugged for, if it still is. */
    sandboxPod(input: { containerId: string }): Promise<{ uid: string; pod: string } | undefined> {
      const { containerId } = parseInput(inputs.unplug, input, 'sandboxPod');
      const p = podPorts(ovs).find((x) => x.name === hostIfname(containerId));
      return Promise.resolve(p?.uid ? { uid: p.uid, pod: p.pod } : undefined);
    },

    /** CNI DEL: the OVS port and the veth pair; idempotent (also when the pod is gone from the API). */
    async unplugPod(input: { containerId: string }): Promise<Change[]> {
      const { containerId } = parseInput(inputs.unplug, input, 'unplugPod');
      return unplug(hostIfname(containerId));
    },

    /** Drops this node's conntrack entries of UDP/SCTP backends that left a Service's VIPs (called by the Service run). */
    async flushConntrack(input: { flows: StaleFlow[] }): Promise<Change[]> {
      const { flows } = parseInput(inputs.flush, input, 'flushConntrack');
      const n = await flushStale(ovsSock, flows);
      return n === 0 ? [] : [{ db: 'node', table: 'conntrack', row: `${node}: ${n} entries to ${[...new Set(flows.map((f) => `${f.backend}:${f.backendPort}`))].join(',')}`, op: 'delete' }];
    },

    async checkPod(input: PodAttachment & { ips: string[]; mac: string }): Promise<void> {
      const a = parseInput(inputs.check, input, 'checkPod');
      return checkVeth({ netns: a.netns, ifname: a.ifname, hostIfname: hostIfname(a.containerId), mac: a.mac, ips: a.ips, gateways: [], mtu: cluster.mtu });
    },
  };
  return activities;
}

export type NodeAgentActivities = ReturnType<typeof createNodeAgentActivities>;
