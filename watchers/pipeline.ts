/**
 * From keys to workflow runs: bursts per key are coalesced (one signal carries them all), keys are
 * handled concurrently across objects and in order per object, and each becomes a signalWithStart of
 * the object's workflow, so a running change takes it before completing and a finished one gets a new run.
 */
import { buffer, concatMap, debounceTime, defer, filter, from, groupBy, mergeMap, retry, share, timer } from 'rxjs';
import type { Observable } from 'rxjs';
import type { KeyEvent } from './informer.ts';

export interface Dispatch {
  (key: string, triggers: string[]): Promise<void>;
}

/** Coalesces per key within `windowMs`, then dispatches; a failed dispatch is retried with backoff. */
export function dispatchKeys(keys$: Observable<KeyEvent>, dispatch: Dispatch, windowMs = 20): Observable<string> {
  return keys$.pipe(
    // A key's group closes after a quiet minute, so memory follows the objects that change.
    groupBy((e) => e.key, { duration: (g) => g.pipe(debounceTime(60_000)) }),
    mergeMap((g) => {
      const group = g.pipe(share());
      return group.pipe(
      buffer(group.pipe(debounceTime(windowMs))),
      filter((batch) => batch.length > 0),
      concatMap((batch) => defer(() => from(dispatch(g.key, [...new Set(batch.map((b) => b.trigger))]))).pipe(
        retry({ delay: (_err: unknown, n: number) => timer(Math.min(200 * 2 ** n, 30_000)) }),
        mergeMap(() => [g.key]),
      )),
      );
    }),
  );
}
