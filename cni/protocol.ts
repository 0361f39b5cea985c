/**
 * What kovn's CNI plugin reads (network config on stdin, environment) and what it says to the node
 * agent over its unix socket: one newline-terminated JSON request per connection, one JSON response.
 *
 *   request:  {"command":"ADD","containerId":"…","netns":"/var/run/netns/…","ifname":"eth0",
 *              "podNamespace":"default","podName":"web-0","podUid":"…","config":{…netconf…}}
 *   response: {"ok":true,"result":{…CNI result…}} | {"ok":false,"error":{"code":7,"msg":"…","details":"…"}}
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

const podFields = {
  podNamespace: z.string().nullable(),
  podName: z.string().nullable(),
  podUid: z.string().nullable(),
  config: NetConf,
};
const attached = { containerId: z.string().min(1), ifname: z.string().min(1) };
const detached = { containerId: z.null(), netns: z.null(), ifname: z.null() };

export const AddRequest = z.object({ command: z.literal('ADD'), ...attached, netns: z.string().min(1), ...podFields });
export const CheckRequest = z.object({ command: z.literal('CHECK'), ...attached, netns: z.string().min(1), ...podFields });
/** DEL may arrive after the namespace is gone: netns null. */
export const DelRequest = z.object({ command: z.literal('DEL'), ...attached, netns: z.string().min(1).nullable(), ...podFields });
export const StatusRequest = z.object({ command: z.literal('STATUS'), ...detached, ...podFields });
/**
 * The still-valid attachments are in `config["cni.dev/valid-attachments"]`, required: without it a GC
 * would read as "nothing is valid" and tear down every pod.
 */
export const GcRequest = z.object({
  command: z.literal('GC'), ...detached, ...podFields,
  config: NetConf.refine((c) => c[VALID_ATTACHMENTS] !== undefined, { path: [VALID_ATTACHMENTS], message: 'required for GC' }),
});

/** A request from the plugin to the agent; VERSION never leaves the plugin. */
export const AgentRequest = z.discriminatedUnion('command', [AddRequest, DelRequest, CheckRequest, StatusRequest, GcRequest]);
export type AddRequest = z.infer<typeof AddRequest>;
export type DelRequest = z.infer<typeof DelRequest>;
export type CheckRequest = z.infer<typeof CheckRequest>;
export type StatusRequest = z.infer<typeof StatusRequest>;
export type GcRequest = z.infer<typeof GcRequest>;
export type AgentRequest = z.infer<typeof AgentRequest>;

export const AgentError = z.object({ code: z.number().int().nonnegative(), msg: z.string(), details: z.string().optional() });

/** The agent's answer: a result for ADD, nothing for the other commands, or a CNI error. */
export const AgentResponse = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), result: CniResult.optional() }),
  z.object({ ok: z.literal(false), error: AgentError }),
]);
export type AgentResponse = z.infer<typeof AgentResponse>;
