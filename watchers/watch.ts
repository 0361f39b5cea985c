/**
 * What a kind's watcher says (one file per kind in watchers/, named after it, default-exporting a
 * Watch): the primary object, which of its changes matter, secondary watches that map other objects to
 * this kind's keys (as controller-runtime's `Watches`), and the two checks the periodic resync makes
 * in-process instead of re-running every object: is an object in sync with NB, and which owners of
 * NB rows no longer exist.
 */
import type { KubernetesObject, ListPromise } from '@kubernetes/client-node';
import type { NbClient } from '../activities/nb.ts';
import type { Kind } from '../lib/kinds.ts';
import type { ClusterConfig } from '../lib/cluster-config.ts';
import type { Kube } from '../lib/kube.ts';

export interface WatchContext {
  kube: Kube;
  nb: NbClient;
  /** The cluster's networks, as the activities see them. */
  cfg: ClusterConfig;
  /** The objects a kind's informer holds now (empty while it is not running): for secondary watches' keys. */
  objects: (kind: Kind) => readonly KubernetesObject[];
  /** One object of a kind's informer, by key (`ns/name`), if it holds it. */
  object: (kind: Kind, key: string) => KubernetesObject | undefined;
  /** The objects a secondary watch's informer holds now, by its path (empty while it is not running). */
  related: (path: string) => readonly KubernetesObject[];
}

/** Another kind of object whose changes map to this kind's keys (an EndpointSlice to its Service). */
export interface SecondaryWatch<T extends KubernetesObject = KubernetesObject> {
  path: string;
  list: (ctx: WatchContext) => ListPromise<T>;
  relevant: (obj: T, ctx: WatchContext) => unknown;
  /** The keys (of the watching kind) this object affects. */
  keys: (obj: T, ctx: WatchContext) => string[];
}

export interface Watch<T extends KubernetesObject = KubernetesObject> {
  kind: Kind;
  /** The primary object's list/watch path, e.g. `/api/v1/pods`. */
  path: string;
  list: (ctx: WatchContext) => ListPromise<T>;
  /** The fields that matter to networking: an update that leaves them equal starts nothing. */
  relevant: (obj: T, ctx: WatchContext) => unknown;
  /** Whether kovn has anything to do for the object now (default: always). */
  actionable?: (obj: T, ctx: WatchContext) => boolean;
  /** Whether NB (and kovn's annotations) already hold what the object needs: resync skips those. */
  inSync: (obj: T, ctx: WatchContext) => boolean;
  /**
   * How long to leave an object to someone else first (a pod's own node publishes its network during
   * its CNI ADD): its change is dispatched after this many ms, and only if the object still needs a run
   * then. 0 or absent: at once.
   */
  deferMs?: (obj: T, ctx: WatchContext) => number;
  /** Keys of the objects that own rows in NB (read from the NB cache): an owner not in the store is an orphan. */
  ownerKeys: (ctx: WatchContext) => string[];
  secondary?: SecondaryWatch[];
}

/** `<ns>/<name>` for namespaced objects, `<name>` otherwise: the key the workflow ID is built from. */
export const keyOf = (o: KubernetesObject): string => (o.metadata?.namespace ? `${o.metadata.namespace}/${o.metadata.name ?? ''}` : o.metadata?.name ?? '');
