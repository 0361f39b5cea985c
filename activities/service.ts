/**
 * The Service kind's activities: its read (does it exist) apart from its write (its load balancers,
 * from the Service, its EndpointSlices and the nodes' gateway routers, in one transaction) and their
 * removal with the Service. A problem of the Service's own (a named target port no endpoint has, an
 * endpoint no node can reach) is an Event on it; the rest of the Service is programmed.
 */
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import type { Change } from '../lib/change.ts';
import { getService, listServiceSlices, patchService, recordEvent } from '../lib/kube.ts';
import { ANNOUNCING_NODE, announcer, announcingCandidates, ingressIps, ownLoadBalancer, pickAddresses } from './translate/load-balancer.ts';
import type { ControllerDeps } from './common.ts';
import { deleteOwned, ensureServiceLoadBalancers, gatewayNodes, serviceLoadBalancersInNb, serviceReach } from './nb.ts';
import { hasLoadBalancer, serviceLoadBalancers, staleFlows, withZones } from './translate/service.ts';
import type { LbVips, StaleFlow } from './translate/service.ts';

/** What a write did, and what the nodes must still do: forget conntrack entries of UDP/SCTP backends that left. */
export interface ServiceWriteResult {
  changes: Change[];
  stale: StaleFlow[];
  /** The nodes to flush on (those with gateways, as the load balancers' own node list). */
  nodes: string[];
}

/** A whole pass's result: what it wrote, what the nodes must flush, and how the pass ended. */
export interface ServiceSyncResult extends ServiceWriteResult {
  outcome: 'converged' | 'deleted' | 'skipped';
  /** An exhausted pool: everything else is programmed, the address is still wanted. */
  pending?: string;
}

/** kovn's to allocate, or an allocation of kovn's to take back (the type or class changed). */
const kovnsLoadBalancer = (svc: V1Service): boolean => ownLoadBalancer(svc) || svc.metadata?.annotations?.[ANNOUNCING_NODE] !== undefined;

export default function createServiceActivities({ nb, kube, cfg }: ControllerDeps) {
  // One allocation at a time: the list of used addresses and the patch that claims one are not atomic
  // in the API, and this (the one controller that holds the Lease) is the allocator's only writer.
  let allocating: Promise<unknown> = Promise.resolve();
  const serially = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = allocating.then(fn, fn);
    allocating = next.catch(() => undefined);
    return next;
  };

  /** The Service's rows written as it and its slices (read live) say; its problems as Events. */
  const programmed = async (svc: V1Service, slices: V1EndpointSlice[]): Promise<ServiceWriteResult> => {
    const namespace = svc.metadata?.namespace ?? '';
    const name = svc.metadata?.name ?? '';
    const key = `${namespace}/${name}`;
    // Zones only matter to trafficDistribution: the nodes are read only then.
    const nodes = svc.spec?.trafficDistribution ? withZones(gatewayNodes(nb), (await kube.core.listNode()).items) : gatewayNodes(nb);
    const before = serviceLoadBalancersInNb(nb, key);
    const { rows, problems } = serviceLoadBalancers(svc, slices, nodes, serviceReach(nb, cfg));
    const changes = await ensureServiceLoadBalancers(nb, { type: 'Service', name: key }, rows);
    for (const p of problems) {
      await recordEvent(kube, { kind: 'Service', namespace, name, uid: svc.metadata?.uid ?? '' }, 'Warning', p.reason, p.message);
    }
    return { changes, stale: staleFlows(before, rows.map((r) => r.columns as LbVips)), nodes: nodes.map((n) => n.name) };
  };

  const reads = {
    async observeService({ namespace, name }: { namespace: string; name: string }): Promise<{ exists: boolean; balanced: boolean; loadBalancer: boolean }> {
      const svc = await getService(kube, namespace, name);
      const exists = !!svc && !svc.metadata?.deletionTimestamp;
      return { exists, balanced: exists && hasLoadBalancer(svc), loadBalancer: !!svc && kovnsLoadBalancer(svc) };
    },
  };

  const writes = {
    /**
     * A LoadBalancer Service's addresses from kovn's pools (status.loadBalancer.ingress) and the node that
     * announces them (an annotation); both taken back when the Service stops being kovn's. An exhausted
     * pool is an Event on the Service; its ClusterIP and NodePorts work meanwhile.
     */
    async assignLoadBalancer({ namespace, name }: { namespace: string; name: string }): Promise<{ changes: Change[]; pending?: string }> {
      return serially(async () => {
        const svc = await getService(kube, namespace, name);
        if (!svc) return { changes: [] };
        const key = `${namespace}/${name}`;
        const changes: Change[] = [];
        const patch = async (body: object, status: boolean, what: string): Promise<void> => {
          await patchService(kube, namespace, name, body, status ? 'status' : undefined);
          changes.push({ db: 'k8s', table: status ? 'Service/status' : 'Service', row: `${key} ${what}`, op: 'update' });
        };
        const announcing = svc.metadata?.annotations?.[ANNOUNCING_NODE];
        if (!ownLoadBalancer(svc)) {
          if (announcing === undefined) return { changes };
          if (ingressIps(svc).length) await patch({ status: { loadBalancer: { ingress: null } } }, true, 'load balancer addresses released');
          await patch({ metadata: { annotations: { [ANNOUNCING_NODE]: null } } }, false, 'announcing node removed');
          return { changes };
        }
        const others = (await kube.core.listServiceForAllNamespaces()).items.filter((x) => `${x.metadata?.namespace}/${x.metadata?.name}` !== key);
        const picked = pickAddresses(svc, cfg.loadBalancerPools, new Set(others.flatMap(ingressIps)));
        if ('exhausted' in picked) {
          await recordEvent(kube, { kind: 'Service', namespace, name, uid: svc.metadata?.uid ?? '' }, 'Warning', 'LoadBalancerPoolExhausted', picked.exhausted);
          return { changes, pending: `a LoadBalancer address: ${picked.exhausted}` };
        }
        if (picked.ips.join() !== ingressIps(svc).join()) {
          await patch({ status: { loadBalancer: { ingress: picked.ips.length ? picked.ips.map((ip) => ({ ip, ipMode: 'VIP' })) : null } } }, true, `load balancer addresses ${picked.ips.join(',') || 'none'}`);
        }
        const slices = svc.spec?.externalTrafficPolicy === 'Local' ? await listServiceSlices(kube, namespace, name) : [];
        const candidates = announcingCandidates(svc, gatewayNodes(nb).map((n) => n.name), slices);
        const node = picked.ips[0] ? announcer(picked.ips[0], candidates) : undefined;
        if ((node ?? undefined) !== announcing) {
          await patch({ metadata: { annotations: { [ANNOUNCING_NODE]: node ?? null } } }, false, `announced by ${node ?? 'no node'}`);
        }
        return { changes };
      });
    },

    /**
     * The whole of a pass in one activity (one server round trip): the Service read live, its
     * LoadBalancer addresses first (the rows are written from the Service as it then is), then its
     * load balancers, or none when it is gone, headless or ExternalName.
     */
    async syncService({ namespace, name }: { namespace: string; name: string }): Promise<ServiceSyncResult> {
      const svc = await getService(kube, namespace, name);
      const exists = !!svc && !svc.metadata?.deletionTimestamp;
      const lb = exists && kovnsLoadBalancer(svc) ? await writes.assignLoadBalancer({ namespace, name }) : { changes: [] };
      // Read again only when the addresses just changed: the rows carry them.
      const now = lb.changes.length > 0 ? await getService(kube, namespace, name) : svc;
      const rows = exists && now && hasLoadBalancer(now)
        ? await programmed(now, await listServiceSlices(kube, namespace, name))
        : await writes.deleteServiceLoadBalancers({ namespace, name });
      const outcome = !exists || !now ? 'deleted' : !hasLoadBalancer(now) ? 'skipped' : 'converged';
      return { ...rows, changes: [...lb.changes, ...rows.changes], outcome, ...(lb.pending ? { pending: lb.pending } : {}) };
    },

    /** The Service's load balancers as its EndpointSlices say now; stale ones (a port, a node gone) pruned in the same transaction. */
    async ensureServiceLoadBalancers({ namespace, name }: { namespace: string; name: string }): Promise<ServiceWriteResult> {
      const [svc, slices] = await Promise.all([getService(kube, namespace, name), listServiceSlices(kube, namespace, name)]);
      return svc ? programmed(svc, slices) : writes.deleteServiceLoadBalancers({ namespace, name });
    },

    async deleteServiceLoadBalancers({ namespace, name }: { namespace: string; name: string }): Promise<ServiceWriteResult> {
      const before = serviceLoadBalancersInNb(nb, `${namespace}/${name}`);
      const changes = await deleteOwned(nb, { type: 'Service', name: `${namespace}/${name}` });
      return { changes, stale: staleFlows(before, []), nodes: gatewayNodes(nb).map((n) => n.name) };
    },
  };
  return { reads, writes };
}

export type ServiceActivities = ReturnType<typeof createServiceActivities>;
export type ServiceReads = ServiceActivities['reads'];
export type ServiceWrites = ServiceActivities['writes'];
