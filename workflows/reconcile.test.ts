// Pure parts of the reconcile loop: how a failure seen by a workflow is read, and the backoff.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffMs, failureOf } from './reconcile.ts';

test('a failure is read from the activity failure\'s cause: its classified reason, message and finality', () => {
  const table: [string, unknown, { reason: string; final: boolean; message: RegExp }][] = [
    ['a final activity failure (the interceptor\'s ApplicationFailure)',
      { name: 'ActivityFailure', message: 'Activity task failed', cause: { name: 'ApplicationFailure', type: 'ForeignPort', message: 'port x is not owned by kovn', nonRetryable: true } },
      { reason: 'ForeignPort', final: true, message: /port x is not owned by kovn \(Activity task failed\)/ }],
    ['a retryable one whose attempts ran out',
      { name: 'ActivityFailure', message: 'Activity task failed', cause: { name: 'ApplicationFailure', type: 'Transient', message: 'ECONNREFUSED', nonRetryable: false } },
      { reason: 'Transient', final: false, message: /ECONNREFUSED/ }],
    ['a timeout (no type: named after what failed)',
      { name: 'ActivityFailure', message: 'Activity task timed out', cause: { name: 'TimeoutFailure', message: 'activity ScheduleToClose timeout' } },
      { reason: 'TimeoutFailure', final: false, message: /ScheduleToClose/ }],
    ['a bug in workflow code', new TypeError('cannot read properties of undefined'), { reason: 'TypeError', final: false, message: /cannot read properties/ }],
  ];
  for (const [name, err, want] of table) {
    const f = failureOf(err);
    assert.equal(f.reason, want.reason, name);
    assert.equal(f.final, want.final, name);
    assert.match(f.message, want.message, name);
  }
});

test('backoff after failed passes doubles from 1 s and stops at 30 s', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 20].map(backoffMs), [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
});
