import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { NET, SEARCH_ATTRIBUTES, TEMPORAL_NAMESPACE, dirs } from '../config.ts';
import { inNsOk } from '../net.ts';
import { bin } from '../tools.ts';
import type { Component } from './types.ts';

/** Dev-server settings measured to make it fast on these machines (ENVIRONMENT.md). */
const DYNAMIC_CONFIG = [
  'system.enableActivityEagerExecution=true',
  'system.enableEagerWorkflowStart=true',
  'matching.numTaskqueueReadPartitions=1',
  'matching.numTaskqueueWritePartitions=1',
  'frontend.enableUpdateWorkflowExecution=true',
  'frontend.enableUpdateWorkflowExecutionAsyncAccepted=true',
];

/** The Temporal dev server with file-backed persistence and its Web UI, in the control-plane namespace. */
export function temporal(): Component {
  const ns = NET.cpNs;
  return {
    name: 'temporal',
    netns: ns,
    prepare: () => void mkdirSync(dirs.temporal, { recursive: true }),
    daemon: {
      name: 'temporal', netns: ns, cmd: bin('temporal'),
      args: ['server', 'start-dev', '--db-filename', join(dirs.temporal, 'temporal.db'),
        '--ip', '0.0.0.0', '--port', '7233', '--ui-port', '8233', '--http-port', '7243', '--metrics-port', '7244',
        '--namespace', TEMPORAL_NAMESPACE,
        ...SEARCH_ATTRIBUTES.flatMap((a) => ['--search-attribute', `${a}=Keyword`]),
        '--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=normal',
        ...DYNAMIC_CONFIG.flatMap((v) => ['--dynamic-config-value', v]),
        '--log-level', 'warn'],
      // Alive while it serves the namespace: under a long overload the dev server can lose its one
      // shard for good (SQLite "interrupted", "shard status unknown") and answer nothing until restarted.
      env: {
        SUPERVISE_LIVENESS: [`nsenter --net=/run/netns/${ns} --`, bin('temporal'), 'operator namespace describe --namespace', TEMPORAL_NAMESPACE,
          '--address 127.0.0.1:7233 --command-timeout 5s'].join(' '),
        SUPERVISE_LIVENESS_EVERY: '15',
        SUPERVISE_LIVENESS_FAILURES: '3',
      },
    },
    health: async () =>
      (await inNsOk(ns, bin('temporal'), ['operator', 'namespace', 'describe', '--namespace', TEMPORAL_NAMESPACE, '--address', '127.0.0.1:7233'])) &&
      (await inNsOk(ns, 'curl', ['-sf', '-o', '/dev/null', '--max-time', '2', 'http://127.0.0.1:8233/'])),
    startTimeoutMs: 60_000,
  };
}
