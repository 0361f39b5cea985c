/**
 * The CNI spec's error codes and the error kovn's node agent throws to report one. Kept free of zod so
 * the plugin can print an error before (or without) loading its schemas.
 */

/** Well-known CNI error codes (SPEC.md, "Error"); 100+ are plugin specific. */
export const CNI_ERR_INCOMPATIBLE_VERSION = 1;
export const CNI_ERR_UNSUPPORTED_FIELD = 2;
export const CNI_ERR_UNKNOWN_CONTAINER = 3;
export const CNI_ERR_INVALID_ENV = 4;
export const CNI_ERR_IO = 5;
export const CNI_ERR_DECODE = 6;
export const CNI_ERR_INVALID_NETCONF = 7;
export const CNI_ERR_TRY_AGAIN_LATER = 11;
/** STATUS: the plugin cannot service ADD requests. */
export const CNI_ERR_PLUGIN_NOT_AVAILABLE = 50;
/** STATUS: not available, and existing containers may have limited connectivity. */
export const CNI_ERR_PLUGIN_NOT_AVAILABLE_LIMITED = 51;

/** The body of a CNI error, as the agent sends it and the plugin prints it (plus `cniVersion`). */
export interface CniErrorBody {
  code: number;
  msg: string;
  details?: string;
}

/** A failure with a CNI error code; the agent's handlers throw it and the server forwards it as is. */
export class CniError extends Error {
  override readonly name = 'CniError';
  readonly code: number;
  readonly msg: string;
  readonly details: string;
  constructor(code: number, msg: string, details = '') {
    super(details ? `${msg}: ${details}` : msg);
    this.code = code;
    this.msg = msg;
    this.details = details;
  }

  /** The wire form, without `cniVersion` (the plugin adds the version it was asked for). */
  toBody(): CniErrorBody {
    return this.details ? { code: this.code, msg: this.msg, details: this.details } : { code: this.code, msg: this.msg };
  }
}

/** Tells a CniError by name, not instanceof: it may come from another copy of this module. */
export function isCniError(err: unknown): err is CniError {
  return typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'CniError'
    && typeof (err as { code?: unknown }).code === 'number' && typeof (err as { msg?: unknown }).msg === 'string';
}

/** The spec's error JSON, as the plugin prints it. */
export function errorOutput(cniVersion: string, body: CniErrorBody): string {
  return JSON.stringify({ cniVersion, code: body.code, msg: body.msg, ...(body.details ? { details: body.details } : {}) });
}
