/**
 * Turns zod issues into the short, path-first text kovn puts in CNI error details.
 */
import type { z } from 'zod';

/** "a.b[0].c: message" for each issue, joined with "; ". */
export function describeIssues(error: z.ZodError, prefix = ''): string {
  return error.issues.map((i) => `${issuePath(i.path, prefix) || '(root)'}: ${i.message}`).join('; ');
}

/** The paths of the bad fields, e.g. ["CNI_NETNS"]. */
export function issuePaths(error: z.ZodError, prefix = ''): string[] {
  return [...new Set(error.issues.map((i) => issuePath(i.path, prefix) || '(root)'))];
}

function issuePath(path: readonly PropertyKey[], prefix: string): string {
  let out = prefix;
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}
