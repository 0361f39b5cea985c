/**
 * CNI spec versions kovn speaks. No imports: the plugin answers VERSION from this alone, fast.
 */

/** Versions reported by VERSION, oldest first. 0.1/0.2 results had no interfaces: not offered. */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;

/** The newest version kovn speaks, used when the input names none. */
export const LATEST_VERSION = '1.1.0';

/** Compares two "x.y.z" versions; NaN when either is not one. */
export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  if (!pa || !pb) return NaN;
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

function parseVersion(v: string): number[] | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** Whether VERSION lists `v`. */
export function isSupportedVersion(v: string): boolean {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** The VERSION answer: the version given on input (or the newest) and every version kovn speaks. */
export function versionOutput(stdin: string): string {
  let cniVersion: string = LATEST_VERSION;
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown } | null)?.cniVersion;
    if (typeof v === 'string' && v !== '') cniVersion = v;
  } catch { /* VERSION input is optional; the newest version answers */ }
  return JSON.stringify({ cniVersion, supportedVersions: SUPPORTED_VERSIONS });
}
