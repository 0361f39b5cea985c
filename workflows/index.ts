// Every workflow type kovn's workers run (the bundle entry point): one line per kind of the registry
// (lib/kinds.ts), plus the node agents' own runs.
export { changed } from './reconcile.ts';
export { reconcileNode } from './node.ts';
export { reconcilePod } from './pod.ts';
export { reconcileService } from './service.ts';
export { reconcileNetworkPolicy } from './network-policy.ts';
export { reconcileNamespace } from './namespace.ts';
export { cniAdd, cniDel, restoreAllocations } from './cni.ts';
export { sweepNode } from './node-sweep.ts';
