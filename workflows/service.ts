/** The Service kind's workflow: its load balancers, rewritten as its EndpointSlices change, removed with it. */
import { log, patched } from '@temporalio/workflow';
import type { ServiceReads, ServiceWrites, ServiceWriteResult } from '../activities/service.ts';
import type { RunSummary } from '../lib/change.ts';
import { onNode, reads, reconcile, writes } from './reconcile.ts';
import type { ReconcileInput } from './reconcile.ts';

const read = reads<ServiceReads>();
const write = writes<ServiceWrites>();

/**
 * Each node forgets its conntrack entries of the UDP/SCTP backends that left (OVN does not), so a UDP
 * client reaches the new backend at once. Best effort per node: a node whose agent does not answer is
 * logged and skipped (its entries time out), never a reason to hold the Service's run.
 */
async function flushStale(s: RunSummary, r: ServiceWriteResult | ServiceWriteResult['changes']): Promise<void> {
  // A run started by a kovn before the flush returned only the changes.
  if (Array.isArray(r)) return void s.changes.push(...r);
  s.changes.push(...r.changes);
  if (r.stale.length === 0) return;
  const results = await Promise.allSettled(r.nodes.map((node) => onNode(node).flushConntrack({ flows: r.stale })));
  results.forEach((x, i) => {
    if (x.status === 'fulfilled') s.changes.push(...x.value);
    else log.warn('conntrack flush failed', { node: r.nodes[i], error: String(x.reason) });
  });
}

export async function reconcileService(input: ReconcileInput): Promise<RunSummary> {
  const namespace = input.namespace ?? '';
  const { name } = input;
  return reconcile({ kind: 'Service', namespace, name }, input, async ({ s }) => {
    if (patched('service-pass-in-one-activity')) {
      const r = await write.syncService({ namespace, name });
      await flushStale(s, r);
      // An exhausted pool: everything else is programmed; the run looks again until an address frees.
      return r.pending ? { waiting: r.pending } : r.outcome;
    }
    // Runs started by a kovn before the one-activity pass: a read, then the writes.
    const obs = await read.observeService({ namespace, name });
    if (!obs.exists || !obs.balanced) {
      if (obs.exists && obs.loadBalancer) s.changes.push(...(await write.assignLoadBalancer({ namespace, name })).changes);
      // Gone, or headless / ExternalName now: no load balancer may stay behind.
      await flushStale(s, await write.deleteServiceLoadBalancers({ namespace, name }));
      return obs.exists ? 'skipped' : 'deleted';
    }
    // Addresses first: the load balancers are written from the Service as it then is.
    const lb = obs.loadBalancer ? await write.assignLoadBalancer({ namespace, name }) : { changes: [] };
    s.changes.push(...lb.changes);
    await flushStale(s, await write.ensureServiceLoadBalancers({ namespace, name }));
    // An exhausted pool: everything else is programmed; the run looks again until an address frees.
    return lb.pending ? { waiting: lb.pending } : 'converged';
  });
}
