// A minimal workflow for the box's round-trip test: one activity through a real worker.
import { proxyActivities } from '@temporalio/workflow';

const { greet } = proxyActivities<{ greet(name: string): Promise<string> }>({ startToCloseTimeout: '10s' });

export async function echo(name: string): Promise<string> {
  return `workflow saw: ${await greet(name)}`;
}
