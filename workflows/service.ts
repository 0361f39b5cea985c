/** The Service kind's workflow: its load balancers, rewritten as its EndpointSlices change, removed with it. */
import type { ServiceReads, ServiceWrites } from '../activities/service.ts';
import type { RunSummary } from '../lib/change.ts';
import { reads, reconcile, writes } from './reconcile.ts';
import type { ReconcileInput } from './reconcile.ts';

const read = reads<ServiceReads>();
const write = writes<ServiceWrites>();

export async function reconcileService(input: ReconcileInput): Promise<RunSummary> {
  const namespace = input.namespace ?? '';
  const { name } = input;
  return reconcile({ kind: 'Service', namespace, name }, input, async ({ s }) => {
    const obs = await read.observeService({ namespace, name });
    if (!obs.exists || !obs.balanced) {
      // Gone, or headless / ExternalName now: no load balancer may stay behind.
      s.changes.push(...(await write.deleteServiceLoadBalancers({ namespace, name })));
      return obs.exists ? 'skipped' : 'deleted';
    }
    s.changes.push(...(await write.ensureServiceLoadBalancers({ namespace, name })));
    return 'converged';
  });
}
