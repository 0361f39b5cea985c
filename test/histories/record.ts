#!/usr/bin/env node
/**
 * Records workflow histories from a running box into test/histories/ for the replay test, so a change
 * to workflow code that is not deterministic against them fails CI. Usage (with the box up and runs of
 * each workflow type in it): node test/histories/record.ts WORKFLOW-ID[@RUN-ID] ...
 * Each file is named after its workflow type and a slug of its ID.
 */
import { writeFileSync } from 'node:fs';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { connectTemporal } from '../../lib/history.ts';

const ids = process.argv.slice(2);
if (ids.length === 0) {
  console.error('usage: node test/histories/record.ts WORKFLOW-ID[@RUN-ID] ...');
  process.exit(2);
}
const t = await connectTemporal(process.env.KOVN_TEMPORAL_ADDRESS ?? '127.0.0.1:7233', 'kovn');
try {
  for (const ref of ids) {
    const [id = '', run] = ref.split('@');
    const handle = t.client.workflow.getHandle(id, run);
    const desc = await handle.describe();
    if (desc.status.name === 'RUNNING') throw new Error(`${id}: still running; record closed runs only`);
    const history = await handle.fetchHistory();
    const file = new URL(`./${desc.type}.${id.replaceAll(/[^A-Za-z0-9-]+/g, '_')}.json`, import.meta.url).pathname;
    writeFileSync(file, `${JSON.stringify({ workflowId: id, runId: desc.runId, type: desc.type, status: desc.status.name, history: JSON.parse(historyToJSON(history)) as unknown })}\n`);
    console.log(`${file}: ${desc.type} ${desc.status.name}, ${history.events?.length ?? 0} events`);
  }
} finally {
  await t.close();
}
