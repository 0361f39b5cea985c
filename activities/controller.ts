/**
 * The controller's activities: idempotent observe/ensure/delete functions over the Northbound DB and
 * the Kubernetes API, built by a factory that receives their clients. Each returns what it changed.
 * Failures are classified in one place (lib/errors.ts) into retryable or not.
 */
import { NODE_SUBNETS, NodeSubnets, POD_NETWORKS, PodNetworks, readAnnotation } from '../lib/annotations.ts';
import type { Change } from '../lib/change.ts';
import { formatCidr, nthSubnet, overlaps, parseCidr, subnetCount } from '../lib/cidr.ts';
import type { ClusterConfig } from '../lib/cluster-config.ts';
import { InvalidInputError, classified } from '../lib/errors.ts';
import { annotateNode, annotatePod, getNode, getPod, recordEvent } from '../lib/kube.ts';
import type { Kube } from '../lib/kube.ts';
import { deleteOwned, ensureClusterTopology, ensureNodeTopology, ensurePodPort, noSwitchWithSubnet, switchSubnets } from './nb.ts';
import type { NbClient } from './nb.ts';
import { deleteNodeChassis } from './sb.ts';
import type { SbClient } from './sb.ts';
import { podNetworks, podPort, podPortName } from './translate/pod.ts';
import { clusterTopology, nodeTopology } from './translate/topology.ts';

export interface ControllerDeps {
  nb: NbClient;
  sb: SbClient;
  kube: Kube;
  cfg: ClusterConfig;
}

export interface PodKey { namespace: string; name: string }

export interface PodObservation {
  state: 'absent' | 'hostNetwork' | 'unscheduled' | 'terminal' | 'active';
  uid?: string;
  node?: string;
  /** The node's subnets as the Northbound DB holds them (the source of truth). */
  nodeSubnets?: string[];
  /** The pod's existing logical port: which pod incarnation and node it was written for. */
  port?: { uid?: string; node?: string };
  /** Whether the pod's node still exists (an address can only be released on a live node). */
  portNodeExists?: boolean;
}


const sameJson = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

export function createControllerActivities({ nb, sb, kube, cfg }: ControllerDeps) {
  const subnetsOfSwitch = (node: string): string[] | undefined => {
    const s = switchSubnets(nb).get(node);
    if (!s) return undefined;
    const v6 = s.ipv6Prefix ? cfg.clusterNetworks.find((n) => n.cidr.includes(':')) : undefined;
    return [...(s.subnet ? [s.subnet] : []), ...(s.ipv6Prefix && v6 ? [`${s.ipv6Prefix}/${v6.hostPrefix}`] : [])];
  };

  /** Picks the node's subnets: kept from its switch, else from a valid annotation, else the lowest free. */
  const chooseSubnets = (node: string, annotated: string[] | undefined): string[] => {
    const held = subnetsOfSwitch(node);
    if (held?.length === cfg.clusterNetworks.length) return held;
    const v6Prefix = cfg.clusterNetworks.find((n) => n.cidr.includes(':'))?.hostPrefix ?? 64;
    const taken = [...switchSubnets(nb).entries()].filter(([n]) => n !== node)
      .flatMap(([, s]) => [s.subnet, s.ipv6Prefix && `${s.ipv6Prefix}/${v6Prefix}`]).filter((x): x is string => !!x).map(parseCidr);
    return cfg.clusterNetworks.map((net) => {
      const parent = parseCidr(net.cidr);
      const fromAnnotation = annotated?.map(parseCidr).find((c) => c.family === parent.family && c.prefix === net.hostPrefix && overlaps(c, parent));
      if (fromAnnotation && !taken.some((t) => overlaps(t, fromAnnotation))) return formatCidr(fromAnnotation);
      const total = subnetCount(parent, net.hostPrefix);
      for (let i = 0n; i < total && i < 1_000_000n; i++) {
        const c = nthSubnet(parent, net.hostPrefix, i);
        if (!taken.some((t) => overlaps(t, c))) return formatCidr(c);
      }
      throw new InvalidInputError('ClusterCidrExhausted', `no free /${net.hostPrefix} left in ${net.cidr}`);
    });
  };

  return {
    async observePod({ namespace, name }: PodKey): Promise<PodObservation> {
      return classified(async () => {
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
        const nodeSubnets = subnetsOfSwitch(node);
        // Not an error of the pod's: its node is still being set up. Retried until it is.
        if (!nodeSubnets?.length) throw new Error(`node ${node} has no subnet yet`);
        return { state: 'active', uid, node, nodeSubnets, ...base };
      });
    },

    /** The pod's logical port and its k8s.ovn.org/pod-networks annotation. */
    async ensurePodNetwork(p: PodKey & { uid: string; node: string; ips: string[]; nodeSubnets: string[] }): Promise<Change[]> {
      return classified(async () => {
        const changes = await ensurePodPort(nb, p.node, podPort({ namespace: p.namespace, name: p.name, uid: p.uid, node: p.node }, p.ips));
        const pod = await getPod(kube, p.namespace, p.name);
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
        if (!sameJson(have?.default, want.default)) {
          // Guarded by the resourceVersion read above: a pod recreated under the same name meanwhile gets
          // a 409 (retried), never this incarnation's addresses.
          await annotatePod(kube, p.namespace, p.name, { [POD_NETWORKS]: JSON.stringify({ ...(have ?? {}), ...want }) }, pod.metadata.resourceVersion);
          changes.push({ db: 'k8s', table: 'Pod', row: `${p.namespace}/${p.name}`, op: 'update' });
        }
        return changes;
      });
    },

    async deletePodPort({ namespace, name }: PodKey): Promise<Change[]> {
      return classified(() => deleteOwned(nb, { type: 'Pod', name: `${namespace}/${name}` }));
    },

    async observeNode({ name }: { name: string }): Promise<{ exists: boolean; uid?: string }> {
      return classified(async () => {
        const node = await getNode(kube, name);
        return node && !node.metadata?.deletionTimestamp ? { exists: true, uid: node.metadata?.uid ?? '' } : { exists: false };
      });
    },

    async ensureClusterTopology(): Promise<Change[]> {
      return classified(() => ensureClusterTopology(nb, clusterTopology(cfg)));
    },

    /** Claims the node's subnets (atomically, guarded in the NB transaction) and writes its topology. */
    async ensureNodeNetwork({ name }: { name: string }): Promise<{ subnets: string[]; changes: Change[] }> {
      return classified(async () => {
        const node = await getNode(kube, name);
        let annotated: string[] | undefined;
        try {
          annotated = readAnnotation(node?.metadata?.annotations, NODE_SUBNETS, NodeSubnets)?.default;
        } catch {
          annotated = undefined; // reported by annotateNode, which also repairs it
        }
        const subnets = chooseSubnets(name, annotated);
        const guard = subnets.map((s) => s.includes(':') ? noSwitchWithSubnet('ipv6_prefix', s.split('/')[0] ?? '') : noSwitchWithSubnet('subnet', s));
        const changes = await ensureNodeTopology(nb, name, nodeTopology(name, subnets), guard);
        return { subnets, changes };
      });
    },

    /** Writes k8s.ovn.org/node-subnets (and the chassis id) when they differ; a malformed value gets an Event. */
    async annotateNode({ name, subnets, chassisId }: { name: string; subnets: string[]; chassisId?: string }): Promise<Change[]> {
      return classified(async () => {
        const node = await getNode(kube, name);
        if (!node) return [];
        let have: string[] | undefined;
        try {
          have = readAnnotation(node.metadata?.annotations, NODE_SUBNETS, NodeSubnets)?.default;
        } catch (err) {
          await recordEvent(kube, { kind: 'Node', name, uid: node.metadata?.uid ?? '' }, 'Warning', 'InvalidAnnotation',
            `${err instanceof Error ? err.message : String(err)}; kovn rewrites it from the subnets it allocated`);
        }
        const patch: Record<string, string> = {};
        if (!sameJson(have, subnets)) patch[NODE_SUBNETS] = JSON.stringify({ default: subnets });
        if (chassisId && node.metadata?.annotations?.['k8s.ovn.org/node-chassis-id'] !== chassisId) patch['k8s.ovn.org/node-chassis-id'] = chassisId;
        if (Object.keys(patch).length === 0) return [];
        await annotateNode(kube, name, patch);
        return [{ db: 'k8s', table: 'Node', row: name, op: 'update' }];
      });
    },

    /** The node's Northbound rows (by owner) and its Southbound chassis. */
    async deleteNodeNetwork({ name }: { name: string }): Promise<Change[]> {
      return classified(async () => [...(await deleteOwned(nb, { type: 'Node', name })), ...(await deleteNodeChassis(sb, name))]);
    },

    /** Puts a failed change where the object's author sees it. */
    async recordFailure(p: { kind: 'Pod' | 'Node'; namespace?: string; name: string; reason: string; message: string }): Promise<void> {
      return classified(() => recordEvent(kube, { kind: p.kind, ...(p.namespace ? { namespace: p.namespace } : {}), name: p.name }, 'Warning', p.reason, p.message));
    },
  };
}

export type ControllerActivities = ReturnType<typeof createControllerActivities>;
