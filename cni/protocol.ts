/**
 * What kovn's CNI plugin reads (network config on stdin, environment), as the node agent validates it.
 * Over the agent's unix socket go one newline-terminated JSON call per connection and one answer:
 *
 *   call:   {"env":{"CNI_COMMAND":"ADD","CNI_CONTAINERID":"…",…},"stdin":"{…netconf…}"}
 *   answer: {"stdout":"{…CNI result or error…}","exitCode":0,"logLine":"ADD … ok"}
 */
import { z } from 'zod';
import { CNI_NAME_RE } from './env.ts';
import { CniResult } from './result.ts';

export * from './errors.ts';
export * from './env.ts';
export * from './result.ts';
export { SUPPORTED_VERSIONS, LATEST_VERSION, compareVersions, isSupportedVersion } from './versions.ts';

const absPath = z.string().startsWith('/', 'not an absolute path');

/** One still-valid attachment passed to GC. */
export const ValidAttachment = z.object({ containerID: z.string().min(1), ifname: z.string().min(1) });
export type ValidAttachment = z.infer<typeof ValidAttachment>;

export const VALID_ATTACHMENTS = 'cni.dev/valid-attachments';

/**
 * The plugin configuration the runtime writes to the plugin's stdin. Unknown keys (runtime-added `args`,
 * well-known `dns`, ...) pass through to the agent untouched.
 */
export const NetConf = z.looseObject({
  cniVersion: z.string().regex(/^\d+\.\d+\.\d+$/, 'not a version like 1.0.0'),
  name: z.string().regex(CNI_NAME_RE, 'invalid network name'),
  type: z.literal('kovn'),
  /** The node agent's CNI socket. */
  agentSocket: absPath,
  /** Pod interface MTU; the agent's default when absent. */
  mtu: z.number().int().min(576).max(65535).optional(),
  /** Where the plugin appends one line per call (besides stderr on errors). */
  logFile: absPath.optional(),
  runtimeConfig: z.record(z.string(), z.unknown()).optional(),
  /** The previous ADD result (DEL, CHECK) or the previous plugin's (chained ADD); any spec version. */
  prevResult: CniResult.optional(),
  [VALID_ATTACHMENTS]: z.array(ValidAttachment).optional(),
});
export type NetConf = z.infer<typeof NetConf>;

/**
 * What the plugin sends: the CNI_* variables of its environment and its stdin, untouched. The agent
 * validates both (the plugin stays free of schemas: it runs once per pod, and loading them costs CPU).
 */
export const PluginCall = z.object({ env: z.record(z.string(), z.string()), stdin: z.string() });

/** A validated call, as the agent's handlers get it. */
interface PodFields {
  podNamespace: string | null;
  podName: string | null;
  podUid: string | null;
  config: NetConf;
}
interface Attached extends PodFields { containerId: string; ifname: string }
interface Detached extends PodFields { containerId: null; netns: null; ifname: null }

export interface AddRequest extends Attached { command: 'ADD'; netns: string }
export interface CheckRequest extends Attached { command: 'CHECK'; netns: string }
/** DEL may arrive after the namespace is gone: netns null. */
export interface DelRequest extends Attached { command: 'DEL'; netns: string | null }
export interface StatusRequest extends Detached { command: 'STATUS' }
/** The still-valid attachments are in `config["cni.dev/valid-attachments"]`, required for GC. */
export interface GcRequest extends Detached { command: 'GC' }
export type AgentRequest = AddRequest | DelRequest | CheckRequest | StatusRequest | GcRequest;
