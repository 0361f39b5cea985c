import { spawn } from 'node:child_process';

/** A command that exited non-zero (or could not start); carries the tail of what it printed. */
export class CommandError extends Error {
  override readonly name = 'CommandError';
  readonly command: string;
  readonly code: number | null;
  readonly output: string;
  constructor(command: string, code: number | null, output: string) {
    super(`${command} failed (exit ${code ?? 'signal'})${output ? `: ${tail(output, 12)}` : ''}`);
    this.command = command;
    this.code = code;
    this.output = output;
  }
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  input?: string;
  /** Kill the command after this long (it then fails). */
  timeoutMs?: number;
  /** Print the command's output as it runs (for long installs). */
  inherit?: boolean;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number | null;
}

/** Runs a command and resolves with its output whatever the exit code. */
export function runRaw(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ? { ...process.env, ...opts.env } : process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', opts.inherit ? 'inherit' : 'pipe', opts.inherit ? 'inherit' : 'pipe'],
      timeout: opts.timeoutMs,
      killSignal: 'SIGKILL',
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    child.on('error', (err) => resolve({ stdout, stderr: stderr + String(err.message), code: 127 }));
    child.on('close', (code) => resolve({ stdout, stderr, code }));
  });
}

/** Runs a command and returns its stdout; throws CommandError on a non-zero exit. */
export async function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await runRaw(cmd, args, opts);
  if (r.code !== 0) throw new CommandError([cmd, ...args].join(' '), r.code, (r.stderr + r.stdout).trim());
  return r.stdout;
}

/** True when the command exits 0. */
export async function succeeds(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<boolean> {
  return (await runRaw(cmd, args, opts)).code === 0;
}

/** The last `n` non-empty lines of a text. */
export function tail(text: string, n: number): string {
  return text.split('\n').filter((l) => l.trim() !== '').slice(-n).join('\n');
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
