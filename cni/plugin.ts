/**
 * kovn's CNI plugin, the executable containerd runs once per pod and command. A thin client: VERSION is
 * answered here; every other call (environment and stdin, untouched) goes to the node agent's unix
 * socket named in the config, which validates it and decides what is printed. No schemas load here:
 * the plugin's CPU is paid once per pod on a busy node.
 */
import { appendFileSync } from 'node:fs';
import { CNI_ERR_IO, CniError, errorOutput, isCniError } from './errors.ts';
import type { PluginOutcome } from './plugin-command.ts';
import { LATEST_VERSION, versionOutput } from './versions.ts';

async function readStdin(): Promise<string> {
  // A person running the binary at a terminal would otherwise wait here forever.
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function main(): Promise<PluginOutcome> {
  let stdin: string;
  try {
    stdin = await readStdin();
  } catch (err) {
    const e = new CniError(CNI_ERR_IO, 'failed to read the network config from stdin', String(err));
    return { stdout: errorOutput(LATEST_VERSION, e.toBody()), exitCode: 1 };
  }
  if (process.env.CNI_COMMAND === 'VERSION') return { stdout: versionOutput(stdin), exitCode: 0 };
  const { runCommand } = await import('./plugin-command.ts');
  return runCommand(process.env, stdin);
}

function report(out: PluginOutcome): void {
  if (out.stdout) process.stdout.write(`${out.stdout}\n`);
  if (out.exitCode !== 0) process.stderr.write(`kovn: ${out.stdout}\n`);
  if (out.logFile && out.logLine) {
    try {
      appendFileSync(out.logFile, `${new Date().toISOString()} ${out.logLine}\n`);
    } catch { /* the log is a convenience; the answer on stdout is what counts */ }
  }
  process.exitCode = out.exitCode;
}

// Run only as the executable, so tests can import the helpers above.
if (import.meta.main) {
  main().then(report, (err: unknown) => {
    const body = isCniError(err) ? err.toBody() : { code: CNI_ERR_IO, msg: 'kovn plugin failed', details: String(err) };
    report({ stdout: errorOutput(LATEST_VERSION, body), exitCode: 1 });
  });
}
