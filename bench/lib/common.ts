/** What the box's benchmarks share: the repo's path, the box's CLI, a percentile. */
import { spawnSync } from 'node:child_process';

export const REPO = new URL('../..', import.meta.url).pathname;

/** `kovn ARGS` (bin/kovn.ts), its stderr shown; throws on a non-zero exit. */
export function kovn(args: string[]): void {
  const r = spawnSync(process.execPath, [`${REPO}bin/kovn.ts`, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`kovn ${args.join(' ')} failed (${r.status})`);
}

/** The p-th percentile (nearest rank) of xs; 0 for none. */
export const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? 0) : 0;
};
