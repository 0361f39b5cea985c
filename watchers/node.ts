/**
 * The Node kind's watch: every node; a change matters when its incarnation, deletion, InternalIPs or
 * the annotations kovn writes (node-subnets, node-chassis-id, the gateway's) change.
 */
import type { V1Node } from '@kubernetes/client-node';
import {
  L3_GATEWAY_CONFIG, NODE_CHASSIS_ID, NODE_GATEWAY_ROUTER_LRP_IFADDR, NODE_ID, NODE_PRIMARY_IFADDR, NODE_SUBNETS, NodeSubnets, readAnnotation,
} from '../lib/annotations.ts';
import { OWNER_NAME, OWNER_TYPE, isKovnOwned } from '../activities/translate/ownership.ts';
import { mgmtPort } from '../activities/translate/topology.ts';
import { GATEWAY_LAYOUT, GATEWAY_LAYOUT_KEY, NODE_ID_KEY, gatewayRouter } from '../activities/translate/gateway.ts';
import { internalIps } from '../lib/kube.ts';
import type { Watch } from './watch.ts';

const GATEWAY_ANNOTATIONS = [NODE_ID, NODE_GATEWAY_ROUTER_LRP_IFADDR, L3_GATEWAY_CONFIG, NODE_PRIMARY_IFADDR];

const watch: Watch<V1Node> = {
  kind: 'Node',
  path: '/api/v1/nodes',
  list: ({ kube }) => () => kube.core.listNode(),
  relevant: (n) => [
    n.metadata?.uid, n.metadata?.deletionTimestamp, internalIps(n).join(','),
    ...[NODE_SUBNETS, NODE_CHASSIS_ID, ...GATEWAY_ANNOTATIONS].map((k) => n.metadata?.annotations?.[k]),
  ],
  inSync: (n, { nb }) => {
    const name = n.metadata?.name ?? '';
    const a = n.metadata?.annotations ?? {};
    const sw = nb.cache.table('Logical_Switch').byColumn('name', name)[0]; // switch names are not a schema index
    if (!sw || !nb.cache.table('Logical_Switch_Port').byIndex({ name: mgmtPort(name) }) || !a[NODE_CHASSIS_ID]) return false;
    const gr = nb.cache.table('Logical_Router').byColumn('name', gatewayRouter(name))[0];
    if (!gr || GATEWAY_ANNOTATIONS.some((k) => a[k] === undefined) || gr.external_ids[NODE_ID_KEY] !== a[NODE_ID]) return false;
    if (gr.external_ids[GATEWAY_LAYOUT_KEY] !== GATEWAY_LAYOUT) return false; // written by an older kovn
    try {
      const annotated = readAnnotation(a, NODE_SUBNETS, NodeSubnets)?.default ?? [];
      return sw.other_config.subnet === undefined || annotated.includes(sw.other_config.subnet);
    } catch {
      return false;
    }
  },
  // A periodic scan of the switches and routers (a few per node), not a per-object one.
  ownerKeys: ({ nb }) => [...new Set([...nb.cache.table('Logical_Switch').all(), ...nb.cache.table('Logical_Router').all()]
    .filter((s) => isKovnOwned(s.external_ids) && s.external_ids[OWNER_TYPE] === 'Node')
    .map((s) => s.external_ids[OWNER_NAME] ?? ''))],
};

export default watch;
