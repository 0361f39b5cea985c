/** The Node kind's workflow: subnets, switch, router link, management port, chassis; removed with the node. */
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
    const setup = await interruptible(() => onNode(name).setupNode({ subnets: net.subnets }), async () => (await read.observeNode({ name })).exists);
    if (!setup) return 'interrupted';
    s.changes.push(...setup.changes);
    s.changes.push(...(await write.annotateNode({ name, subnets: net.subnets, chassisId: setup.chassisId })));
    return 'converged';
  });
}
