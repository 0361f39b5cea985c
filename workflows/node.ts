/**
 * The Node kind's workflow: subnets, switch, router link, management port, chassis, then the node's
 * gateway (router, join and external ports, routes, NAT, node id); all removed with the node.
 */
import { ApplicationFailure, patched } from '@temporalio/workflow';
import type { NodeReads, NodeWrites } from '../activities/node.ts';
import type { RunSummary } from '../lib/change.ts';
import { onNode, reads, reconcile, writes } from './reconcile.ts';
import type { ReconcileInput } from './reconcile.ts';

const read = reads<NodeReads>();
const write = writes<NodeWrites>();

export async function reconcileNode(input: ReconcileInput): Promise<RunSummary> {
  const { name } = input;
  return reconcile({ kind: 'Node', namespace: '', name }, input, async ({ s, interruptible }) => {
    const obs = await read.observeNode({ name });
    if (!obs.exists) {
      s.changes.push(...(await write.deleteNodeNetwork({ name })));
      return 'deleted';
    }
    s.changes.push(...(await write.ensureClusterTopology()));
    const net = await write.ensureNodeNetwork({ name });
    s.changes.push(...net.changes);
    // Runs recorded before the gateway existed replay without its steps.
    const gateway = patched('node-gateway');
    if (gateway && obs.internalIps?.length === 0) {
      // Final: the node's next change (kubelet reporting its addresses) starts a new run.
      throw ApplicationFailure.nonRetryable(`node ${name} has no InternalIP in status.addresses: its gateway needs the node's address`, 'NodeWithoutInternalIP');
    }
    const setup = await interruptible(() => onNode(name).setupNode({ subnets: net.subnets }), async () => (await read.observeNode({ name })).exists);
    if (!setup) return 'interrupted';
    s.changes.push(...setup.changes);
    let annotations;
    if (gateway && setup.gateway) {
      const gw = await write.ensureNodeGateway({ name, subnets: net.subnets, chassisId: setup.chassisId, facts: setup.gateway });
      s.changes.push(...gw.changes);
      annotations = gw.annotations;
    }
    s.changes.push(...(await write.annotateNode({ name, subnets: net.subnets, chassisId: setup.chassisId, ...(annotations ? { gateway: annotations } : {}) })));
    return 'converged';
  });
}
