/** Counters read around a benchmark window: apiserver requests, NB transactions, Temporal steps. */
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { dirs } from '../../deploy/local/config.ts';
import { kubectl } from '../../deploy/local/kubectl.ts';
import { run } from '../../lib/exec.ts';

/** Requests the apiserver has served, from every client (`apiserver_request_total`). */
export async function apiRequests(): Promise<number> {
  const text = await kubectl(['get', '--raw', '/metrics'], { timeoutMs: 30_000 });
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith('apiserver_request_total{')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

/** Transactions the Northbound DB has committed, from every writer (its raft log entries). */
export async function nbTransactions(): Promise<number> {
  const out = await run('ovs-appctl', ['-t', join(dirs.ovn, 'nb.ctl'), 'coverage/show']);
  return Number(/raft_entry_serialize\s.*total:\s*(\d+)/.exec(out)?.[1] ?? NaN);
}

export interface TemporalSteps {
  runs: number;
  events: number;
  workflow_tasks: number;
  activity_tasks: number;
  local_activities: number;
  signals: number;
  /** Calls that cross the server: each workflow task, activity task, start and signal. */
  server_round_trips: number;
}

const zero = (): TemporalSteps => ({ runs: 0, events: 0, workflow_tasks: 0, activity_tasks: 0, local_activities: 0, signals: 0, server_round_trips: 0 });

/** Every run started since `since`, counted from its history, split by the task queue its steps ran on. */
export async function temporalSteps(client: Client, since: Date): Promise<{ controller: TemporalSteps; node: TemporalSteps }> {
  const out = { controller: zero(), node: zero() };
  const side = (q: string | null | undefined): TemporalSteps => (q === 'kovn' ? out.controller : out.node);
  for await (const w of client.workflow.list({ query: `StartTime > '${since.toISOString()}'` })) {
    const wf = side(w.taskQueue);
    wf.runs++;
    wf.server_round_trips++; // its start (or signal-with-start)
    const h = await client.workflow.getHandle(w.workflowId, w.runId).fetchHistory();
    for (const e of h.events ?? []) {
      wf.events++;
      if (e.workflowTaskCompletedEventAttributes) { wf.workflow_tasks++; wf.server_round_trips++; }
      if (e.markerRecordedEventAttributes) wf.local_activities++;
      if (e.workflowExecutionSignaledEventAttributes) { wf.signals++; wf.server_round_trips++; }
      const a = e.activityTaskScheduledEventAttributes;
      if (a) { const s = side(a.taskQueue?.name); s.activity_tasks++; s.server_round_trips++; }
    }
  }
  return out;
}

export const perPod = (s: TemporalSteps, n: number): Record<string, number> =>
  Object.fromEntries(Object.entries(s).map(([k, v]) => [k, Math.round((v / n) * 10) / 10]));
