import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** The checkout this code runs from. */
export const REPO = resolve(import.meta.dirname, '../..');

/** Where the box keeps its state: pidfiles, logs, sockets, certificates, databases. */
export const STATE = resolve(process.env.KOVN_STATE_DIR ?? join(REPO, '.kovn'));

/** Where Go-built tools and the pod image are cached, outside the checkout, keyed by version. */
export const CACHE = resolve(process.env.KOVN_CACHE_DIR ?? join(homedir(), '.cache', 'kovn'));

export const IMAGE = 'kovn.local/toolbox:1';
/** CoreDNS, built here from the Go module proxy (tools/go/coredns); its tag is the module's version. */
export const COREDNS_IMAGE = 'kovn.local/coredns:1.15.0';

/** The box's cluster DNS: the kube-dns Service's ClusterIP and the cluster domain kubelets hand to pods. */
export const DNS = { serviceIp: '10.96.0.10', domain: 'cluster.local' };

/** Loopback ports in the root namespace through which users reach the box. */
export const PORTS = {
  apiserver: Number(process.env.KOVN_API_PORT ?? 6443),
  temporal: Number(process.env.KOVN_TEMPORAL_PORT ?? 7233),
  temporalUi: Number(process.env.KOVN_UI_PORT ?? 8233),
};

/**
 * The underlay: a bridge in its own namespace; the control plane, the nodes and the outside hang off it.
 * The outside (`outsideNs`) stands for the world beyond the cluster: the nodes' default router on the
 * underlay, with an external host behind it (on a link of its own, `world`, off the nodes' subnet). It
 * forwards nothing and has no default route: no test packet leaves the machine's own namespaces.
 */
export const NET = {
  underlayNs: 'kovn-ul',
  cpNs: 'kovn-cp',
  outsideNs: 'kovn-out',
  bridge: 'br0',
  prefixLen: 24,
  cpIp: '172.29.0.1',
  outsideIp: '172.29.0.2',
  nodeIp: (i: number): string => `172.29.0.${10 + i}`,
  /** The external host (TEST-NET-3), /24 on `world` in the outside namespace. */
  externalHostIp: '203.0.113.10',
  // IPv6, only on a dual-stack box.
  underlay6: { prefix: 'fd00:172:29::/64', prefixLen: 64 },
  cpIp6: 'fd00:172:29::1',
  outsideIp6: 'fd00:172:29::2',
  nodeIp6: (i: number): string => `fd00:172:29::${10 + i}`,
  /** The external host's IPv6 address (documentation prefix), /64 on `world`. */
  externalHostIp6: '2001:db8:203::10',
  /** Ports of the external host's echo servers. */
  echo: { http: 80, udp: 9000 },
  apiserverServiceIp: '10.96.0.1',
  /** kovn's LoadBalancer pools: on the underlay, so the outside reaches them through ARP/NDP alone (no route). */
  lbPool: '172.29.0.240/28',
  lbPool6: 'fd00:172:29::f0/124',
};

export const nodeName = (i: number): string => `node-${i}`;
export const nodeNs = (i: number): string => `kovn-${nodeName(i)}`;
export const NS_PREFIX = 'kovn-';

/** Search attributes every kovn workflow run carries (registered on the dev server). */
export const SEARCH_ATTRIBUTES = ['KovnKind', 'KovnNamespace', 'KovnName', 'KovnNode', 'KovnOutcome'] as const;
export const TEMPORAL_NAMESPACE = 'kovn';

export const dirs = {
  pid: join(STATE, 'pid'),
  log: join(STATE, 'log'),
  pki: join(STATE, 'pki'),
  run: join(STATE, 'run'),
  /** Each daemon's supervisor: its state (pid, restarts, last exit) and whether `kovn stop` holds it down. */
  supervise: join(STATE, 'supervise'),
  etcd: join(STATE, 'etcd'),
  temporal: join(STATE, 'temporal'),
  ovn: join(STATE, 'ovn'),
  node: (name: string): string => join(STATE, 'nodes', name),
};

export const files = {
  adminKubeconfig: join(STATE, 'kubeconfig'),
  nbSock: join(dirs.ovn, 'nb.sock'),
  sbSock: join(dirs.ovn, 'sb.sock'),
  nodesFile: join(STATE, 'nodes.json'),
};
