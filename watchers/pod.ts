/**
 * The Pod kind's watch: bound, non-host-network pods (and any pod whose logical port is still there to
 * remove); a change matters when its incarnation, node, host networking, deletion, terminal phase, or
 * the agreement of its pod-networks annotation with its port changes. Secondary: its node.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { NODE_SUBNETS, POD_NETWORKS, PodNetworks, readAnnotation } from '../lib/annotations.ts';
import { ownedPodPorts } from '../activities/nb.ts';
import { podPortName } from '../activities/translate/pod.ts';
import { keyOf } from './watch.ts';
import type { Watch, WatchContext } from './watch.ts';

const portOf = (p: V1Pod, { nb }: WatchContext) =>
  nb.cache.table('Logical_Switch_Port').byIndex({ name: podPortName(p.metadata?.namespace ?? '', p.metadata?.name ?? '') });

/**
 * How long a newly bound pod's node gets to publish its network before the controller's run does it: past
 * a burst's slowest ADDs (a 100-pod burst on 2 nodes took up to 25 s), so a busy node's ADDs get no
 * duplicate run beside them.
 */
export const NODE_FIRST_MS = 30_000;

const terminal = (p: V1Pod): boolean => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed';
const wantsNetwork = (p: V1Pod): boolean => Boolean(p.spec?.nodeName) && p.spec?.hostNetwork !== true && !terminal(p);

/**
 * Whether the pod's k8s.ovn.org/pod-networks disagrees with its logical port. kovn's own write agrees,
 * so it does not start another run; garbage or a stale value written by someone else does.
 */
function annotationTampered(p: V1Pod, ctx: WatchContext): boolean {
  const port = portOf(p, ctx);
  if (!port) return false;
  try {
    const net = readAnnotation(p.metadata?.annotations, POD_NETWORKS, PodNetworks)?.default;
    // Absent is what a pod looks like between its port and its annotation being written: not a change.
    if (!net) return false;
    const want = (port.addresses[0] ?? '').split(' ');
    return want[0] !== net.mac_address || net.ip_addresses.some((a) => !want.includes(a.split('/')[0] ?? ''));
  } catch {
    return true;
  }
}

const watch: Watch<V1Pod> = {
  secondary: [{
    // A node whose network comes up (its subnets annotated) wakes the pods bound to it that wait for it.
    path: '/api/v1/nodes',
    list: ({ kube }) => () => kube.core.listNode(),
    relevant: (n) => [n.metadata?.uid, n.metadata?.annotations?.[NODE_SUBNETS]],
    keys: (n, ctx) => (ctx.objects('Pod') as V1Pod[])
      .filter((p) => p.spec?.nodeName === n.metadata?.name && wantsNetwork(p) && !watch.inSync(p, ctx)).map(keyOf),
  }],
  kind: 'Pod',
  path: '/api/v1/pods',
  list: ({ kube }) => () => kube.core.listPodForAllNamespaces(),
  relevant: (p, ctx) => [p.metadata?.uid, p.spec?.nodeName, p.spec?.hostNetwork, p.metadata?.deletionTimestamp, terminal(p), annotationTampered(p, ctx)],
  // A pod not yet bound, or on the host's network, has no network of kovn's to make: no run until it is
  // bound, unless a port of its name is there to remove.
  actionable: (p, ctx) => (Boolean(p.spec?.nodeName) && p.spec?.hostNetwork !== true) || portOf(p, ctx) !== undefined,
  inSync: (p, ctx) => {
    const port = portOf(p, ctx);
    if (!wantsNetwork(p)) return port === undefined;
    if (!port || port.options['iface-id-ver'] !== p.metadata?.uid || port.options['requested-chassis'] !== p.spec?.nodeName) return false;
    try {
      return readAnnotation(p.metadata?.annotations, POD_NETWORKS, PodNetworks)?.default !== undefined && !annotationTampered(p, ctx);
    } catch {
      return false;
    }
  },
  // A pod bound with no port yet gets it from its node's CNI ADD (allocated there, published through the
  // controller's queue): its own run starts only if the ADD has not published it by then (the node's
  // agent is down, say), or at once for anything else (deletion, drift, a stale port).
  deferMs: (p, ctx) => (wantsNetwork(p) && !portOf(p, ctx) ? NODE_FIRST_MS : 0),
  ownerKeys: ({ nb }) => ownedPodPorts(nb).map((p) => p.owner),
};

export default watch;
