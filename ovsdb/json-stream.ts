// RFC 7047 frames JSON-RPC as concatenated JSON values with no delimiter, so values are found by
// tracking nesting depth and string state byte by byte, across reads of any size.

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** The byte stream is not a sequence of JSON values; the stream cannot be resynchronised. */
export class JsonFramingError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'JsonFramingError';
  }
}

/** True if the run of backslashes ending at `end` (inclusive, not before `start`) is odd. */
function oddBackslashes(chunk: Buffer, end: number, start: number): boolean {
  let k = end;
  while (k >= start && chunk[k] === BACKSLASH) k--;
  return (end - k) % 2 === 1;
}

/** Incremental splitter of concatenated JSON objects/arrays. */
export class JsonStreamParser {
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #depth = 0;
  #inString = false;
  #escape = false;
  readonly #maxValueBytes: number;

  /** @param maxValueBytes refuse a single value larger than this (a runaway peer). */
  constructor(maxValueBytes = 512 * 1024 * 1024) {
    this.#maxValueBytes = maxValueBytes;
  }

  /** Feeds bytes; returns every value completed by them. Throws JsonFramingError on bad input. */
  push(chunk: Buffer): unknown[] {
    const out: unknown[] = [];
    const n = chunk.length;
    let start = this.#depth > 0 ? 0 : -1;
    let depth = this.#depth;
    let inString = this.#inString;
    let escape = this.#escape;
    for (let i = 0; i < n; i++) {
      if (inString) {
        if (escape) {
          escape = false;
          continue;
        }
        // Jump to the next quote; it closes the string unless an odd run of backslashes precedes it.
        const q = chunk.indexOf(QUOTE, i);
        if (q < 0) {
          escape = chunk[n - 1] === BACKSLASH && oddBackslashes(chunk, n - 1, i);
          i = n;
          break;
        }
        if (q > i && chunk[q - 1] === BACKSLASH && oddBackslashes(chunk, q - 1, i)) {
          i = q;
          continue;
        }
        inString = false;
        i = q;
        continue;
      }
      const b = chunk[i]!;
      if (b === OPEN_BRACE || b === OPEN_BRACKET) {
        if (depth === 0) start = i;
        depth++;
      } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
        if (depth === 0) throw this.#fail(`unexpected '${String.fromCharCode(b)}' between values`);
        depth--;
        if (depth === 0) {
          out.push(this.#complete(chunk, start, i + 1));
          start = -1;
        }
      } else if (b === QUOTE) {
        if (depth === 0) throw this.#fail('a JSON-RPC message must be an object, got a string');
        inString = true;
      } else if (depth === 0 && b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09) {
        throw this.#fail(`unexpected byte 0x${b.toString(16)} between values`);
      }
    }
    this.#depth = depth;
    this.#inString = inString;
    this.#escape = escape;
    if (depth > 0) {
      const rest = start >= 0 ? chunk.subarray(start) : chunk;
      this.#pending.push(rest);
      this.#pendingBytes += rest.length;
      if (this.#pendingBytes > this.#maxValueBytes) throw this.#fail(`value exceeds ${this.#maxValueBytes} bytes`);
    }
    return out;
  }

  /** True when a value has started but not finished. */
  get partial(): boolean {
    return this.#depth > 0;
  }

  #complete(chunk: Buffer, start: number, end: number): unknown {
    let bytes = chunk.subarray(start, end);
    if (this.#pending.length > 0) {
      this.#pending.push(bytes);
      bytes = Buffer.concat(this.#pending);
      this.#pending = [];
      this.#pendingBytes = 0;
    }
    const text = bytes.toString('utf8');
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw this.#fail(`malformed JSON value: ${text.length > 200 ? `${text.slice(0, 200)}...` : text}`, err);
    }
  }

  #fail(message: string, cause?: unknown): JsonFramingError {
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#depth = 0;
    this.#inString = false;
    this.#escape = false;
    return new JsonFramingError(message, cause === undefined ? undefined : { cause });
  }
}
