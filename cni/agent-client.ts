/**
 * The plugin's side of the agent socket: one call, one answer, bounded in time.
 */
import { createConnection } from 'node:net';
import { isPluginAnswer } from './call.ts';
import type { PluginAnswer, PluginCall } from './call.ts';

/** Why the agent gave no usable answer; the plugin turns each kind into a CNI error code. */
export class AgentCallError extends Error {
  override readonly name = 'AgentCallError';
  /** unreachable: no one listens; timeout: no answer in time; closed: hung up mid-call; protocol: bad answer. */
  readonly kind: 'unreachable' | 'timeout' | 'closed' | 'protocol';
  readonly socketPath: string;
  constructor(kind: AgentCallError['kind'], socketPath: string, message: string) {
    super(message);
    this.kind = kind;
    this.socketPath = socketPath;
  }
}

/** Largest response accepted: a CNI result is a few KiB. */
const MAX_RESPONSE_BYTES = 1 << 20;

/** Sends `call` to the agent at `socketPath` and resolves with its answer. */
export function callAgent(socketPath: string, call: PluginCall, timeoutMs: number): Promise<PluginAnswer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    let connected = false;
    const sock = createConnection({ path: socketPath });
    const finish = (err: AgentCallError | undefined, res?: PluginAnswer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(res as PluginAnswer);
    };
    const timer = setTimeout(() => finish(new AgentCallError('timeout', socketPath,
      `kovn agent at ${socketPath} did not answer ${call.env.CNI_COMMAND ?? 'the call'} within ${timeoutMs / 1000} s`)), timeoutMs);
    sock.on('connect', () => {
      connected = true;
      sock.write(`${JSON.stringify(call)}\n`);
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      finish(new AgentCallError(connected ? 'closed' : 'unreachable', socketPath,
        connected ? `connection to kovn agent at ${socketPath} failed: ${err.message}`
          : `cannot reach kovn agent at ${socketPath}: ${err.code ?? err.message}`));
    });
    sock.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_RESPONSE_BYTES) return finish(new AgentCallError('protocol', socketPath, `kovn agent response over ${MAX_RESPONSE_BYTES} bytes`));
      chunks.push(chunk);
      if (chunk.includes(10)) finish(...parse(socketPath, Buffer.concat(chunks)));
    });
    sock.on('end', () => {
      if (size === 0) finish(new AgentCallError('closed', socketPath, `kovn agent at ${socketPath} closed the connection without answering`));
      else finish(...parse(socketPath, Buffer.concat(chunks)));
    });
  });
}

function parse(socketPath: string, bytes: Buffer): [AgentCallError | undefined, PluginAnswer?] {
  const line = bytes.toString('utf8').split('\n', 1)[0] ?? '';
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return [new AgentCallError('protocol', socketPath, `kovn agent sent non-JSON: ${line.slice(0, 120)}`)];
  }
  if (!isPluginAnswer(json)) return [new AgentCallError('protocol', socketPath, `kovn agent sent an invalid answer: ${line.slice(0, 120)}`)];
  return [undefined, json];
}
