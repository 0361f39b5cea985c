/**
 * Kubernetes changes as an RxJS stream of object keys (level-driven: keys, never diffs). Changes that
 * do not touch networking are dropped; a failed informer restarts with backoff; a periodic resync
 * re-emits every key so nothing missed stays missed.
 */
import { makeInformer } from '@kubernetes/client-node';
import type { KubeConfig, KubernetesObject, ListPromise } from '@kubernetes/client-node';
import { Observable } from 'rxjs';

export interface KeyEvent {
  key: string;
  /** What happened, for the run's history: "add", "update: spec.nodeName", "delete", "resync". */
  trigger: string;
}

export interface InformerSource<T extends KubernetesObject> {
  kc: KubeConfig;
  path: string;
  list: ListPromise<T>;
  key: (obj: T) => string;
  /** The fields that matter to networking, compared between old and new to drop irrelevant updates. */
  relevant: (obj: T) => unknown;
  /**
   * Whether kovn has anything to do for the object now (default: always). Objects for which it is false
   * emit nothing, not even when deleted; their fingerprint is still kept, so the change that makes them
   * actionable is seen.
   */
  actionable?: (obj: T) => boolean;
  resyncMs: number;
}

export function watchKeys<T extends KubernetesObject>(src: InformerSource<T>): Observable<KeyEvent> {
  return new Observable<KeyEvent>((sub) => {
    const informer = makeInformer<T>(src.kc, src.path, src.list);
    const seen = new Map<string, string>();
    const fingerprint = (o: T): string => JSON.stringify(src.relevant(o));
    const actionable = (o: T): boolean => src.actionable?.(o) ?? true;
    informer.on('add', (o) => {
      const k = src.key(o);
      seen.set(k, fingerprint(o));
      if (actionable(o)) sub.next({ key: k, trigger: 'add' });
    });
    informer.on('update', (o) => {
      const k = src.key(o);
      const fp = fingerprint(o);
      if (seen.get(k) === fp) return; // a status heartbeat or another field networking ignores
      seen.set(k, fp);
      if (actionable(o)) sub.next({ key: k, trigger: 'update' });
    });
    informer.on('delete', (o) => {
      const k = src.key(o);
      seen.delete(k);
      if (actionable(o)) sub.next({ key: k, trigger: 'delete' });
    });
    let delay = 500;
    let stopped = false;
    informer.on('error', (err: unknown) => {
      if (stopped) return;
      console.error(`informer ${src.path}: ${err instanceof Error ? err.message : String(err)}; restarting in ${delay} ms`);
      setTimeout(() => void informer.start().then(() => { delay = 500; }, () => undefined), delay);
      delay = Math.min(delay * 2, 30_000);
    });
    const resync = setInterval(() => {
      for (const o of informer.list()) if (actionable(o)) sub.next({ key: src.key(o), trigger: 'resync' });
    }, src.resyncMs);
    informer.start().catch((err: unknown) => sub.error(err));
    return () => {
      stopped = true;
      clearInterval(resync);
      void informer.stop();
    };
  });
}
