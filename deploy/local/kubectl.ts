import { files } from './config.ts';
import { bin } from './tools.ts';
import { run } from '../../lib/exec.ts';

/** kubectl as the box's admin, from the root namespace (through the loopback forwarder). */
export function kubectl(args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  return run(bin('kubectl'), ['--kubeconfig', files.adminKubeconfig, ...args], { timeoutMs: opts.timeoutMs ?? 60_000, ...(opts.input === undefined ? {} : { input: opts.input }) });
}

export async function kubectlJson<T>(args: readonly string[]): Promise<T> {
  return JSON.parse(await kubectl([...args, '-o', 'json'])) as T;
}
