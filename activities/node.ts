/**
 * The Node kind's activities: its read (observeNode, run local) apart from its writes (the node's
 * subnets, switch, router link and management port in NB; its gateway and node id; its annotations;
 * its removal with the Node).
 */
import type { V1Node } from '@kubernetes/client-node';
import type { z } from 'zod';
import {
  IfAddr, L3GatewayConfig, L3_GATEWAY_CONFIG, NODE_CHASSIS_ID, NODE_GATEWAY_ROUTER_LRP_IFADDR, NODE_ID, NODE_PRIMARY_IFADDR, NODE_SUBNETS,
  NodeId, NodeSubnets, readAnnotation, sameAnnotation,
} from '../lib/annotations.ts';
import type { Change } from '../lib/change.ts';
import { formatCidr, nthSubnet, overlaps, parseCidr, subnetCount } from '../lib/cidr.ts';
import { InvalidInputError } from '../lib/errors.ts';
import { annotateNode, getNode, internalIps, recordEvent } from '../lib/kube.ts';
import type { ControllerDeps } from './common.ts';
import {
  deleteOwned, ensureClusterTopology, ensureNodeGateway, ensureNodeTopology, noRouterWithNodeId, noSwitchWithSubnet, nodeSubnetsInNb, routerNodeIds,
  switchSubnets, syncMacBindings,
} from './nb.ts';
import { deleteNodeChassis } from './sb.ts';
import { NODE_ID_KEY, factsProblem, gatewayAnnotations, gatewayRouter, lowestFreeId, maxNodeId, nodeGateway, routerToExternal } from './translate/gateway.ts';
import type { GatewayAnnotations, GatewayFacts } from './translate/gateway.ts';
import { clusterTopology, nodeTopology } from './translate/topology.ts';


/** Reads one of the node's annotations; a malformed one gets a Warning Event (kovn rewrites it) and reads as absent. */
async function readOrReport<T>(kube: ControllerDeps['kube'], node: V1Node, key: string, schema: z.ZodType<T>): Promise<T | undefined> {
  try {
    return readAnnotation(node.metadata?.annotations, key, schema);
  } catch (err) {
    await recordEvent(kube, { kind: 'Node', name: node.metadata?.name ?? '', uid: node.metadata?.uid ?? '' }, 'Warning', 'InvalidAnnotation',
      `${err instanceof Error ? err.message : String(err)}; kovn rewrites it from the node's gateway`);
    return undefined;
  }
}

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

  /** The node's id: kept from its gateway router, else from a valid annotation that no other router holds, else the lowest free. */
  const chooseNodeId = (name: string, annotated: number | undefined): number => {
    const held = routerNodeIds(nb, NODE_ID_KEY);
    const mine = held.get(gatewayRouter(name));
    if (mine !== undefined) return mine;
    const taken = new Set([...held.entries()].filter(([r]) => r !== gatewayRouter(name)).map(([, id]) => id));
    const max = maxNodeId(cfg);
    if (annotated !== undefined && annotated >= 2 && annotated <= max && !taken.has(annotated)) return annotated;
    const id = lowestFreeId(taken, max);
    if (id === undefined) throw new InvalidInputError('NodeIdsExhausted', `no node id left: the join subnets ${cfg.joinSubnets.join(', ')} hold ${max - 1} nodes`);
    return id;
  };

  const reads = {
    async observeNode({ name }: { name: string }): Promise<{ exists: boolean; uid?: string; internalIps?: string[] }> {
      const node = await getNode(kube, name);
      return node && !node.metadata?.deletionTimestamp ? { exists: true, uid: node.metadata?.uid ?? '', internalIps: internalIps(node) } : { exists: false };
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

    /**
     * The node's gateway and its id, with every other row of the node, in one transaction (stale rows
     * pruned); then its static MAC bindings. The agent's facts about its external bridge are checked
     * first: a node whose bridge lacks an address or a route of a family the cluster has fails here, and
     * says so.
     */
    async ensureNodeGateway({ name, subnets, chassisId, facts }: { name: string; subnets: string[]; chassisId: string; facts: GatewayFacts }):
      Promise<{ changes: Change[]; annotations: GatewayAnnotations }> {
      const node = await getNode(kube, name);
      if (!node) throw new Error(`node ${name} is gone`);
      const problem = factsProblem(cfg, facts);
      if (problem) throw new InvalidInputError('InvalidGateway', `node ${name}: ${problem}`);
      const ips = internalIps(node);
      if (ips.length === 0) throw new InvalidInputError('NodeWithoutInternalIP', `node ${name} has no InternalIP in status.addresses`);
      let annotated: number | undefined;
      try {
        annotated = readAnnotation(node.metadata?.annotations, NODE_ID, NodeId);
      } catch {
        annotated = undefined; // reported and rewritten by annotateNode
      }
      const nodeId = chooseNodeId(name, annotated);
      const input = { node: name, nodeId, chassisId, subnets, facts, internalIps: ips };
      const { rows, macBindings } = nodeGateway(cfg, input);
      const claimed = routerNodeIds(nb, NODE_ID_KEY).get(gatewayRouter(name)) === nodeId;
      const changes = await ensureNodeGateway(nb, name, nodeTopology(name, subnets), rows, claimed ? [] : [noRouterWithNodeId(NODE_ID_KEY, nodeId)]);
      changes.push(...(await syncMacBindings(nb, routerToExternal(name), macBindings)));
      return { changes, annotations: gatewayAnnotations(cfg, input) };
    },

    /** Writes k8s.ovn.org/node-subnets (and the chassis id, and the gateway's annotations) when they differ; a malformed value gets an Event. */
    async annotateNode({ name, subnets, chassisId, gateway }: { name: string; subnets: string[]; chassisId?: string; gateway?: GatewayAnnotations }): Promise<Change[]> {
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
      if (gateway) {
        const want: [string, z.ZodType<unknown>, unknown][] = [
          [NODE_ID, NodeId, Number(gateway.nodeId)],
          [NODE_GATEWAY_ROUTER_LRP_IFADDR, IfAddr, gateway.lrpIfaddr],
          [L3_GATEWAY_CONFIG, L3GatewayConfig, gateway.l3GatewayConfig],
          [NODE_PRIMARY_IFADDR, IfAddr, gateway.primaryIfaddr],
        ];
        for (const [key, schema, value] of want) {
          if (!sameAnnotation(await readOrReport(kube, node, key, schema), value)) patch[key] = JSON.stringify(value);
        }
      }
      if (Object.keys(patch).length === 0) return [];
      await annotateNode(kube, name, patch);
      return [{ db: 'k8s', table: 'Node', row: name, op: 'update' }];
    },

    /** The node's Northbound rows (by owner; its gateway's MAC bindings by their port) and its Southbound chassis. */
    async deleteNodeNetwork({ name }: { name: string }): Promise<Change[]> {
      return [
        ...(await syncMacBindings(nb, routerToExternal(name), [])),
        ...(await deleteOwned(nb, { type: 'Node', name })),
        ...(await deleteNodeChassis(sb, name)),
      ];
    },
  };
  return { reads, writes };
}

export type NodeActivities = ReturnType<typeof createNodeActivities>;
export type NodeReads = NodeActivities['reads'];
export type NodeWrites = NodeActivities['writes'];
