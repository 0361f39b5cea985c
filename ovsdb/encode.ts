// Encodes typed operations into RFC 7047 JSON and checks a transaction's results per operation.
import { OvsdbEncodeError, OvsdbProtocolError, operationError } from './errors.ts';
import type { Operation, OperationResult } from './ops.ts';
import { columnOf } from './schema.ts';
import type { ColumnSchema, DatabaseSchema, TableSchema } from './schema.ts';

function tableOf(schema: DatabaseSchema, name: string): TableSchema {
  const t = schema.tables.get(name);
  if (!t) throw new OvsdbEncodeError(`database ${schema.name} has no table ${name}`);
  return t;
}

/** Typed row -> wire row. `_uuid`/`_version` are never sent as columns. */
export function encodeRow(table: TableSchema, row: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k in row) {
    if (k === '_uuid' || k === '_version') continue;
    const v = (row as Record<string, unknown>)[k];
    if (v === undefined) {
      const c = columnOf(table, k);
      if (c.kind !== 'optional') continue;
      out[k] = c.toWire(undefined);
      continue;
    }
    out[k] = columnOf(table, k).toWire(v);
  }
  return out;
}

/** Wire row -> typed row (only the columns present). */
export function decodeRow(table: TableSchema, wire: Record<string, unknown>, uuid?: string): Record<string, unknown> {
  const out: Record<string, unknown> = uuid === undefined ? {} : { _uuid: uuid };
  for (const k in wire) {
    const c = table.columns.get(k);
    // A column unknown to the schema in use (a newer server) is skipped, not fatal.
    if (c) out[k] = c.fromWire(wire[k]);
  }
  return out;
}

function encodeWhere(table: TableSchema, where: readonly unknown[]): unknown[] {
  return where.map((cond) => {
    const [col, fn, value] = cond as [string, string, unknown];
    return [col, fn, columnOf(table, col).toWire(value)];
  });
}

function encodeMutation(table: TableSchema, m: unknown): unknown {
  const [col, mutator, value] = m as [string, string, unknown];
  const c = columnOf(table, col);
  if (mutator === 'insert' || mutator === 'delete') {
    if (c.kind === 'map' && Array.isArray(value)) return [col, mutator, ['set', value.map(keyAtom(c))]];
    if (c.kind === 'set' && !Array.isArray(value)) return [col, mutator, c.toWire([value])];
    return [col, mutator, c.toWire(value)];
  }
  // Arithmetic mutators apply one scalar to each element.
  return [col, mutator, value];
}

function keyAtom(c: ColumnSchema): (k: unknown) => unknown {
  return (k) => {
    if (c.key.type === 'integer' || c.key.type === 'real') return typeof k === 'string' ? Number(k) : k;
    if (c.key.type === 'uuid') return ['uuid', k];
    return k;
  };
}

/** Encodes one typed operation for the wire. */
export function encodeOperation(schema: DatabaseSchema, op: Operation): Record<string, unknown> {
  switch (op.op) {
    case 'comment':
      return { op: 'comment', comment: op.comment };
    case 'assert':
      return { op: 'assert', lock: op.lock };
    case 'insert': {
      const t = tableOf(schema, op.table);
      const out: Record<string, unknown> = { op: 'insert', table: op.table, row: encodeRow(t, op.row) };
      const uuid = (op.row as { _uuid?: unknown })._uuid;
      if (typeof uuid === 'string') out.uuid = uuid;
      if (op.uuidName !== undefined) out['uuid-name'] = op.uuidName;
      return out;
    }
    case 'update': {
      const t = tableOf(schema, op.table);
      return { op: 'update', table: op.table, where: encodeWhere(t, op.where), row: encodeRow(t, op.row) };
    }
    case 'mutate': {
      const t = tableOf(schema, op.table);
      return { op: 'mutate', table: op.table, where: encodeWhere(t, op.where), mutations: op.mutations.map((m) => encodeMutation(t, m)) };
    }
    case 'delete': {
      const t = tableOf(schema, op.table);
      return { op: 'delete', table: op.table, where: encodeWhere(t, op.where) };
    }
    case 'select': {
      const t = tableOf(schema, op.table);
      const out: Record<string, unknown> = { op: 'select', table: op.table, where: encodeWhere(t, op.where) };
      if (op.columns) out.columns = op.columns;
      return out;
    }
    case 'wait': {
      const t = tableOf(schema, op.table);
      const out: Record<string, unknown> = {
        op: 'wait', table: op.table, where: encodeWhere(t, op.where), columns: op.columns, until: op.until,
        rows: op.rows.map((r) => encodeRow(t, r)),
      };
      if (op.timeout !== undefined) out.timeout = op.timeout;
      return out;
    }
  }
}

function rowJson(table: TableSchema, row: object): string {
  let out = '{';
  let first = true;
  for (const k in row) {
    if (k === '_uuid' || k === '_version') continue;
    const v = (row as Record<string, unknown>)[k];
    const c = columnOf(table, k);
    if (v === undefined && c.kind !== 'optional') continue;
    out += `${first ? '' : ','}${JSON.stringify(k)}:${c.toJson(v)}`;
    first = false;
  }
  return `${out}}`;
}

function whereJson(table: TableSchema, where: readonly unknown[]): string {
  let out = '[';
  for (let i = 0; i < where.length; i++) {
    const [col, fn, value] = where[i] as [string, string, unknown];
    out += `${i ? ',' : ''}[${JSON.stringify(col)},${JSON.stringify(fn)},${columnOf(table, col).toJson(value)}]`;
  }
  return `${out}]`;
}

/**
 * Encodes one operation straight to JSON text: the same wire form as encodeOperation without the
 * intermediate objects (what transact sends).
 */
export function encodeOperationJson(schema: DatabaseSchema, op: Operation): string {
  switch (op.op) {
    case 'insert': {
      const t = tableOf(schema, op.table);
      const uuid = (op.row as { _uuid?: unknown })._uuid;
      return `{"op":"insert","table":${JSON.stringify(op.table)},"row":${rowJson(t, op.row)}${typeof uuid === 'string' ? `,"uuid":${JSON.stringify(uuid)}` : ''}${op.uuidName === undefined ? '' : `,"uuid-name":${JSON.stringify(op.uuidName)}`}}`;
    }
    case 'update': {
      const t = tableOf(schema, op.table);
      return `{"op":"update","table":${JSON.stringify(op.table)},"where":${whereJson(t, op.where)},"row":${rowJson(t, op.row)}}`;
    }
    case 'delete': {
      const t = tableOf(schema, op.table);
      return `{"op":"delete","table":${JSON.stringify(op.table)},"where":${whereJson(t, op.where)}}`;
    }
    case 'mutate': {
      const t = tableOf(schema, op.table);
      return `{"op":"mutate","table":${JSON.stringify(op.table)},"where":${whereJson(t, op.where)},"mutations":${JSON.stringify(op.mutations.map((m) => encodeMutation(t, m)))}}`;
    }
    default:
      return JSON.stringify(encodeOperation(schema, op));
  }
}

function tableName(op: Operation | undefined): string | undefined {
  return op && 'table' in op ? op.table : undefined;
}

/**
 * Checks a transact reply: the first operation error (or a commit error after the last operation)
 * is thrown as a typed error naming the operation; otherwise the results are decoded.
 */
export function decodeResults(schema: DatabaseSchema, ops: readonly Operation[], reply: unknown): OperationResult[] {
  if (!Array.isArray(reply)) throw new OvsdbProtocolError(`transact reply is not an array: ${JSON.stringify(reply)}`);
  const out: OperationResult[] = [];
  for (let i = 0; i < reply.length; i++) {
    const r = reply[i] as Record<string, unknown> | null;
    if (r && typeof r.error === 'string') {
      const op = ops[i];
      const details = typeof r.details === 'string' ? r.details : undefined;
      throw operationError(r.error, { index: i, op: op ? op.op : 'commit', table: tableName(op) }, details);
    }
    if (i >= ops.length) continue;
    out.push(decodeResult(schema, ops[i]!, r));
  }
  if (reply.length < ops.length) throw new OvsdbProtocolError(`transact returned ${reply.length} results for ${ops.length} operations`);
  return out;
}

function decodeResult(schema: DatabaseSchema, op: Operation, r: Record<string, unknown> | null): OperationResult {
  if (!r) return {};
  if (Array.isArray(r.uuid)) return { uuid: r.uuid[1] as string };
  if (typeof r.count === 'number') return { count: r.count };
  if (Array.isArray(r.rows) && op.op === 'select') {
    const t = tableOf(schema, op.table);
    return { rows: (r.rows as Record<string, unknown>[]).map((row) => decodeRow(t, row, uuidOf(row))) };
  }
  return {};
}

function uuidOf(row: Record<string, unknown>): string | undefined {
  const u = row._uuid;
  return Array.isArray(u) ? (u[1] as string) : undefined;
}
