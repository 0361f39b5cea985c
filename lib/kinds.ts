/**
 * The registry of kinds kovn reconciles: the one list every layer reads (workflow IDs, owner types in
 * `external_ids`, the CLI, `kovn history`, the failure path, the watchers and the activities).
 * Pure and free of Node built-ins, so workflows import it too.
 *
 * Adding a kind: an entry here, then one file per layer named after it (`watchers/<file>.ts`,
 * `workflows/<file>.ts` re-exported from `workflows/index.ts`, `activities/<file>.ts`,
 * `activities/translate/<file>.ts`); see the README's Layout.
 */

export interface KindInfo {
  /** Namespaced objects have `<Kind>/<ns>/<name>` workflow IDs; cluster-scoped ones `<Kind>//<name>`. */
  scope: 'Namespaced' | 'Cluster';
  /** The Temporal workflow type that reconciles one object of the kind. */
  workflowType: string;
  /** The Kubernetes API version of the object, for Events. */
  apiVersion: string;
  /** Names the CLI accepts (`kovn history pod ...`). */
  cli: readonly string[];
  /** The module of each layer: `watchers/<file>.ts`, `workflows/<file>.ts`, `activities/<file>.ts`. */
  file: string;
  /** The object is a node: its runs carry KovnNode = its name (others set KovnNode once they know it). */
  isNode?: boolean;
}

export const KINDS = {
  Node: { scope: 'Cluster', workflowType: 'reconcileNode', apiVersion: 'v1', cli: ['node', 'nodes', 'no'], file: 'node', isNode: true },
  Pod: { scope: 'Namespaced', workflowType: 'reconcilePod', apiVersion: 'v1', cli: ['pod', 'pods', 'po'], file: 'pod' },
  Service: { scope: 'Namespaced', workflowType: 'reconcileService', apiVersion: 'v1', cli: ['service', 'services', 'svc'], file: 'service' },
  NetworkPolicy: { scope: 'Namespaced', workflowType: 'reconcileNetworkPolicy', apiVersion: 'networking.k8s.io/v1', cli: ['networkpolicy', 'networkpolicies', 'netpol'], file: 'network-policy' },
  // A namespace's default-deny port groups (every pod an isolating policy of it selects).
  Namespace: { scope: 'Cluster', workflowType: 'reconcileNamespace', apiVersion: 'v1', cli: ['namespace', 'namespaces', 'ns'], file: 'namespace' },
} as const satisfies Record<string, KindInfo>;

export type Kind = keyof typeof KINDS;

/** Owners of OVN rows: every kind, and the cluster itself (shared topology such as the cluster router). */
export type OwnerType = Kind | 'Cluster';

export const KIND_NAMES = Object.keys(KINDS) as Kind[];

export const isKind = (s: string): s is Kind => Object.hasOwn(KINDS, s);

export const isOwnerType = (s: string): s is OwnerType => s === 'Cluster' || isKind(s);

/** The kind a CLI word names (`pod`, `Nodes`), if any. */
export function kindFromCli(word: string): Kind | undefined {
  const w = word.toLowerCase();
  return KIND_NAMES.find((k) => k.toLowerCase() === w || (KINDS[k].cli as readonly string[]).includes(w));
}

/** An object's reference, as workflows, Events and the CLI name it. */
export interface ObjectRef {
  kind: Kind;
  /** Empty for cluster-scoped kinds. */
  namespace: string;
  name: string;
}

export function refFromKey(kind: Kind, key: string): ObjectRef {
  if (KINDS[kind].scope === 'Cluster') return { kind, namespace: '', name: key };
  const i = key.indexOf('/');
  return { kind, namespace: key.slice(0, i), name: key.slice(i + 1) };
}
