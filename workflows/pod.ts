/** The Pod kind's workflow: address from its node's agent, logical switch port, pod-networks annotation. */
import { patched, upsertSearchAttributes } from '@temporalio/workflow';
import type { PodReads, PodWrites } from '../activities/pod.ts';
import type { RunSummary } from '../lib/change.ts';
import { SA } from '../lib/ids.ts';
import { onNode, reads, reconcile, writes } from './reconcile.ts';
import type { ReconcileInput } from './reconcile.ts';

const read = reads<PodReads>();
const write = writes<PodWrites>();

export async function reconcilePod(input: ReconcileInput): Promise<RunSummary> {
  const namespace = input.namespace ?? '';
  const { name } = input;
  // An address whose port is gone but which its node has not been asked to free yet (carried across passes).
  let release: { node: string; uid: string; known?: boolean } | undefined;
  return reconcile({ kind: 'Pod', namespace, name }, input, async ({ s, interruptible }) => {
    const obs = await read.observePod({ namespace, name });
    if (obs.node) upsertSearchAttributes([{ key: SA.node, value: obs.node }]);
    // A port left by a deleted pod or by an earlier incarnation of this name: remove it, free its address.
    const stale = obs.port && (obs.state !== 'active' || obs.port.uid !== obs.uid || obs.port.node !== obs.node);
    if (stale && obs.port && obs.state !== 'waiting') {
      if (patched('port-before-address')) {
        // The port first, then the address: an address is never free while a port still holds it. Only
        // the stale incarnation's port: a new one's, written meanwhile by its node, stays.
        s.changes.push(...(await write.deletePodPort({ namespace, name, ...(obs.port.uid ? { uid: obs.port.uid } : {}) })));
        if (obs.port.node && obs.port.uid && obs.portNodeExists) release = { node: obs.port.node, uid: obs.port.uid, known: true };
      } else {
        if (obs.port.node && obs.port.uid && obs.portNodeExists) {
          const node = obs.port.node;
          const uid = obs.port.uid;
          const r = await interruptible(() => onNode(node).releaseAddress({ uid }), async () => (await read.observePod({ namespace, name })).portNodeExists === true);
          if (!r) return 'interrupted';
          if (r.released) s.changes.push({ db: 'node', table: 'IPAM', row: `${node}:${r.ips.join(',')}`, op: 'delete' });
        }
        s.changes.push(...(await write.deletePodPort({ namespace, name })));
      }
    }
    if (release) {
      const { node, uid, known } = release;
      release = { node, uid }; // a later pass (this one failed) looks at the node again
      // The node confirms the pod gone (a live read) and unplugged before it frees; else it keeps the
      // address for its CNI DEL or its sweep. A node deleted meanwhile took its addresses with it.
      const r = known || (await read.nodeExists({ node })) ? await interruptible(() => onNode(node).releaseAddress({ uid }), () => read.nodeExists({ node })) : { released: false, ips: [] };
      if (!r) return 'interrupted';
      if (r.released) s.changes.push({ db: 'node', table: 'IPAM', row: `${node}:${r.ips.join(',')}`, op: 'delete' });
      release = undefined;
    }
    if (obs.state === 'waiting') return { waiting: `node ${obs.node} has no subnet yet` };
    if (obs.state !== 'active' || !obs.node || !obs.uid || !obs.nodeSubnets) return obs.state === 'absent' ? 'deleted' : 'skipped';
    const { node, uid, nodeSubnets } = obs;
    const alloc = await interruptible(() => onNode(node).allocateAddress({ uid, pod: `${namespace}/${name}`, subnets: nodeSubnets }), async () => {
      const now = await read.observePod({ namespace, name });
      return now.state === 'active' && now.uid === uid && now.node === node;
    });
    if (!alloc) return 'interrupted';
    if (alloc.created) s.changes.push({ db: 'node', table: 'IPAM', row: `${node}:${alloc.ips.join(',')}`, op: 'insert' });
    s.changes.push(...(await write.ensurePodNetwork({ namespace, name, uid, node, ips: alloc.ips, nodeSubnets })));
    return 'converged';
  });
}
