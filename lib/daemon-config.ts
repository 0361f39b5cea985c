/** Configuration files of kovn's daemons, validated at the edge with the path of any bad field. */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { ClusterConfig } from './cluster-config.ts';

const abs = z.string().startsWith('/', 'not an absolute path');
const Temporal = z.object({ address: z.string().min(1), namespace: z.string().min(1) });

export const ControllerConfig = z.object({
  kubeconfig: abs,
  temporal: Temporal,
  nb: z.array(z.string().min(1)).min(1),
  sb: z.array(z.string().min(1)).min(1),
  cluster: ClusterConfig,
  /** A prebuilt workflow bundle (kovn up builds one for every daemon); bundled at start when absent. */
  workflowBundle: abs.optional(),
  identity: z.string().min(1),
  /** Written once the daemon serves (a health check for supervisors), removed when it stops. */
  readyFile: abs.optional(),
});
export type ControllerConfig = z.infer<typeof ControllerConfig>;

export const NodeAgentConfig = z.object({
  node: z.string().min(1),
  kubeconfig: abs,
  temporal: Temporal,
  ovsSock: abs,
  /** This node's GENEVE endpoint and the Southbound DB its ovn-controller connects to. */
  encapIp: z.string().min(1),
  sbRemote: z.string().min(1),
  /** The interface the node's external bridge (`br<iface>`) is made from, with the node's address on it. */
  gatewayInterface: z.string().regex(/^[A-Za-z0-9_.-]{1,13}$/, 'not an interface name').default('eth0'),
  ipamFile: abs,
  cniSocket: abs,
  cniBinDir: abs,
  cniConfDir: abs,
  /** The CNI plugin binary the agent installs into cniBinDir (cni/shim, built by deploy/local/tools.ts). */
  cniPlugin: abs,
  cluster: ClusterConfig,
  /** How often the agent sweeps what missed DELs left; an address is an orphan only once older than this. */
  sweepSeconds: z.number().int().min(1).max(86_400).default(300),
  workflowBundle: abs.optional(),
  readyFile: abs.optional(),
});
export type NodeAgentConfig = z.infer<typeof NodeAgentConfig>;

export function loadConfig<T>(file: string, schema: z.ZodType<T>): T {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const r = schema.safeParse(json);
  if (!r.success) throw new Error(`${file}: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** Marks a daemon ready for its supervisor, and unmarks it when the process exits. */
export function markReady(file: string | undefined): void {
  if (!file) return;
  writeFileSync(file, `${process.pid}\n`);
  process.once('exit', () => rmSync(file, { force: true }));
}
