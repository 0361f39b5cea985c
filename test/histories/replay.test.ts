/**
 * Replays recorded workflow histories (test/histories/*.json, recorded from the suites' boxes by
 * record.ts) against today's workflow code: a change that is not deterministic against a history that
 * a running cluster may hold fails here, in CI, not on a cluster.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { test } from 'node:test';
import proto from '@temporalio/proto';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';

Runtime.install({ logger: new DefaultLogger('WARN') });
const dir = new URL('./', import.meta.url).pathname;
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

test('recorded histories of every kovn workflow type replay against today\'s workflow code', { timeout: 120_000 }, async () => {
  const recorded = files.map((f) => JSON.parse(readFileSync(`${dir}${f}`, 'utf8')) as { workflowId: string; type: string; binpb: string });
  // Every workflow type kovn runs has at least one recorded history.
  const types = new Set(recorded.map((r) => r.type));
  for (const t of ['reconcilePod', 'reconcileNode', 'reconcileService', 'cniAdd', 'cniDel']) assert.ok(types.has(t), `a recorded ${t} history (record one with test/histories/record.ts)`);
  const histories = recorded.map((r) => ({ workflowId: r.workflowId, history: proto.temporal.api.history.v1.History.decode(Buffer.from(r.binpb, 'base64')) }));
  const failures: string[] = [];
  let replayed = 0;
  for await (const r of Worker.runReplayHistories({ workflowsPath: new URL('../../workflows/index.ts', import.meta.url).pathname, replayName: 'kovn-replay' }, histories)) {
    replayed++;
    if (r.error) failures.push(`${r.workflowId}: ${r.error.message}`);
  }
  assert.equal(replayed, histories.length);
  assert.deepEqual(failures, []);
});
