/**
 * The plugin's side of the wire, free of schemas: the plugin runs once per pod and command, so it only
 * forwards its call and prints the agent's answer. The agent validates the call (protocol.ts).
 */
import { CNI_ERR_DECODE, CniError } from './errors.ts';
import { LATEST_VERSION } from './versions.ts';

/** The CNI_* variables of the plugin's environment and its stdin, untouched. */
export interface PluginCall {
  env: Record<string, string>;
  stdin: string;
}

/** What the plugin prints on stdout, its exit code, and a line for the config's log file. */
export interface PluginAnswer {
  stdout: string;
  exitCode: 0 | 1;
  logLine?: string;
}

export function isPluginAnswer(x: unknown): x is PluginAnswer {
  const a = x as Partial<PluginAnswer> | null;
  return typeof a === 'object' && a !== null && typeof a.stdout === 'string' && (a.exitCode === 0 || a.exitCode === 1)
    && (a.logLine === undefined || typeof a.logLine === 'string');
}

/** The variables the spec defines; nothing else of the runtime's environment leaves the plugin. */
export function cniVars(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH']) {
    const v = env[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** The network config on stdin as JSON; a CNI decode error (code 6) when it is not JSON. */
export function decodeConfig(stdin: string): unknown {
  try {
    return JSON.parse(stdin);
  } catch (err) {
    throw new CniError(CNI_ERR_DECODE, 'failed to decode the network config on stdin', err instanceof Error ? err.message : String(err));
  }
}

/** The config's cniVersion when it reads as one, else the newest: errors are printed in it even when the rest is invalid. */
export function configVersion(stdin: string): string {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown } | null)?.cniVersion;
    if (typeof v === 'string' && /^\d+\.\d+\.\d+$/.test(v)) return v;
  } catch { /* reported as a decode error where the config is read */ }
  return LATEST_VERSION;
}
