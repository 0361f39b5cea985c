/**
 * From keys to workflow runs: bursts per key are coalesced (one signal carries them all), keys are
 * handled concurrently across objects (at most `concurrency` dispatches in flight) and in order per
 * object, and each becomes a signalWithStart of the object's workflow, so a running change takes it
 * before completing and a finished one gets a new run. A failed dispatch is logged with its
 * classification and retried with backoff while it can succeed; one that cannot is logged and left to
 * the next resync, never retried in a hot loop.
 */
import { EMPTY, buffer, catchError, concatMap, debounceTime, defer, filter, from, groupBy, mergeMap, retry, share, throwError, timer } from 'rxjs';
import type { Observable } from 'rxjs';
import { classify } from '../lib/errors.ts';
import type { KeyEvent } from './informer.ts';

export interface Dispatch {
  (key: string, triggers: string[]): Promise<void>;
}

export interface DispatchOptions {
  windowMs?: number;
  concurrency?: number;
  log?: (msg: string) => void;
}

/** A counting semaphore: at most `n` bodies run at once. */
function limiter(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((r) => queue.push(r));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      queue.shift()?.();
    }
  };
}

/** Coalesces per key within `windowMs`, then dispatches, bounded; a failed dispatch is retried with backoff. */
export function dispatchKeys(keys$: Observable<KeyEvent>, dispatch: Dispatch, opts: DispatchOptions = {}): Observable<string> {
  const { windowMs = 20, concurrency = 32, log = () => undefined } = opts;
  const limit = limiter(concurrency);
  return keys$.pipe(
    // A key's group closes after a quiet minute, so memory follows the objects that change.
    groupBy((e) => e.key, { duration: (g) => g.pipe(debounceTime(60_000)) }),
    mergeMap((g) => {
      const group = g.pipe(share());
      return group.pipe(
        buffer(group.pipe(debounceTime(windowMs))),
        filter((batch) => batch.length > 0),
        concatMap((batch) => {
          const triggers = [...new Set(batch.map((b) => b.trigger))];
          return defer(() => from(limit(() => dispatch(g.key, triggers)))).pipe(
            retry({
              delay: (err: unknown, n: number) => {
                const c = classify(err);
                if (!c.retryable) return throwError(() => err);
                const ms = Math.min(200 * 2 ** n, 30_000);
                log(`dispatch ${g.key} failed (${c.reason}): ${c.message}; retrying in ${ms} ms`);
                return timer(ms);
              },
            }),
            catchError((err: unknown) => {
              const c = classify(err);
              log(`dispatch ${g.key} failed for good (${c.reason}): ${c.message}; left to the next resync`);
              return EMPTY;
            }),
            mergeMap(() => [g.key]),
          );
        }),
      );
    }),
  );
}
