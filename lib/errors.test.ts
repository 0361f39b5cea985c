import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AnnotationError } from './annotations.ts';
import { InvalidInputError, StalePlanError, classify } from './errors.ts';

test('errors are classified by name and fields into retryable or not', () => {
  const ovsdb = (name: string, retryable: boolean): Error => Object.assign(new Error('x'), { name, retryable });
  const http = (statusCode: number): Error => Object.assign(new Error('http'), { statusCode });
  const table: [unknown, boolean, string][] = [
    [new AnnotationError('k8s.ovn.org/node-subnets', 'bad'), false, 'InvalidAnnotation'],
    [new InvalidInputError('NoSubnet', 'node has no subnet'), false, 'NoSubnet'],
    [new StalePlanError('still stale', 5), true, 'StalePlan'],
    [{ name: 'StalePlanError', message: 'across an activity boundary' }, true, 'StalePlan'],
    [ovsdb('OvsdbConstraintViolationError', false), false, 'OvsdbRejected'],
    [ovsdb('OvsdbTimedOutError', true), true, 'OvsdbTransient'],
    [ovsdb('OvsdbDisconnectedError', true), true, 'OvsdbTransient'],
    [http(409), true, 'ApiError409'],
    [http(503), true, 'ApiError503'],
    [http(422), false, 'ApiError422'],
    [new Error('ECONNREFUSED'), true, 'Transient'],
    ['a string', true, 'Transient'],
    [Object.assign(new Error('netns gone'), { name: 'CniError', code: 4, msg: 'netns gone' }), false, 'CniError:4'],
  ];
  for (const [err, retryable, reason] of table) {
    assert.deepEqual([classify(err).retryable, classify(err).reason], [retryable, reason], String(err));
  }
});
