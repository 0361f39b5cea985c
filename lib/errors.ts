/**
 * The one place where kovn decides whether a failure is worth retrying. Invalid input (a malformed
 * annotation, a bad CRD field, an OVSDB constraint kovn itself violated) is not: it lands on the object's
 * status or an Event. I/O, conflicts and transient server states are: they retry with backoff.
 * Errors are told apart by `name` (and fields), never by instanceof: they cross the activity boundary.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';

export interface Classified {
  retryable: boolean;
  /** A short, stable reason for conditions and Events (e.g. "InvalidAnnotation"). */
  reason: string;
  message: string;
}

/** Input that can never succeed as it is; named so users can find it. */
export class InvalidInputError extends Error {
  override readonly name = 'InvalidInputError';
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}

/**
 * A write planned from a cache that was still stale after re-planning it a few times (say, another
 * writer kept changing the same rows). Nothing was committed; retrying later will see a fresher cache.
 */
export class StalePlanError extends Error {
  override readonly name = 'StalePlanError';
  readonly attempts: number;
  constructor(message: string, attempts: number, options?: ErrorOptions) {
    super(message, options);
    this.attempts = attempts;
  }
}

interface ErrorLike {
  name?: unknown;
  message?: unknown;
  retryable?: unknown;
  code?: unknown;
  reason?: unknown;
  statusCode?: unknown;
  cause?: unknown;
}

const NON_RETRYABLE_NAMES: Record<string, string> = {
  AnnotationError: 'InvalidAnnotation',
  InvalidInputError: 'InvalidInput',
  ZodError: 'InvalidInput',
  OvsdbSchemaError: 'SchemaMismatch',
};

/** gRPC status codes (Temporal's frontend) that will not change by retrying: INVALID_ARGUMENT, PERMISSION_DENIED, UNIMPLEMENTED, UNAUTHENTICATED. */
const FINAL_GRPC = new Set([3, 7, 12, 16]);

/** Kubernetes API status codes that will not change by retrying the same request. */
const FINAL_HTTP = new Set([400, 401, 403, 405, 406, 413, 415, 422]);

export function classify(err: unknown): Classified {
  const e = (typeof err === 'object' && err !== null ? err : { message: String(err) }) as ErrorLike;
  const name = typeof e.name === 'string' ? e.name : 'Error';
  const message = typeof e.message === 'string' ? e.message : String(err);
  if (name === 'InvalidInputError' && typeof e.reason === 'string') return { retryable: false, reason: e.reason, message };
  if (name === 'StalePlanError') return { retryable: true, reason: 'StalePlan', message };
  // A CNI error is the answer the runtime gets; its code travels in the reason.
  if (name === 'CniError' && typeof e.code === 'number') return { retryable: false, reason: `CniError:${e.code}`, message };
  const fixed = NON_RETRYABLE_NAMES[name];
  if (fixed) return { retryable: false, reason: fixed, message };
  if (name.startsWith('Ovsdb') && typeof e.retryable === 'boolean') {
    return { retryable: e.retryable, reason: e.retryable ? 'OvsdbTransient' : 'OvsdbRejected', message };
  }
  // The Temporal client's errors carry the gRPC status in their cause.
  if (name === 'ServiceError') {
    const code = (e.cause as ErrorLike | undefined)?.code;
    if (typeof code === 'number') return { retryable: !FINAL_GRPC.has(code), reason: `Grpc${code}`, message };
  }
  const status = typeof e.statusCode === 'number' ? e.statusCode : typeof e.code === 'number' ? e.code : undefined;
  if (status !== undefined && FINAL_HTTP.has(status)) return { retryable: false, reason: `ApiError${status}`, message };
  return { retryable: true, reason: status !== undefined ? `ApiError${status}` : 'Transient', message };
}

/** A failure Temporal knows how to carry (already classified, or a cancellation): passed on as it is. */
const isTemporalFailure = (err: unknown): boolean => err instanceof ApplicationFailure || (err as { name?: unknown } | null)?.name === 'CancelledFailure';

/**
 * Turns what an activity threw into an ApplicationFailure whose type is the classified reason, not
 * retryable when it can never succeed as it is. Temporal then stops retrying a final failure, and the
 * workflow reads the reason from the failure's type.
 */
export function toActivityFailure(err: unknown): unknown {
  if (isTemporalFailure(err)) return err;
  const c = classify(err);
  return ApplicationFailure.create({ message: c.message, type: c.reason, nonRetryable: !c.retryable, cause: err instanceof Error ? err : undefined });
}

/**
 * The worker's one activity interceptor for error classification (`interceptors: { activity: [...] }`),
 * instead of each activity wrapping itself.
 */
export const classifyActivityErrors: ActivityInterceptorsFactory = () => ({
  inbound: {
    async execute(input, next) {
      try {
        return await next(input);
      } catch (err) {
        throw toActivityFailure(err);
      }
    },
  },
});

/** Runs a body outside a worker's activities (the CNI server), classified the same way. */
export async function classified<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toActivityFailure(err);
  }
}
