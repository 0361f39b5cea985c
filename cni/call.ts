/**
 * The wire between the plugin (cni/shim) and the agent: the plugin forwards its CNI_* variables and
 * stdin untouched and prints the answer; the agent validates the call (protocol.ts).
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
