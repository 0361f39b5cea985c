/** One thing a run changed, as its history records it. */
export interface Change {
  /** nb/sb: OVN databases; ovs: the node's Open_vSwitch DB; k8s: the API; node: the node's kernel/IPAM. */
  db: 'nb' | 'sb' | 'ovs' | 'k8s' | 'node';
  table: string;
  row: string;
  op: 'insert' | 'update' | 'delete';
}

/** The summary a run leaves in its memo and returns. */
export interface RunSummary {
  triggers: string[];
  outcome: string;
  changes: Change[];
  /** The last failure of a run that is retrying or failed. */
  error?: string;
  /** What a waiting run waits for ("node node-3 has no subnet yet"). */
  waitingFor?: string;
}
