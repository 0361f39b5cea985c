import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Subject, firstValueFrom, take, toArray } from 'rxjs';
import type { KeyEvent } from './informer.ts';
import { ServiceError } from '@temporalio/client';
import { dispatchKeys } from './pipeline.ts';

const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('a burst on one key becomes one dispatch carrying every distinct trigger', async () => {
  const src = new Subject<KeyEvent>();
  const calls: [string, string[]][] = [];
  const done = firstValueFrom(dispatchKeys(src, (key, triggers) => { calls.push([key, triggers]); return Promise.resolve(); }, { windowMs: 20 }).pipe(take(2), toArray()));
  for (const t of ['add', 'update', 'update', 'update']) src.next({ key: 'default/a', trigger: t });
  src.next({ key: 'default/b', trigger: 'add' });
  assert.deepEqual((await done).sort(), ['default/a', 'default/b']);
  assert.deepEqual(calls.sort(), [['default/a', ['add', 'update']], ['default/b', ['add']]]);
  src.complete(); // ends the per-key groups, whose idle timers (60 s) would keep the test process alive
});

test('one key is dispatched in order, one burst at a time; a failed dispatch is retried', async () => {
  const src = new Subject<KeyEvent>();
  const seen: string[] = [];
  let failures = 1;
  let inFlight = 0;
  const sub = dispatchKeys(src, async (_key, triggers) => {
    inFlight++;
    assert.equal(inFlight, 1, 'never two dispatches of one key at once');
    await tick(30);
    inFlight--;
    if (failures-- > 0) throw new Error('Temporal unavailable');
    seen.push(triggers.join(','));
  }, { windowMs: 10 }).subscribe();
  src.next({ key: 'k', trigger: 'first' });
  await tick(15);
  src.next({ key: 'k', trigger: 'second' });
  for (let i = 0; i < 100 && seen.length < 2; i++) await tick(20);
  src.complete();
  sub.unsubscribe();
  assert.deepEqual(seen, ['first', 'second']);
});

test('dispatches across keys are bounded: never more than `concurrency` at once, and all complete', async () => {
  const src = new Subject<KeyEvent>();
  let inFlight = 0;
  let peak = 0;
  const done = firstValueFrom(dispatchKeys(src, async () => {
    peak = Math.max(peak, ++inFlight);
    await tick(20);
    inFlight--;
  }, { windowMs: 5, concurrency: 3 }).pipe(take(12), toArray()));
  for (let i = 0; i < 12; i++) src.next({ key: `ns/p${i}`, trigger: 'add' });
  assert.equal((await done).length, 12);
  assert.equal(peak, 3);
  src.complete();
});

test('a dispatch that can never succeed (the Temporal frontend refuses it) is logged once as final and not retried', async () => {
  const src = new Subject<KeyEvent>();
  const logs: string[] = [];
  let calls = 0;
  const sub = dispatchKeys(src, () => {
    calls++;
    // What signalWithStart throws for a request the frontend refuses: a ServiceError with the gRPC status in its cause.
    return Promise.reject(new ServiceError('Failed to signalWithStart Workflow', { cause: Object.assign(new Error('3 INVALID_ARGUMENT: search attribute KovnKind is not defined'), { code: 3, details: 'search attribute KovnKind is not defined' }) }));
  }, { windowMs: 5, log: (m) => logs.push(m) }).subscribe();
  src.next({ key: 'ns/bad', trigger: 'add' });
  await tick(300);
  src.complete();
  sub.unsubscribe();
  assert.equal(calls, 1);
  assert.equal(logs.length, 1);
  assert.match(logs[0] ?? '', /ns\/bad failed for good \(Grpc3\)/);
});

test('a dispatch the frontend could not take now (UNAVAILABLE) is retried until it goes through', async () => {
  const src = new Subject<KeyEvent>();
  let calls = 0;
  const done = firstValueFrom(dispatchKeys(src, () => {
    calls++;
    return calls < 3 ? Promise.reject(new ServiceError('Failed to signalWithStart Workflow', { cause: Object.assign(new Error('14 UNAVAILABLE'), { code: 14 }) })) : Promise.resolve();
  }, { windowMs: 5 }).pipe(take(1)));
  src.next({ key: 'ns/later', trigger: 'add' });
  assert.equal(await done, 'ns/later');
  assert.equal(calls, 3);
  src.complete();
});
