import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1LabelSelector } from '@kubernetes/client-node';
import { matches } from './labels.ts';

test('label selectors: matchLabels and every operator, ANDed; empty matches all; an unknown operator matches nothing', () => {
  const l = { app: 'web', tier: 'front' };
  const table: [V1LabelSelector, boolean][] = [
    [{}, true],
    [{ matchLabels: { app: 'web' } }, true],
    [{ matchLabels: { app: 'db' } }, false],
    [{ matchExpressions: [{ key: 'app', operator: 'In', values: ['web', 'db'] }] }, true],
    [{ matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['web'] }] }, false],
    [{ matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] }, true],
    [{ matchExpressions: [{ key: 'tier', operator: 'Exists' }] }, true],
    [{ matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] }, false],
    [{ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['back'] }] }, false],
    [{ matchExpressions: [{ key: 'app', operator: 'Gt', values: ['1'] }] }, false],
  ];
  for (const [sel, want] of table) assert.equal(matches(sel, l), want, JSON.stringify(sel));
});
