/**
 * The Node kind's watch: every node; a change matters when its incarnation, deletion or the
 * annotations kovn writes (node-subnets, node-chassis-id) change.
 */
import type { V1Node } from '@kubernetes/client-node';
import { NODE_CHASSIS_ID, NODE_SUBNETS, NodeSubnets, readAnnotation } from '../lib/annotations.ts';
import { OWNER_NAME, OWNER_TYPE, isKovnOwned } from '../activities/translate/ownership.ts';
import { mgmtPort } from '../activities/translate/topology.ts';
import type { Watch } from './watch.ts';

const watch: Watch<V1Node> = {
  kind: 'Node',
  path: '/api/v1/nodes',
  list: ({ kube }) => () => kube.core.listNode(),
  relevant: (n) => [n.metadata?.uid, n.metadata?.deletionTimestamp, n.metadata?.annotations?.[NODE_SUBNETS], n.metadata?.annotations?.[NODE_CHASSIS_ID]],
  inSync: (n, { nb }) => {
    const name = n.metadata?.name ?? '';
    const sw = nb.cache.table('Logical_Switch').byColumn('name', name)[0]; // switch names are not a schema index
    if (!sw || !nb.cache.table('Logical_Switch_Port').byIndex({ name: mgmtPort(name) }) || !n.metadata?.annotations?.[NODE_CHASSIS_ID]) return false;
    try {
      const annotated = readAnnotation(n.metadata.annotations, NODE_SUBNETS, NodeSubnets)?.default ?? [];
      return sw.other_config.subnet === undefined || annotated.includes(sw.other_config.subnet);
    } catch {
      return false;
    }
  },
  // A periodic scan of the switches (one per node), not a per-object one.
  ownerKeys: ({ nb }) => [...new Set(nb.cache.table('Logical_Switch').find((s) => isKovnOwned(s.external_ids) && s.external_ids[OWNER_TYPE] === 'Node')
    .map((s) => s.external_ids[OWNER_NAME] ?? ''))],
};

export default watch;
