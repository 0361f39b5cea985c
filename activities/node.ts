/**
 * The Node kind's activities: its read (observeNode, run local) apart from its writes (the node's
 * subnets, switch, router link and management port in NB; its annotations; its removal with the Node).
 */
import { NODE_CHASSIS_ID, NODE_SUBNETS, NodeSubnets, readAnnotation, sameAnnotation } from '../lib/annotations.ts';
import type { Change } from '../lib/change.ts';
import { formatCidr, nthSubnet, overlaps, parseCidr, subnetCount } from '../lib/cidr.ts';
import { InvalidInputError } from '../lib/errors.ts';
import { annotateNode, getNode, recordEvent } from '../lib/kube.ts';
import type { ControllerDeps } from './common.ts';
import { deleteOwned, ensureClusterTopology, ensureNodeTopology, noSwitchWithSubnet, nodeSubnetsInNb, switchSubnets } from './nb.ts';
import { deleteNodeChassis } from './sb.ts';
import { clusterTopology, nodeTopology } from './translate/topology.ts';

export default function createNodeActivities({ nb, sb, kube, cfg }: ControllerDeps) {
  /** Picks the node's subnets: kept from its switch, else from a valid annotation, else the lowest free. */
  const chooseSubnets = (node: string, annotated: string[] | undefined): string[] => {
    const held = nodeSubnetsInNb(nb, cfg, node);
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

  const reads = {
    async observeNode({ name }: { name: string }): Promise<{ exists: boolean; uid?: string }> {
      const node = await getNode(kube, name);
      return node && !node.metadata?.deletionTimestamp ? { exists: true, uid: node.metadata?.uid ?? '' } : { exists: false };
    },
  };

  const writes = {
    async ensureClusterTopology(): Promise<Change[]> {
      return ensureClusterTopology(nb, clusterTopology(cfg));
    },

    /** Claims the node's subnets (atomically, guarded in the NB transaction) and writes its topology. */
    async ensureNodeNetwork({ name }: { name: string }): Promise<{ subnets: string[]; changes: Change[] }> {
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
    },

    /** Writes k8s.ovn.org/node-subnets (and the chassis id) when they differ; a malformed value gets an Event. */
    async annotateNode({ name, subnets, chassisId }: { name: string; subnets: string[]; chassisId?: string }): Promise<Change[]> {
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
      if (!sameAnnotation(have, subnets)) patch[NODE_SUBNETS] = JSON.stringify({ default: subnets });
      if (chassisId && node.metadata?.annotations?.[NODE_CHASSIS_ID] !== chassisId) patch[NODE_CHASSIS_ID] = chassisId;
      if (Object.keys(patch).length === 0) return [];
      await annotateNode(kube, name, patch);
      return [{ db: 'k8s', table: 'Node', row: name, op: 'update' }];
    },

    /** The node's Northbound rows (by owner) and its Southbound chassis. */
    async deleteNodeNetwork({ name }: { name: string }): Promise<Change[]> {
      return [...(await deleteOwned(nb, { type: 'Node', name })), ...(await deleteNodeChassis(sb, name))];
    },
  };
  return { reads, writes };
}

export type NodeActivities = ReturnType<typeof createNodeActivities>;
export type NodeReads = NodeActivities['reads'];
export type NodeWrites = NodeActivities['writes'];
