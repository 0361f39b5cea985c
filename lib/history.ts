/**
 * `kovn history` and `kovn replay`: an object's change runs as the Temporal server records them
 * (found by kovn's search attributes), and a failed change re-run from its start by a reset.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { WorkflowExecutionInfo } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { RunSummary } from './change.ts';
import { KINDS } from './kinds.ts';
import type { Kind } from './kinds.ts';

export interface HistoryRun {
  workflowId: string;
  runId: string;
  type: string;
  status: string;
  start: string;
  durationMs: number | null;
  triggers: string[];
  outcome: string;
  changes: RunSummary['changes'];
  error?: string;
  waitingFor?: string;
}

export async function connectTemporal(address: string, namespace: string): Promise<{ client: Client; close(): Promise<void> }> {
  const connection = await Connection.connect({ address, connectTimeout: '5s' });
  return { client: new Client({ connection, namespace }), close: () => connection.close() };
}

/** Lucene-free escaping for a Keyword value in a visibility query. */
const q = (v: string): string => `'${v.replaceAll("'", "\\'")}'`;

function toRun(w: Omit<WorkflowExecutionInfo, 'raw'>): HistoryRun {
  const summary = (w.memo?.summary ?? {}) as Partial<RunSummary>;
  const start = w.startTime;
  const close = w.closeTime;
  return {
    workflowId: w.workflowId, runId: w.runId, type: w.type, status: w.status.name,
    start: start.toISOString(), durationMs: close ? close.getTime() - start.getTime() : null,
    // A run that failed (or was terminated) says so whatever its memo last said.
    triggers: summary.triggers ?? [],
    outcome: w.status.name === 'RUNNING' || w.status.name === 'COMPLETED' || w.status.name === 'CONTINUED_AS_NEW' ? summary.outcome ?? w.status.name.toLowerCase() : w.status.name.toLowerCase(),
    changes: summary.changes ?? [], ...(summary.error ? { error: summary.error } : {}), ...(summary.waitingFor ? { waitingFor: summary.waitingFor } : {}),
  };
}

/** Every run of an object's changes, the controller's and its nodes', oldest first. */
export async function history(client: Client, kind: Kind, namespace: string, name: string): Promise<HistoryRun[]> {
  const query = `KovnKind=${q(kind)} AND KovnName=${q(name)}${KINDS[kind].scope === 'Cluster' ? '' : ` AND KovnNamespace=${q(namespace)}`}`;
  const runs: HistoryRun[] = [];
  for await (const w of client.workflow.list({ query })) runs.push(toRun(w));
  return runs.sort((a, b) => a.start.localeCompare(b.start));
}

export function formatHistory(runs: HistoryRun[]): string {
  if (runs.length === 0) return 'no runs found';
  const lines: string[] = [];
  for (const r of runs) {
    const dur = r.durationMs === null ? 'running' : `${r.durationMs} ms`;
    lines.push(`${r.start}  ${r.status.padEnd(10)} ${r.outcome.padEnd(10)} ${dur.padStart(9)}  ${r.workflowId} (${r.type})`);
    if (r.triggers.length) lines.push(`    trigger: ${r.triggers.join('; ')}`);
    for (const c of r.changes) lines.push(`    ${c.op.padEnd(6)} ${c.db}:${c.table} ${c.row}`);
    if (r.waitingFor) lines.push(`    waiting for: ${r.waitingFor}`);
    if (r.error) lines.push(`    error: ${r.error}`);
  }
  return lines.join('\n');
}

/**
 * Re-runs a failed change: resets its latest run to the first workflow task, which starts a new run of
 * the same workflow ID from the beginning against today's state, then waits for it to finish.
 */
export async function replay(client: Client, workflowId: string, reason: string): Promise<HistoryRun> {
  const handle = client.workflow.getHandle(workflowId);
  const desc = await handle.describe();
  if (desc.status.name !== 'FAILED' && desc.status.name !== 'TERMINATED' && desc.status.name !== 'TIMED_OUT') {
    throw new Error(`${workflowId}: the latest run is ${desc.status.name}, not failed: nothing to replay`);
  }
  const events = (await handle.fetchHistory()).events ?? [];
  const firstTask = events.find((e) => e.eventType === proto.temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED);
  if (!firstTask?.eventId) throw new Error(`${workflowId}: the failed run never completed a workflow task; start it again instead`);
  const res = await client.workflowService.resetWorkflowExecution({
    namespace: client.options.namespace,
    workflowExecution: { workflowId, runId: desc.runId },
    reason,
    workflowTaskFinishEventId: firstTask.eventId,
    requestId: randomUUID(),
  });
  const runId = res.runId ?? '';
  const next = client.workflow.getHandle(workflowId, runId);
  await next.result().catch(() => undefined);
  return toRun(await next.describe());
}
