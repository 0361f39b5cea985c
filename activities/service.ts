/**
 * The Service kind's activities: its read (does it exist) apart from its write (its load balancers,
 * from the Service, its EndpointSlices and the nodes' gateway routers, in one transaction) and their
 * removal with the Service. A problem of the Service's own (a named target port no endpoint has) is an
 * Event on it; the rest of the Service is programmed.
 */
import type { Change } from '../lib/change.ts';
import { getService, listServiceSlices, recordEvent } from '../lib/kube.ts';
import type { ControllerDeps } from './common.ts';
import { deleteOwned, ensureServiceLoadBalancers, gatewayNodes, serviceLoadBalancersInNb } from './nb.ts';
import { hasLoadBalancer, serviceLoadBalancers, staleFlows } from './translate/service.ts';
import type { LbVips, StaleFlow } from './translate/service.ts';

/** What a write did, and what the nodes must still do: forget conntrack entries of UDP/SCTP backends that left. */
export interface ServiceWriteResult {
  changes: Change[];
  stale: StaleFlow[];
  /** The nodes to flush on (those with gateways, as the load balancers' own node list). */
  nodes: string[];
}

export default function createServiceActivities({ nb, kube }: ControllerDeps) {
  const reads = {
    async observeService({ namespace, name }: { namespace: string; name: string }): Promise<{ exists: boolean; balanced: boolean }> {
      const svc = await getService(kube, namespace, name);
      const exists = !!svc && !svc.metadata?.deletionTimestamp;
      return { exists, balanced: exists && hasLoadBalancer(svc) };
    },
  };

  const writes = {
    /** The Service's load balancers as its EndpointSlices say now; stale ones (a port, a node gone) pruned in the same transaction. */
    async ensureServiceLoadBalancers({ namespace, name }: { namespace: string; name: string }): Promise<ServiceWriteResult> {
      const [svc, slices] = await Promise.all([getService(kube, namespace, name), listServiceSlices(kube, namespace, name)]);
      if (!svc) return writes.deleteServiceLoadBalancers({ namespace, name });
      const key = `${namespace}/${name}`;
      const nodes = gatewayNodes(nb);
      const before = serviceLoadBalancersInNb(nb, key);
      const { rows, problems } = serviceLoadBalancers(svc, slices, nodes);
      const changes = await ensureServiceLoadBalancers(nb, { type: 'Service', name: key }, rows);
      for (const p of problems) {
        await recordEvent(kube, { kind: 'Service', namespace, name, uid: svc.metadata?.uid ?? '' }, 'Warning', p.reason, p.message);
      }
      return { changes, stale: staleFlows(before, rows.map((r) => r.columns as LbVips)), nodes: nodes.map((n) => n.name) };
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
