/**
 * One non-VERSION plugin call: find the agent's socket in the config, forward the call, print the
 * answer. While the agent restarts, wait for it; when it cannot be reached, say so in CNI's terms.
 */
import { AgentCallError, callAgent } from './agent-client.ts';
import { cniVars, configVersion, decodeConfig } from './call.ts';
import type { PluginAnswer } from './call.ts';
import {
  CNI_ERR_INVALID_NETCONF, CNI_ERR_IO, CNI_ERR_PLUGIN_NOT_AVAILABLE, CNI_ERR_TRY_AGAIN_LATER, CniError, errorOutput, isCniError,
} from './errors.ts';
import { LATEST_VERSION } from './versions.ts';

/** What one call prints and how it exits. */
export interface PluginOutcome extends PluginAnswer {
  /** The log file named in the config, where `logLine` is appended. */
  logFile?: string | undefined;
}

/** How long each command may wait for the agent (kubelet gives a whole sandbox start 4 min). */
const TIMEOUT_MS: Record<string, number> = { ADD: 120_000, DEL: 60_000, CHECK: 60_000, STATUS: 10_000, GC: 120_000 };

/** How long ADD/DEL/CHECK/GC wait for an unreachable agent to come back. */
const AGENT_WAIT_MS = 20_000;

/** The few config fields the plugin itself needs; the agent validates the whole config. */
interface Peeked { cniVersion: string; agentSocket: string; logFile?: string }

/**
 * Runs one call. `env.KOVN_CNI_TIMEOUT_MS` overrides the per-command timeout and
 * `env.KOVN_CNI_AGENT_WAIT_MS` the wait for an unreachable agent (for tests and debugging).
 */
export async function runCommand(env: Record<string, string | undefined>, stdin: string): Promise<PluginOutcome> {
  let cniVersion = LATEST_VERSION;
  let logFile: string | undefined;
  const command = env.CNI_COMMAND ?? '';
  try {
    const conf = peek(stdin);
    ({ cniVersion, logFile } = conf);
    const timeoutMs = Number(env.KOVN_CNI_TIMEOUT_MS) || (TIMEOUT_MS[command] ?? 60_000);
    // While the agent restarts (an upgrade, a crash), wait for it rather than fail into kubelet's backoff.
    const waitMs = command === 'STATUS' ? 0 : Math.min(timeoutMs, Number(env.KOVN_CNI_AGENT_WAIT_MS ?? AGENT_WAIT_MS));
    return { ...(await ask(command, { env: cniVars(env), stdin }, conf.agentSocket, timeoutMs, waitMs)), logFile };
  } catch (err) {
    const body = isCniError(err) ? err.toBody() : { code: CNI_ERR_IO, msg: 'kovn plugin failed', details: String(err) };
    return {
      stdout: errorOutput(cniVersion, body), exitCode: 1, logFile,
      logLine: `${command} error ${body.code}: ${body.msg}${body.details ? ` (${body.details})` : ''}`,
    };
  }
}

/** Reads the agent's socket (and the version and log file) from the config without validating the rest. */
function peek(stdin: string): Peeked {
  const json = decodeConfig(stdin);
  const c = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>;
  const cniVersion = configVersion(stdin);
  if (typeof c.agentSocket !== 'string' || !c.agentSocket.startsWith('/')) {
    throw new CniError(CNI_ERR_INVALID_NETCONF, 'invalid network config', 'agentSocket: an absolute path is required');
  }
  const logFile = typeof c.logFile === 'string' && c.logFile.startsWith('/') ? c.logFile : undefined;
  return { cniVersion, agentSocket: c.agentSocket, ...(logFile ? { logFile } : {}) };
}

async function ask(command: string, call: Parameters<typeof callAgent>[1], socketPath: string, timeoutMs: number, waitMs: number): Promise<PluginAnswer> {
  const deadline = Date.now() + waitMs;
  try {
    for (;;) {
      try {
        return await callAgent(socketPath, call, timeoutMs);
      } catch (err) {
        // Only "nobody listens" is retried: the call never reached an agent, so it cannot run twice.
        if (!(err instanceof AgentCallError) || err.kind !== 'unreachable' || Date.now() + 250 > deadline) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  } catch (err) {
    if (!(err instanceof AgentCallError)) throw err;
    if (err.kind === 'protocol') throw new CniError(CNI_ERR_IO, 'bad answer from kovn agent', err.message);
    // STATUS reports the plugin unusable; the others ask the runtime to retry (kubelet retries ADD and DEL).
    if (command === 'STATUS') throw new CniError(CNI_ERR_PLUGIN_NOT_AVAILABLE, `kovn agent not available at ${socketPath}`, err.message);
    throw new CniError(CNI_ERR_TRY_AGAIN_LATER, `kovn agent not available at ${socketPath}, try again later`, err.message);
  }
}
