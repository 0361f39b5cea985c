import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Subject, firstValueFrom, take, toArray } from 'rxjs';
import type { KeyEvent } from './informer.ts';
import { dispatchKeys } from './pipeline.ts';

const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('a burst on one key becomes one dispatch carrying every distinct trigger', async () => {
  const src = new Subject<KeyEvent>();
  const calls: [string, string[]][] = [];
  const done = firstValueFrom(dispatchKeys(src, (key, triggers) => { calls.push([key, triggers]); return Promise.resolve(); }, 20).pipe(take(2), toArray()));
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
  }, 10).subscribe();
  src.next({ key: 'k', trigger: 'first' });
  await tick(15);
  src.next({ key: 'k', trigger: 'second' });
  for (let i = 0; i < 100 && seen.length < 2; i++) await tick(20);
  src.complete();
  sub.unsubscribe();
  assert.deepEqual(seen, ['first', 'second']);
});
