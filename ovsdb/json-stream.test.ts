// The framing parser on raw byte chunks: values split anywhere, many per read, tricky strings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JsonFramingError, JsonStreamParser } from './json-stream.ts';

const values: unknown[] = [
  { id: 1, result: ['OVN_Northbound', '_Server'], error: null },
  { method: 'update2', params: ['m', { T: { u: { modify: { s: 'a}b{c]"\\' } } } }], id: null },
  { id: 'echo', method: 'echo', params: ['héllo ✓ 🚀', '\\"}{', '[[[', 'tab\there'] },
  [1, [2, [3, {}]], '"'],
];
const bytes = Buffer.from(values.map((v) => JSON.stringify(v)).join(' \n'), 'utf8');

test('parses many values delivered in one read', () => {
  assert.deepEqual(new JsonStreamParser().push(bytes), values);
});

test('parses values split at every byte boundary', () => {
  for (let cut = 1; cut < bytes.length; cut++) {
    const p = new JsonStreamParser();
    const out = [...p.push(bytes.subarray(0, cut)), ...p.push(bytes.subarray(cut))];
    assert.deepEqual(out, values, `split at ${cut}`);
    assert.equal(p.partial, false);
  }
});

test('parses a byte-at-a-time stream (multi-byte UTF-8 split across reads)', () => {
  const p = new JsonStreamParser();
  const out: unknown[] = [];
  for (let i = 0; i < bytes.length; i++) out.push(...p.push(bytes.subarray(i, i + 1)));
  assert.deepEqual(out, values);
});

test('reports malformed input as JsonFramingError and recovers for a new stream', () => {
  const p = new JsonStreamParser();
  assert.throws(() => p.push(Buffer.from('{"id": 1, "result": }')), JsonFramingError);
  assert.throws(() => p.push(Buffer.from('}')), /unexpected '}'/);
  assert.throws(() => p.push(Buffer.from('42')), /unexpected byte/);
  assert.throws(() => p.push(Buffer.from('"top"')), /must be an object/);
  assert.deepEqual(p.push(Buffer.from('{"ok":true}')), [{ ok: true }]);
});

test('refuses a value larger than the limit', () => {
  const p = new JsonStreamParser(64);
  assert.throws(() => p.push(Buffer.from(`{"a":"${'x'.repeat(100)}`)), /exceeds 64 bytes/);
});
