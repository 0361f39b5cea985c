// Every workflow type kovn's workers run (the bundle entry point).
export { reconcileNode, reconcilePod, changed } from './reconcile.ts';
export { cniAdd, cniDel } from './cni.ts';
export { sweepNode } from './node-sweep.ts';
