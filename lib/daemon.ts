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
 * What fails a workflow run instead of its workflow task: any error that escapes workflow code,
 * non-determinism included. A bug shows as a failed run (found, read, replayed) within a bound, never
 * as a task retried forever behind KovnOutcome=running.
 */
export const WORKER_FAILURE_TYPES = { '*': ['Error'] };
