/**
 * The Pod kind's activities: its read (observePod, run local) apart from its writes (the logical
 * switch port and the `k8s.ovn.org/pod-networks` annotation; regular activities). Built by a factory
 * that receives their clients; failures are classified by the worker's activity interceptor.
 */
import { POD_NETWORKS, PodNetworks, readAnnotation, sameAnnotation } from '../lib/annotations.ts';
import type { Change } from '../lib/change.ts';
import type { V1Pod } from '@kubernetes/client-node';
import { annotatePod, getNode, getPod, listNetworkPolicies, recordEvent } from '../lib/kube.ts';
import type { ControllerDeps } from './common.ts';
import { InvalidInputError } from '../lib/errors.ts';
import { contains, offsetOf, parseCidr, size } from '../lib/cidr.ts';
import { deleteOwned, ensurePodPort, nodeSubnetsInNb, switchPortAddresses } from './nb.ts';
import { podNetworks, podPort, podPortName } from './translate/pod.ts';
import { podPortGroups } from './translate/network-policy.ts';
import { policyProgress } from './namespace.ts';

export interface PodKey { namespace: string; name: string }

export interface PodObservation {
  /** waiting: bound to a node whose network is not set up yet; nodeGone: bound to a node that does not exist. */
  state: 'absent' | 'hostNetwork' | 'unscheduled' | 'terminal' | 'nodeGone' | 'waiting' | 'active';
  uid?: string;
  node?: string;
  /** The node's subnets as the Northbound DB holds them (the source of truth). */
  nodeSubnets?: string[];
  /** The pod's existing logical port: which pod incarnation and node it was written for. */
  port?: { uid?: string; node?: string };
  /** Whether the pod's node still exists (an address can only be released on a live node). */
  portNodeExists?: boolean;
}

/** What a node's CNI ADD asks the controller to publish: the address its agent allocated for the pod. */
export interface PodPublication extends PodKey { uid: string; node: string; ips: string[] }

/** Whether `ip/len` is a pod address of `subnet`: its prefix, past the network, gateway and management addresses, not broadcast. */
function inSubnet(ipWithPrefix: string, subnet: string): boolean {
  try {
    const [ip = '', len] = ipWithPrefix.split('/');
    const s = parseCidr(subnet);
    if (Number(len) !== s.prefix || !contains(s, ip)) return false;
    const off = offsetOf(s, ip);
    return off >= 3n && (s.family === 6 || off < size(s) - 1n);
  } catch {
    return false;
  }
}

export default function createPodActivities({ nb, kube, cfg }: ControllerDeps) {
  const reads = {
    /** Whether NB still holds the pod incarnation's port (its node frees the address only once it does not). */
    podPortHeld({ namespace, name, uid }: PodKey & { uid: string }): Promise<boolean> {
      const lsp = nb.cache.table('Logical_Switch_Port').byIndex({ name: podPortName(namespace, name) });
      return Promise.resolve(lsp?.options['iface-id-ver'] === uid);
    },

    async nodeExists({ node }: { node: string }): Promise<boolean> {
      return (await getNode(kube, node)) !== undefined;
    },

    /** What the Northbound DB holds for a node's pods, for its agent to rebuild a lost allocation store. */
    nodeAllocations({ node }: { node: string }): Promise<{ subnets: string[]; ports: { uid: string; pod: string; ips: string[] }[] }> {
      const subnets = nodeSubnetsInNb(nb, cfg, node) ?? [];
      const withPrefix = (ip: string): string => `${ip}/${subnets.find((s) => s.includes(':') === ip.includes(':'))?.split('/')[1] ?? ''}`;
      const ports = switchPortAddresses(nb, node).flatMap((p) => (p.uid && p.pod ? [{ uid: p.uid, pod: p.pod, ips: p.ips.map(withPrefix) }] : []));
      return Promise.resolve({ subnets, ports });
    },
    async observePod({ namespace, name }: PodKey): Promise<PodObservation> {
      const lsp = nb.cache.table('Logical_Switch_Port').byIndex({ name: podPortName(namespace, name) });
      const port = lsp ? { uid: lsp.options['iface-id-ver'], node: lsp.options['requested-chassis'] } : undefined;
      const portNodeExists = port?.node ? (await getNode(kube, port.node)) !== undefined : undefined;
      const pod = await getPod(kube, namespace, name);
      const base = { ...(port ? { port } : {}), ...(portNodeExists === undefined ? {} : { portNodeExists }) };
      // A pod being deleted keeps its network through its grace period (preStop hooks, draining):
      // it is released once the pod is terminal or gone.
      if (!pod) return { state: 'absent', ...base };
      const uid = pod.metadata?.uid ?? '';
      if (pod.spec?.hostNetwork) return { state: 'hostNetwork', uid, ...base };
      const node = pod.spec?.nodeName;
      if (!node) return { state: 'unscheduled', uid, ...base };
      if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return { state: 'terminal', uid, node, ...base };
      const nodeSubnets = nodeSubnetsInNb(nb, cfg, node);
      if (!nodeSubnets?.length) {
        const exists = node === port?.node ? portNodeExists : (await getNode(kube, node)) !== undefined;
        return { state: exists ? 'waiting' : 'nodeGone', uid, node, ...base };
      }
      return { state: 'active', uid, node, nodeSubnets, ...base };
    },
  };

  /** Another port of the node's switch that holds one of these addresses, if any. */
  const heldBy = (p: PodKey & { node: string; ips: string[] }): string | undefined => {
    const mine = podPortName(p.namespace, p.name);
    const bare = new Set(p.ips.map((a) => a.split('/')[0]));
    return switchPortAddresses(nb, p.node).find((x) => x.name !== mine && x.ips.some((a) => bare.has(a)))?.name;
  };

  /**
   * The port groups of the policies that select the pod, which its port joins as it is created: an
   * isolated pod sends and receives nothing its policies forbid from its first packet.
   */
  const portGroupsOf = async (pod: V1Pod): Promise<string[]> => {
    // Only policies whose rows are written, as the namespace's deny counts them: a pod never joins a
    // deny that its namespace's run would take it out of again.
    const { written } = policyProgress(nb, await listNetworkPolicies(kube, pod.metadata?.namespace ?? ''), []);
    return podPortGroups({ namespace: pod.metadata?.namespace ?? '', labels: pod.metadata?.labels ?? {} }, written);
  };

  /** kovn's k8s.ovn.org/pod-networks on the pod (as read): written when it differs, a foreign value replaced with an Event. */
  const annotate = async (p: PodKey & { uid: string; ips: string[]; nodeSubnets: string[] }, pod: V1Pod | undefined): Promise<Change[]> => {
    const changes: Change[] = [];
    if (!pod || pod.metadata?.uid !== p.uid) return changes; // gone meanwhile: the next run cleans up
    const want = podNetworks(p.ips, p.nodeSubnets);
    let have: PodNetworks | undefined;
    try {
      have = readAnnotation(pod.metadata.annotations, POD_NETWORKS, PodNetworks);
    } catch (err) {
      // Someone else wrote garbage where kovn keeps the pod's network: say so on the pod, then replace it.
      await recordEvent(kube, { kind: 'Pod', namespace: p.namespace, name: p.name, uid: p.uid }, 'Warning', 'InvalidAnnotation',
        `${err instanceof Error ? err.message : String(err)}; kovn replaces it with the pod's network`);
    }
    if (have?.default && !sameAnnotation(have.default, want.default)) {
      // Valid, but not the network kovn gave this pod (a manifest's own value, say): it was never used
      // for the pod (CNI ADD plugs kovn's allocation), and is replaced now. Say so on the pod.
      await recordEvent(kube, { kind: 'Pod', namespace: p.namespace, name: p.name, uid: p.uid }, 'Warning', 'ForgedAnnotation',
        `${POD_NETWORKS} held ${have.default.ip_addresses.join(', ')}, which kovn did not allocate; kovn replaces it with the pod's network (${want.default?.ip_addresses.join(', ') ?? ''})`);
    }
    if (!sameAnnotation(have?.default, want.default)) {
      // Guarded by the resourceVersion read above: a pod recreated under the same name meanwhile gets
      // a 409 (retried), never this incarnation's addresses.
      await annotatePod(kube, p.namespace, p.name, { [POD_NETWORKS]: JSON.stringify({ ...(have ?? {}), ...want }) }, pod.metadata.resourceVersion);
      changes.push({ db: 'k8s', table: 'Pod', row: `${p.namespace}/${p.name}`, op: 'update' });
    }
    return changes;
  };

  const writes = {
    /**
     * The fast path of a pod's network, called by its node's CNI ADD run: the port and annotation for the
     * address the node's agent allocated. A node can publish only for a pod bound to it (read live, this
     * incarnation), only addresses of its own subnets, never one another port of its switch holds: a
     * node agent writes nothing to the Northbound DB itself.
     */
    async publishPodNetwork(p: PodPublication): Promise<Change[]> {
      const pod = await getPod(kube, p.namespace, p.name);
      const where = `pod ${p.namespace}/${p.name}`;
      if (!pod || pod.metadata?.uid !== p.uid) throw new InvalidInputError('PodGone', `${where} (uid ${p.uid}) no longer exists`);
      if (pod.spec?.nodeName !== p.node) throw new InvalidInputError('WrongNode', `${where} is bound to ${pod.spec?.nodeName ?? 'no node'}, not ${p.node}`);
      if (pod.spec?.hostNetwork) throw new InvalidInputError('HostNetwork', `${where} is on the host's network`);
      if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') throw new InvalidInputError('PodTerminal', `${where} has ${pod.status.phase}`);
      const nodeSubnets = nodeSubnetsInNb(nb, cfg, p.node);
      if (!nodeSubnets?.length) throw new Error(`node ${p.node} has no subnet in the Northbound DB yet`);
      if (p.ips.length !== nodeSubnets.length || !nodeSubnets.every((s) => p.ips.some((ip) => inSubnet(ip, s)))) {
        throw new InvalidInputError('AddressOutsideSubnet', `${p.ips.join(', ')} is not one address in each of node ${p.node}'s subnets (${nodeSubnets.join(', ')})`);
      }
      // An address is freed only once no port holds it: a clash means the node handed out an address
      // that is in use (a store rebuilt without an ADD in flight). Final for this allocation: the ADD
      // drops it, and kubelet's retry gets another address.
      const clash = heldBy(p);
      if (clash) throw new InvalidInputError('AddressInUse', `${p.ips.join(', ')} is held by port ${clash} on node ${p.node}`);
      const changes = await ensurePodPort(nb, p.node, podPort({ namespace: p.namespace, name: p.name, uid: p.uid, node: p.node }, p.ips), await portGroupsOf(pod));
      try {
        return [...changes, ...(await annotate({ ...p, nodeSubnets }, pod))];
      } catch (err) {
        // The pod went between the read and the port's write (the annotation's patch is the fence): its
        // deletion's run may have looked before the port was there, so the port goes here.
        if ((err as { statusCode?: unknown }).statusCode !== 404) throw err;
        await writes.deletePodPort({ namespace: p.namespace, name: p.name, uid: p.uid });
        throw new InvalidInputError('PodGone', `${where} (uid ${p.uid}) was deleted while its port was written; the port is removed`);
      }
    },

    /** The pod's logical port and its k8s.ovn.org/pod-networks annotation. */
    async ensurePodNetwork(p: PodKey & { uid: string; node: string; ips: string[]; nodeSubnets: string[] }): Promise<Change[]> {
      const clash = heldBy(p);
      if (clash) throw new Error(`${p.ips.join(', ')} is held by port ${clash} on node ${p.node}; waiting for the node's allocation to be put right`);
      const pod = await getPod(kube, p.namespace, p.name);
      const groups = pod?.metadata?.uid === p.uid ? await portGroupsOf(pod) : [];
      const changes = await ensurePodPort(nb, p.node, podPort({ namespace: p.namespace, name: p.name, uid: p.uid, node: p.node }, p.ips), groups);
      return [...changes, ...(await annotate(p, pod))];
    },

    /** The pod's port; with `uid`, only while the port is still that incarnation's (a new one may have taken it over). */
    async deletePodPort({ namespace, name, uid }: PodKey & { uid?: string }): Promise<Change[]> {
      return deleteOwned(nb, { type: 'Pod', name: `${namespace}/${name}` },
        uid ? { columns: ['options'], test: (r) => (r.options as Record<string, string> | undefined)?.['iface-id-ver'] === uid } : undefined);
    },
  };
  return { reads, writes };
}

export type PodActivities = ReturnType<typeof createPodActivities>;
export type PodReads = PodActivities['reads'];
export type PodWrites = PodActivities['writes'];
