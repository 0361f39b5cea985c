/**
 * Workflow IDs, task queues and search attributes: how every change is found again. Pure and free of
 * Node built-ins, so workflows import it too.
 */
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import type { Kind } from './kinds.ts';

export const CONTROLLER_QUEUE = 'kovn';
export const nodeQueue = (node: string): string => `kovn-node-${node}`;

export type { Kind } from './kinds.ts';

/** `<Kind>/<namespace>/<name>`, e.g. `Pod/default/web`, `Node//node-1`. */
export const workflowId = (kind: Kind, namespace: string, name: string): string => `${kind}/${namespace}/${name}`;

/** The node-side run of a CNI command for one pod sandbox. */
export const cniWorkflowId = (command: string, namespace: string, name: string, containerId: string): string =>
  `CNI/${namespace}/${name}/${command}-${containerId.slice(0, 12)}`;

/** A node agent's sweep of orphans, one run per sweep that found any. */
export const sweepWorkflowId = (node: string, at: Date): string => `Sweep//${node}/${at.toISOString()}`;

/** A node agent's rebuild of its lost allocation store. */
export const restoreWorkflowId = (node: string, at: Date): string => `Restore//${node}/${at.toISOString()}`;

export const SA = {
  kind: defineSearchAttributeKey('KovnKind', SearchAttributeType.KEYWORD),
  namespace: defineSearchAttributeKey('KovnNamespace', SearchAttributeType.KEYWORD),
  name: defineSearchAttributeKey('KovnName', SearchAttributeType.KEYWORD),
  node: defineSearchAttributeKey('KovnNode', SearchAttributeType.KEYWORD),
  outcome: defineSearchAttributeKey('KovnOutcome', SearchAttributeType.KEYWORD),
};

/**
 * Where a run stands (KovnOutcome): running a pass; converged, deleted (the object is gone and so is its
 * network) or skipped (nothing of kovn's to do); waiting for something else (its node, say) and looking
 * again; retrying after a retryable failure (the last error is in the memo); failed for good (an Event
 * says why; `kovn replay` re-runs it).
 */
export type Outcome = 'running' | 'converged' | 'deleted' | 'skipped' | 'waiting' | 'retrying' | 'failed';
