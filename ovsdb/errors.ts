// Typed OVSDB errors. Callers classify them by `name`/`code` strings, never by instanceof, because
// errors cross Temporal's activity boundary as plain objects.

/** Base of every error raised by kovn's OVSDB client. */
export class OvsdbError extends Error {
  /** Stable machine-readable code, e.g. 'constraint violation' or 'disconnected'. */
  readonly code: string;
  /** Whether retrying the same request later may succeed. */
  readonly retryable: boolean;

  constructor(message: string, code: string, retryable: boolean, options?: ErrorOptions) {
    super(message, options);
    this.name = 'OvsdbError';
    this.code = code;
    this.retryable = retryable;
  }
}

/** Where in a transaction an operation failed. */
export interface FailedOperation {
  /** Index of the operation in the transaction (or ops.length for a commit-time error). */
  readonly index: number;
  /** The op name ('insert', 'update', ... or 'commit'). */
  readonly op: string;
  /** The table the operation targets, if any. */
  readonly table: string | undefined;
}

/** An RFC 7047 operation or commit error, naming the failed operation. */
export class OvsdbOperationError extends OvsdbError {
  readonly failed: FailedOperation;
  readonly details: string | undefined;

  constructor(name: string, code: string, retryable: boolean, failed: FailedOperation, details?: string) {
    const where = failed.table ? `${failed.op} on ${failed.table}` : failed.op;
    super(`ovsdb ${code} at operation ${failed.index} (${where})${details ? `: ${details}` : ''}`, code, retryable);
    this.name = name;
    this.failed = failed;
    this.details = details;
  }
}

/** Error names by RFC 7047 error string; anything else becomes OvsdbTransactionError. */
const operationErrors: Readonly<Record<string, readonly [name: string, retryable: boolean]>> = {
  'constraint violation': ['OvsdbConstraintViolationError', false],
  'referential integrity violation': ['OvsdbReferentialIntegrityError', false],
  'resources exhausted': ['OvsdbResourcesExhaustedError', true],
  'I/O error': ['OvsdbIoError', true],
  'duplicate uuid-name': ['OvsdbDuplicateUuidNameError', false],
  'domain error': ['OvsdbDomainError', false],
  'range error': ['OvsdbRangeError', false],
  'timed out': ['OvsdbTimedOutError', true],
  'not supported': ['OvsdbNotSupportedError', false],
  aborted: ['OvsdbAbortedError', false],
  'not owner': ['OvsdbNotOwnerError', true],
  'unknown database': ['OvsdbUnknownDatabaseError', false],
  canceled: ['OvsdbCanceledError', false],
  'syntax error': ['OvsdbSyntaxError', false],
  'unknown table': ['OvsdbUnknownTableError', false],
  'unknown column': ['OvsdbUnknownColumnError', false],
};

/** Builds the typed error for an RFC 7047 error object found in a transaction result. */
export function operationError(error: string, failed: FailedOperation, details?: string): OvsdbOperationError {
  const known = operationErrors[error];
  // Cluster-level transient failures (leadership change, commit in doubt) are worth a retry.
  const transient = /leader|cluster|commit|not connected/i.test(error);
  const [name, retryable] = known ?? ['OvsdbTransactionError', transient];
  return new OvsdbOperationError(name, error, retryable, failed, details);
}

/** The connection is down (or went down with the request in flight: its outcome is unknown). */
export class OvsdbDisconnectedError extends OvsdbError {
  /** True when the request had been sent: it may or may not have been applied. */
  readonly inDoubt: boolean;

  constructor(message: string, inDoubt: boolean, options?: ErrorOptions) {
    super(message, 'disconnected', true, options);
    this.name = 'OvsdbDisconnectedError';
    this.inDoubt = inDoubt;
  }
}

/** A JSON-RPC level error reply (not an operation error), e.g. unknown method. */
export class OvsdbRpcError extends OvsdbError {
  readonly method: string;
  readonly error: unknown;

  constructor(method: string, error: unknown) {
    const code = rpcErrorCode(error);
    super(`ovsdb ${method} failed: ${JSON.stringify(error)}`, code, /leader|not connected|cluster/i.test(code));
    this.name = 'OvsdbRpcError';
    this.method = method;
    this.error = error;
  }
}

function rpcErrorCode(error: unknown): string {
  if (typeof error === 'string') return error;
  if (error && typeof error === 'object' && 'error' in error && typeof error.error === 'string') return error.error;
  return 'rpc error';
}

/** The peer broke the protocol: malformed JSON, unexpected message shape. The connection is dropped. */
export class OvsdbProtocolError extends OvsdbError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'protocol error', true, options);
    this.name = 'OvsdbProtocolError';
  }
}

/** A schema could not be parsed, or the server's schema lacks what the models expect. Not retryable. */
export class OvsdbSchemaError extends OvsdbError {
  /** Each problem found, e.g. 'table Logical_Switch: column foo is absent'. */
  readonly problems: readonly string[];

  constructor(message: string, problems: readonly string[]) {
    super(`${message}: ${problems.join('; ')}`, 'schema mismatch', false);
    this.name = 'OvsdbSchemaError';
    this.problems = problems;
  }
}

/** A typed value could not be encoded for its column (wrong type, unknown column). */
export class OvsdbEncodeError extends OvsdbError {
  constructor(message: string) {
    super(message, 'encode error', false);
    this.name = 'OvsdbEncodeError';
  }
}

/** The request timed out on the client side (no reply, or no connection within the wait bound). */
export class OvsdbTimeoutError extends OvsdbError {
  constructor(message: string) {
    super(message, 'client timeout', true);
    this.name = 'OvsdbTimeoutError';
  }
}

/** The client was closed by its owner. */
export class OvsdbClosedError extends OvsdbError {
  constructor() {
    super('ovsdb client closed', 'closed', false);
    this.name = 'OvsdbClosedError';
  }
}

/**
 * Retry hint for kovn's central error classification. Works on plain objects too (errors serialised
 * across an activity boundary keep `name`, `code` and `retryable`).
 */
export function isRetryableOvsdbError(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { name?: unknown; retryable?: unknown };
  return typeof e.name === 'string' && e.name.startsWith('Ovsdb') && e.retryable === true;
}
