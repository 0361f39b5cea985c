/**
 * One non-VERSION plugin call: validate environment and config, ask the agent, render its answer in
 * the CNI version the runtime asked for.
 */
import { AgentCallError, callAgent } from './agent-client.ts';
import {
  CNI_ERR_DECODE, CNI_ERR_INCOMPATIBLE_VERSION, CNI_ERR_INVALID_NETCONF, CNI_ERR_IO, CNI_ERR_PLUGIN_NOT_AVAILABLE,
  CNI_ERR_TRY_AGAIN_LATER, CniError, errorOutput, isCniError,
} from './errors.ts';
import { parseCniEnv } from './env.ts';
import type { CniCommand, CniEnv } from './env.ts';
import { NetConf, VALID_ATTACHMENTS } from './protocol.ts';
import type { AgentRequest, AgentResponse } from './protocol.ts';
import { resultForVersion } from './result.ts';
import { LATEST_VERSION, SUPPORTED_VERSIONS, compareVersions, isSupportedVersion } from './versions.ts';
import { describeIssues } from './zod-issues.ts';

/** What one call prints and how it exits. */
export interface PluginOutcome {
  /** JSON printed on stdout ("" for commands with no output). */
  stdout: string;
  exitCode: 0 | 1;
  /** One line for the log file named in the config. */
  logLine?: string;
  logFile?: string | undefined;
}

/** How long each command may wait for the agent (kubelet gives a whole sandbox start 4 min). */
const TIMEOUT_MS: Record<Exclude<CniCommand, 'VERSION'>, number> = {
  ADD: 120_000, DEL: 60_000, CHECK: 60_000, STATUS: 10_000, GC: 120_000,
};

/** The oldest config version that has each command. */
const MIN_VERSION: Partial<Record<CniCommand, string>> = { CHECK: '0.4.0', STATUS: '1.1.0', GC: '1.1.0' };

/**
 * Runs one call. `env.KOVN_CNI_TIMEOUT_MS` overrides the per-command timeout (for tests and debugging).
 */
export async function runCommand(env: Record<string, string | undefined>, stdin: string): Promise<PluginOutcome> {
  let cniVersion = peekVersion(stdin);
  let conf: NetConf | undefined;
  let cniEnv: CniEnv | undefined;
  try {
    cniEnv = parseCniEnv(env);
    conf = parseNetConf(stdin);
    cniVersion = conf.cniVersion;
    checkVersion(cniEnv.command, cniVersion);
    const request = toRequest(cniEnv, conf);
    const timeoutMs = Number(env.KOVN_CNI_TIMEOUT_MS) || TIMEOUT_MS[request.command];
    // While the agent restarts (an upgrade, a crash), wait for it rather than fail into kubelet's backoff.
    const waitMs = request.command === 'STATUS' ? 0 : Math.min(timeoutMs, Number(env.KOVN_CNI_AGENT_WAIT_MS ?? AGENT_WAIT_MS));
    const response = await ask(request, conf.agentSocket, timeoutMs, waitMs);
    if (!response.ok) throw new CniError(response.error.code, response.error.msg, response.error.details);
    let stdout = '';
    if (request.command === 'ADD') {
      if (!response.result) throw new CniError(CNI_ERR_IO, 'kovn agent returned no result for ADD');
      stdout = JSON.stringify(resultForVersion(response.result, cniVersion));
    }
    return { stdout, exitCode: 0, logFile: conf.logFile, logLine: `${describe(cniEnv)} ok` };
  } catch (err) {
    const body = isCniError(err) ? err.toBody() : { code: CNI_ERR_IO, msg: 'kovn plugin failed', details: String(err) };
    return {
      stdout: errorOutput(cniVersion, body),
      exitCode: 1,
      logFile: conf?.logFile,
      logLine: `${cniEnv ? describe(cniEnv) : String(env.CNI_COMMAND)} error ${body.code}: ${body.msg}${body.details ? ` (${body.details})` : ''}`,
    };
  }
}

/** The config's version for error output, even when the rest of the call is invalid. */
function peekVersion(stdin: string): string {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown } | null)?.cniVersion;
    if (typeof v === 'string' && /^\d+\.\d+\.\d+$/.test(v)) return v;
  } catch { /* reported as a decode error later */ }
  return LATEST_VERSION;
}

function parseNetConf(stdin: string): NetConf {
  let json: unknown;
  try {
    json = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(CNI_ERR_DECODE, 'failed to decode the network config on stdin', err instanceof Error ? err.message : String(err));
  }
  const r = NetConf.safeParse(json);
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
    case 'VERSION': throw new Error('VERSION is answered by the plugin itself');
  }
}

/** How long ADD/DEL/CHECK/GC wait for an unreachable agent to come back. */
const AGENT_WAIT_MS = 20_000;

async function ask(request: AgentRequest, socketPath: string, timeoutMs: number, waitMs: number): Promise<AgentResponse> {
  const deadline = Date.now() + waitMs;
  try {
    for (;;) {
      try {
        return await callAgent(socketPath, request, timeoutMs);
      } catch (err) {
        // Only "nobody listens" is retried: the request never reached an agent, so it cannot run twice.
        if (!(err instanceof AgentCallError) || err.kind !== 'unreachable' || Date.now() + 250 > deadline) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  } catch (err) {
    if (!(err instanceof AgentCallError)) throw err;
    if (err.kind === 'protocol') throw new CniError(CNI_ERR_IO, 'bad answer from kovn agent', err.message);
    // STATUS reports the plugin unusable; the others ask the runtime to retry (kubelet retries ADD and DEL).
    if (request.command === 'STATUS') throw new CniError(CNI_ERR_PLUGIN_NOT_AVAILABLE, `kovn agent not available at ${socketPath}`, err.message);
    throw new CniError(CNI_ERR_TRY_AGAIN_LATER, `kovn agent not available at ${socketPath}, try again later`, err.message);
  }
}

function describe(e: CniEnv): string {
  return [e.command, e.containerId, e.ifname, e.args.K8S_POD_NAMESPACE && `${e.args.K8S_POD_NAMESPACE}/${e.args.K8S_POD_NAME ?? ''}`]
    .filter(Boolean).join(' ');
}
