/**
 * The agent's answer to one plugin call: validate the environment and the network config, hand the
 * request to kovn's handler, render its result in the CNI version the runtime asked for. Everything the
 * plugin prints is decided here, so the plugin itself stays a thin client.
 */
import { parseCniEnv } from './env.ts';
import type { CniCommand, CniEnv } from './env.ts';
import { CNI_ERR_INCOMPATIBLE_VERSION, CNI_ERR_INVALID_NETCONF, CNI_ERR_IO, CNI_ERR_TRY_AGAIN_LATER, errorOutput, isCniError } from './errors.ts';
import type { CniErrorBody } from './errors.ts';
import { CniError } from './errors.ts';
import { configVersion, decodeConfig } from './call.ts';
import type { PluginAnswer, PluginCall } from './call.ts';
import { NetConf, VALID_ATTACHMENTS } from './protocol.ts';
import type { AgentRequest } from './protocol.ts';
import { CniResult, resultForVersion } from './result.ts';
import type { CniResultInput } from './result.ts';
import type { CniHandler } from './server.ts';
import { SUPPORTED_VERSIONS, compareVersions, isSupportedVersion, versionOutput } from './versions.ts';
import { describeIssues } from './zod-issues.ts';

/** The oldest config version that has each command. */
const MIN_VERSION: Partial<Record<CniCommand, string>> = { CHECK: '0.4.0', STATUS: '1.1.0', GC: '1.1.0' };

/** Answers one call; never throws. `log` gets a line per call with its outcome and duration. */
export async function answer(call: PluginCall, handler: CniHandler, log?: (line: string) => void): Promise<PluginAnswer> {
  const t0 = performance.now();
  let cniVersion = configVersion(call.stdin);
  let cniEnv: CniEnv | undefined;
  let what = `CNI ${call.env.CNI_COMMAND ?? '?'}`;
  const took = (): string => `${Math.round(performance.now() - t0)} ms`;
  try {
    cniEnv = parseCniEnv(call.env);
    if (cniEnv.command === 'VERSION') return { stdout: versionOutput(call.stdin), exitCode: 0 };
    const conf = parseNetConf(call.stdin);
    cniVersion = conf.cniVersion;
    checkVersion(cniEnv.command, cniVersion);
    const req = toRequest(cniEnv, conf);
    what = [`CNI ${req.command}`, req.podNamespace && `${req.podNamespace}/${req.podName ?? ''}`, req.containerId?.slice(0, 12)].filter(Boolean).join(' ');
    const result = await dispatch(req, handler);
    log?.(`${what} ok in ${took()}`);
    return { stdout: result ? JSON.stringify(resultForVersion(result, cniVersion)) : '', exitCode: 0, logLine: `${describe(cniEnv)} ok` };
  } catch (err) {
    const body = toErrorBody(err);
    log?.(`${what} failed in ${took()}: ${body.code} ${body.msg}${body.details ? ` (${body.details})` : ''}`);
    return {
      stdout: errorOutput(cniVersion, body), exitCode: 1,
      logLine: `${cniEnv ? describe(cniEnv) : String(call.env.CNI_COMMAND)} error ${body.code}: ${body.msg}${body.details ? ` (${body.details})` : ''}`,
    };
  }
}

async function dispatch(req: AgentRequest, handler: CniHandler): Promise<CniResult | undefined> {
  switch (req.command) {
    case 'ADD': {
      const r = CniResult.safeParse(await handler.add(req) satisfies CniResultInput);
      if (!r.success) throw new Error(`handler returned an invalid ADD result: ${describeIssues(r.error)}`);
      return r.data;
    }
    case 'DEL': await handler.del(req); return undefined;
    case 'CHECK': await handler.check(req); return undefined;
    case 'STATUS': await handler.status(req); return undefined;
    case 'GC': await handler.gc(req); return undefined;
  }
}

function parseNetConf(stdin: string): NetConf {
  const r = NetConf.safeParse(decodeConfig(stdin));
  if (!r.success) throw new CniError(CNI_ERR_INVALID_NETCONF, 'invalid network config', describeIssues(r.error));
  return r.data;
}

function checkVersion(command: CniCommand, cniVersion: string): void {
  if (!isSupportedVersion(cniVersion)) {
    throw new CniError(CNI_ERR_INCOMPATIBLE_VERSION, 'incompatible CNI version',
      `config version ${cniVersion}, plugin supports ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  const min = MIN_VERSION[command];
  if (min && compareVersions(cniVersion, min) < 0) {
    throw new CniError(CNI_ERR_INCOMPATIBLE_VERSION, `config version does not allow ${command}`, `${command} needs ${min}, config is ${cniVersion}`);
  }
}

function toRequest(e: CniEnv, config: NetConf): AgentRequest {
  if (e.command === 'GC' && config[VALID_ATTACHMENTS] === undefined) {
    // Without the list a GC would mean "nothing is valid": refuse rather than tear down every pod.
    throw new CniError(CNI_ERR_INVALID_NETCONF, `GC needs ${VALID_ATTACHMENTS}`, `${VALID_ATTACHMENTS}: required for GC`);
  }
  const pod = { podNamespace: e.args.K8S_POD_NAMESPACE ?? null, podName: e.args.K8S_POD_NAME ?? null, podUid: e.args.K8S_POD_UID ?? null, config };
  // parseCniEnv guarantees the parameters each command requires.
  const id = { containerId: e.containerId ?? '', ifname: e.ifname ?? '' };
  switch (e.command) {
    case 'ADD': return { command: 'ADD', ...id, netns: e.netns ?? '', ...pod };
    case 'CHECK': return { command: 'CHECK', ...id, netns: e.netns ?? '', ...pod };
    case 'DEL': return { command: 'DEL', ...id, netns: e.netns, ...pod };
    case 'STATUS': return { command: 'STATUS', containerId: null, netns: null, ifname: null, ...pod };
    case 'GC': return { command: 'GC', containerId: null, netns: null, ifname: null, ...pod };
    case 'VERSION': throw new Error('VERSION is answered without a request');
  }
}

function describe(e: CniEnv): string {
  return [e.command, e.containerId, e.ifname, e.args.K8S_POD_NAMESPACE && `${e.args.K8S_POD_NAMESPACE}/${e.args.K8S_POD_NAME ?? ''}`]
    .filter(Boolean).join(' ');
}

/** A CniError keeps its code; anything else is an I/O failure, or "try again later" when retryable. */
export function toErrorBody(err: unknown): CniErrorBody {
  if (isCniError(err)) return err.toBody();
  const e = (typeof err === 'object' && err !== null ? err : {}) as { name?: unknown; message?: unknown; retryable?: unknown };
  const message = typeof e.message === 'string' ? e.message : String(err);
  const name = typeof e.name === 'string' ? e.name : 'Error';
  return { code: e.retryable === true ? CNI_ERR_TRY_AGAIN_LATER : CNI_ERR_IO, msg: message, details: name };
}
