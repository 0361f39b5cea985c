import type { DaemonSpec } from '../proc.ts';

/** One daemon of the box: how to start it and how to tell it is healthy. Used by up, down and status. */
export interface Component {
  name: string;
  netns?: string;
  /** Absent for components that are not a process of their own (none yet). */
  daemon: DaemonSpec;
  /** Prepares files the daemon needs (configs, databases); idempotent. */
  prepare?: () => void | Promise<void>;
  health: () => Promise<boolean>;
  /** Runs once after the daemon first turns healthy (e.g. initialising its database). */
  after?: () => Promise<void>;
  startTimeoutMs?: number;
}
