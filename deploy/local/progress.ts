/** kind-style progress: each step prints a line when it starts and one that ends in ✓ or names what failed. */

export class StepError extends Error {
  override readonly name = 'StepError';
  readonly step: string;
  constructor(step: string, cause: unknown) {
    super(`${step}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.step = step;
  }
}

export function elapsed(t0: number): string {
  const s = (performance.now() - t0) / 1000;
  return s < 60 ? `${s.toFixed(1)}s` : `${Math.floor(s / 60)}m${Math.round(s % 60)}s`;
}

/** Runs one step; prints ✓ with the time taken and an optional note, or ✗ and throws a StepError naming it. */
export async function step<T>(name: string, fn: () => Promise<T>, quietStart = false): Promise<T> {
  const t0 = performance.now();
  if (!quietStart) info(`   … ${name}`);
  try {
    const out = await fn();
    const note = typeof out === 'string' && out ? ` (${out})` : '';
    info(` ✓ ${name}${note} ${elapsed(t0)}`);
    return out;
  } catch (err) {
    info(` ✗ ${name} ${elapsed(t0)}`);
    throw err instanceof StepError ? err : new StepError(name, err);
  }
}

export function info(text: string): void {
  process.stdout.write(`${text}\n`);
}
