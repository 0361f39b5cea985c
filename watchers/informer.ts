/**
 * Kubernetes changes as an RxJS stream of object keys (level-driven: keys, never diffs). Changes that
 * do not touch networking are dropped; a failed informer restarts with backoff. The informer's store is
 * kept for the periodic resync, which compares it with the NB cache (see watchers/main.ts).
 */
import { makeInformer } from '@kubernetes/client-node';
import type { KubeConfig, KubernetesObject, ListPromise } from '@kubernetes/client-node';
import { Observable } from 'rxjs';

export interface KeyEvent {
  key: string;
  /** What happened, for the run's history: "add", "update", "delete", "resync: ...". */
  trigger: string;
}

export interface InformerSource<T extends KubernetesObject> {
  kc: KubeConfig;
  path: string;
  list: ListPromise<T>;
  /** The keys an object maps to (its own key for the primary object; a secondary watch maps to others). */
  keys: (obj: T) => string[];
  /** The fields that matter, compared between old and new to drop irrelevant updates. */
  relevant: (obj: T) => unknown;
  /**
   * Whether kovn has anything to do for the object now (default: always). Objects for which it is false
   * emit nothing, not even when deleted; their fingerprint is still kept, so the change that makes them
   * actionable is seen.
   */
  actionable?: (obj: T) => boolean;
  /** An added object (the informer's list) that needs nothing now, e.g. already in sync: no event. */
  skipAdd?: (obj: T) => boolean;
  log: (msg: string) => void;
}

/** A running informer: its key events and its store (what the apiserver last said). */
export interface Informer<T extends KubernetesObject> {
  events$: Observable<KeyEvent>;
  /** The objects the informer holds now; empty until its first list. */
  list: () => readonly T[];
  /** Whether the first list has completed (an empty store before it means "not known yet"). */
  synced: () => boolean;
  /** The object of a key (`ns/name` or `name`), as the store holds it now. */
  get: (key: string) => T | undefined;
}

export function informer<T extends KubernetesObject>(src: InformerSource<T>): Informer<T> {
  let store: (() => readonly T[]) | undefined;
  let byName: ((name: string, namespace?: string) => T | undefined) | undefined;
  let listed = false;
  const list: ListPromise<T> = async () => {
    const r = await src.list();
    listed = true;
    return r;
  };
  const events$ = new Observable<KeyEvent>((sub) => {
    const inf = makeInformer<T>(src.kc, src.path, list);
    store = () => inf.list();
    byName = (name, namespace) => inf.get(name, namespace);
    const seen = new Map<string, string>();
    const id = (o: T): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
    const fingerprint = (o: T): string => JSON.stringify(src.relevant(o));
    const actionable = (o: T): boolean => src.actionable?.(o) ?? true;
    const emit = (o: T, trigger: string): void => {
      if (actionable(o)) for (const key of src.keys(o)) sub.next({ key, trigger });
    };
    // A kind's watch code that throws on one object must not stop the others (or the controller): the
    // object is dispatched anyway, so its run looks at it, and the error is logged.
    const guarded = (what: string, fn: (o: T) => void) => (o: T): void => {
      try {
        fn(o);
      } catch (err) {
        src.log(`informer ${src.path}: ${what} ${id(o)}: ${err instanceof Error ? err.message : String(err)}`);
        try {
          for (const key of src.keys(o)) sub.next({ key, trigger: what });
        } catch {
          /* keys itself failed: logged above; the next resync tries again */
        }
      }
    };
    inf.on('add', guarded('add', (o) => {
      seen.set(id(o), fingerprint(o));
      if (!src.skipAdd?.(o)) emit(o, 'add');
    }));
    inf.on('update', guarded('update', (o) => {
      const fp = fingerprint(o);
      if (seen.get(id(o)) === fp) return; // a status heartbeat or another field networking ignores
      seen.set(id(o), fp);
      emit(o, 'update');
    }));
    inf.on('delete', guarded('delete', (o) => {
      seen.delete(id(o));
      emit(o, 'delete');
    }));
    let delay = 500;
    let stopped = false;
    let restart: NodeJS.Timeout | undefined;
    inf.on('error', (err: unknown) => {
      if (stopped) return;
      src.log(`informer ${src.path}: ${err instanceof Error ? err.message : String(err)}; restarting in ${delay} ms`);
      restart = setTimeout(() => {
        if (!stopped) void inf.start().then(() => { delay = 500; }, () => undefined);
      }, delay);
      delay = Math.min(delay * 2, 30_000);
    });
    inf.start().catch((err: unknown) => sub.error(err));
    return () => {
      stopped = true;
      clearTimeout(restart);
      store = undefined;
      byName = undefined;
      listed = false;
      void inf.stop();
    };
  });
  const get = (key: string): T | undefined => {
    const i = key.indexOf('/');
    return i < 0 ? byName?.(key) : byName?.(key.slice(i + 1), key.slice(0, i));
  };
  return { events$, list: () => store?.() ?? [], synced: () => listed && store !== undefined, get };
}
