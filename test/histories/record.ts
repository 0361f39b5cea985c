#!/usr/bin/env node
/**
 * Records workflow histories from a running box into test/histories/ for the replay test, so a change
 * to workflow code that is not deterministic against them fails CI. Usage (with the box up and runs of
 * each workflow type in it): node test/histories/record.ts WORKFLOW-ID[@RUN-ID] ...
 * Each file is named after its workflow type and a slug of its ID.
 */
import { writeFileSync } from 'node:fs';
import proto from '@temporalio/proto';
import { connectTemporal } from '../../lib/history.ts';

const ids = process.argv.slice(2);
if (ids.length === 0) {
  console.error('usage: node test/histories/record.ts WORKFLOW-ID[@RUN-ID] ...');
  process.exit(2);
}
const address = process.env.KOVN_TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
const t = await connectTemporal(address, 'kovn');
try {
  for (const ref of ids) {
    const [id = '', runId] = ref.split('@');
    const handle = t.client.workflow.getHandle(id, runId);
    const desc = await handle.describe();
    if (desc.status.name === 'RUNNING') throw new Error(`${id}: still running; record closed runs only`);
    // The wire form, base64: this SDK's JSON decoder (historyFromJSON) is broken by a second protobufjs
    // under @temporalio/common, and the binary form is what the server itself stores.
    const history = await handle.fetchHistory();
    const binpb = Buffer.from(proto.temporal.api.history.v1.History.encode(history).finish()).toString('base64');
    const file = new URL(`./${desc.type}.${id.replaceAll(/[^A-Za-z0-9-]+/g, '_')}.${desc.status.name.toLowerCase()}.${desc.runId.slice(0, 8)}.json`, import.meta.url).pathname;
    writeFileSync(file, `${JSON.stringify({ workflowId: id, runId: desc.runId, type: desc.type, status: desc.status.name, binpb })}\n`);
    console.log(`${file}: ${desc.type} ${desc.status.name}, ${history.events?.length ?? 0} events`);
  }
} finally {
  await t.close();
}
