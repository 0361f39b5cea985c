/**
 * What kovn's daemons (the controller, the node agents) share at start: the config file named on the
 * command line, validated; Temporal's runtime logger; a timestamped log; where the workflow code comes
 * from. Apart from lib/daemon-config.ts so that `kovn up` can write configs without loading Temporal.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { z } from 'zod';
import { loadConfig } from './daemon-config.ts';

export function startDaemon<T>(script: string, schema: z.ZodType<T>): { cfg: T; log: (msg: string) => void } {
  const cfgFile = process.argv[2];
  if (!cfgFile) {
    console.error(`usage: ${script} CONFIG.json`);
    process.exit(2);
  }
  const cfg = loadConfig(cfgFile, schema);
  Runtime.install({ logger: new DefaultLogger('WARN') });
  return { cfg, log: (msg) => console.log(`${new Date().toISOString()} ${msg}`) };
}

/** The prebuilt bundle `kovn up` made (one per up, shared by every daemon), else the sources. */
export function workflowSource(bundle: string | undefined): { workflowBundle: { codePath: string } } | { workflowsPath: string } {
  return bundle ? { workflowBundle: { codePath: bundle } } : { workflowsPath: new URL('../workflows/index.ts', import.meta.url).pathname };
}

/**
 * How a worker polls for workflow tasks. The SDK's default (10 pollers, one in five on the shared
 * queue, the rest on the worker's sticky queue) starves the shared queue, where every new run's first
 * task waits: in a burst of 1,000 Services those waited 9 s on average before a worker took them,
 * while sticky tasks waited 0.2 s. Half of them on each (the ratio is the shared queue's share).
 */
export const WORKFLOW_POLLING = {
  workflowTaskPollerBehavior: { type: 'simple-maximum', maximum: 16 },
  nonStickyToStickyPollRatio: 0.5,
} as const;

/**
 * What fails a workflow run instead of its workflow task: any error that escapes workflow code,
 * non-determinism included. A bug shows as a failed run (found, read, replayed) within a bound, never
 * as a task retried forever behind KovnOutcome=running.
 */
export const WORKER_FAILURE_TYPES = { '*': ['Error'] };
