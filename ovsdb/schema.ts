// Runtime schema metadata: parses an .ovsschema (from get_schema or a generated model) and precomputes,
// per column, the converters between RFC 7047 wire values and kovn's typed row values.
import { OvsdbEncodeError, OvsdbSchemaError } from './errors.ts';

export type AtomicType = 'integer' | 'real' | 'boolean' | 'string' | 'uuid';
export type Atom = string | number | boolean;

/** One side (key or value) of a column type. */
export interface BaseType {
  readonly type: AtomicType;
  readonly enum?: readonly Atom[];
  readonly refTable?: string;
  readonly refType?: 'strong' | 'weak';
}

/** How a column maps to a typed value, the libovsdb way. */
export type ColumnKind = 'scalar' | 'optional' | 'set' | 'map';

export interface ColumnSchema {
  readonly name: string;
  readonly key: BaseType;
  readonly value: BaseType | undefined;
  readonly min: number;
  /** Infinity for "unlimited". */
  readonly max: number;
  readonly kind: ColumnKind;
  readonly ephemeral: boolean;
  readonly mutable: boolean;
  /** Typed value -> wire JSON. Throws OvsdbEncodeError on a value of the wrong type. */
  readonly toWire: (value: unknown) => unknown;
  /** Wire JSON -> typed value. */
  readonly fromWire: (wire: unknown) => unknown;
  /** Typed value -> wire JSON text, straight to a string (the transact hot path). */
  readonly toJson: (value: unknown) => string;
  /** The typed default (update2 omits columns holding it): '', 0, false, undefined, [] or {}. */
  readonly defaultValue: () => unknown;
}

export interface TableSchema {
  readonly name: string;
  readonly columns: ReadonlyMap<string, ColumnSchema>;
  /** Column lists whose values are unique across rows (schema `indexes`). */
  readonly indexes: readonly (readonly string[])[];
  readonly isRoot: boolean;
}

export interface DatabaseSchema {
  readonly name: string;
  readonly version: string;
  readonly tables: ReadonlyMap<string, TableSchema>;
}

const ATOMIC: readonly string[] = ['integer', 'real', 'boolean', 'string', 'uuid'];
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True for a real UUID; any other string in a uuid column is sent as a named-uuid reference. */
export function isUuid(s: string): boolean {
  return s.length === 36 && UUID_RE.test(s);
}

/** Parses a schema JSON value; every problem is reported with its path. */
export function parseSchema(json: unknown): DatabaseSchema {
  const problems: string[] = [];
  if (!isObject(json)) throw new OvsdbSchemaError('invalid schema', ['not an object']);
  const name = typeof json.name === 'string' ? json.name : (problems.push('name: missing'), '?');
  const version = typeof json.version === 'string' ? json.version : '';
  const tables = new Map<string, TableSchema>();
  if (!isObject(json.tables)) problems.push('tables: missing');
  else {
    for (const [tname, t] of Object.entries(json.tables)) {
      const table = parseTable(tname, t, problems);
      if (table) tables.set(tname, table);
    }
  }
  if (problems.length > 0) throw new OvsdbSchemaError(`invalid schema ${name}`, problems);
  return { name, version, tables };
}

function parseTable(name: string, json: unknown, problems: string[]): TableSchema | undefined {
  if (!isObject(json) || !isObject(json.columns)) {
    problems.push(`table ${name}: no columns`);
    return undefined;
  }
  const columns = new Map<string, ColumnSchema>();
  columns.set('_uuid', makeColumn('_uuid', { type: 'uuid' }, undefined, 1, 1, false, false));
  columns.set('_version', makeColumn('_version', { type: 'uuid' }, undefined, 1, 1, false, false));
  for (const [cname, c] of Object.entries(json.columns)) {
    const path = `table ${name} column ${cname}`;
    if (!isObject(c)) {
      problems.push(`${path}: not an object`);
      continue;
    }
    const col = parseColumn(cname, c, path, problems);
    if (col) columns.set(cname, col);
  }
  const indexes: string[][] = [];
  if (Array.isArray(json.indexes)) {
    for (const idx of json.indexes) {
      if (Array.isArray(idx) && idx.every((c) => typeof c === 'string' && columns.has(c))) indexes.push(idx as string[]);
      else problems.push(`table ${name}: bad index ${JSON.stringify(idx)}`);
    }
  }
  return { name, columns, indexes, isRoot: json.isRoot === true };
}

function parseColumn(name: string, c: Record<string, unknown>, path: string, problems: string[]): ColumnSchema | undefined {
  const t = c.type;
  let key: BaseType | undefined;
  let value: BaseType | undefined;
  let min = 1;
  let max = 1;
  if (typeof t === 'string') key = parseBase(t, `${path} type`, problems);
  else if (isObject(t)) {
    key = parseBase(t.key, `${path} key`, problems);
    if (t.value !== undefined) value = parseBase(t.value, `${path} value`, problems);
    if (t.min !== undefined) min = typeof t.min === 'number' ? t.min : NaN;
    if (t.max !== undefined) max = t.max === 'unlimited' ? Infinity : typeof t.max === 'number' ? t.max : NaN;
    if (!(min === 0 || min === 1) || !(max >= 1) || min > max) {
      problems.push(`${path}: bad min/max ${JSON.stringify(t.min)}/${JSON.stringify(t.max)}`);
      return undefined;
    }
  } else {
    problems.push(`${path}: missing type`);
  }
  if (!key || (isObject(t) && t.value !== undefined && !value)) return undefined;
  return makeColumn(name, key, value, min, max, c.ephemeral === true, c.mutable !== false);
}

function parseBase(json: unknown, path: string, problems: string[]): BaseType | undefined {
  if (typeof json === 'string') {
    if (ATOMIC.includes(json)) return { type: json as AtomicType };
    problems.push(`${path}: unknown type ${JSON.stringify(json)}`);
    return undefined;
  }
  if (!isObject(json) || typeof json.type !== 'string' || !ATOMIC.includes(json.type)) {
    problems.push(`${path}: unknown type ${JSON.stringify(isObject(json) ? json.type : json)}`);
    return undefined;
  }
  const base: { type: AtomicType; enum?: Atom[]; refTable?: string; refType?: 'strong' | 'weak' } = {
    type: json.type as AtomicType,
  };
  if (json.enum !== undefined) {
    const e = json.enum;
    base.enum = (Array.isArray(e) && e[0] === 'set' && Array.isArray(e[1]) ? e[1] : [e]) as Atom[];
  }
  if (typeof json.refTable === 'string') {
    base.refTable = json.refTable;
    base.refType = json.refType === 'weak' ? 'weak' : 'strong';
  }
  return base;
}

function makeColumn(
  name: string,
  key: BaseType,
  value: BaseType | undefined,
  min: number,
  max: number,
  ephemeral: boolean,
  mutable: boolean,
): ColumnSchema {
  const kind: ColumnKind = value ? 'map' : max === 1 ? (min === 1 ? 'scalar' : 'optional') : 'set';
  const [toWire, fromWire] = converters(name, kind, key, value);
  const toJson = jsonWriter(name, kind, key, value);
  return { name, key, value, min, max, kind, ephemeral, mutable, toWire, fromWire, toJson, defaultValue: defaults(kind, key.type) };
}

type Conv = (v: unknown) => unknown;

const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

// Cached rows are immutable snapshots, so all empty sets/maps can share one frozen value.
const EMPTY_SET: readonly unknown[] = Object.freeze([]);
const EMPTY_MAP: Readonly<Record<string, unknown>> = Object.freeze({});

function defaults(kind: ColumnKind, type: AtomicType): () => unknown {
  if (kind === 'set') return () => EMPTY_SET;
  if (kind === 'map') return () => EMPTY_MAP;
  if (kind === 'optional') return () => undefined;
  const v = type === 'string' ? '' : type === 'boolean' ? false : type === 'uuid' ? ZERO_UUID : 0;
  return () => v;
}

function converters(name: string, kind: ColumnKind, key: BaseType, value: BaseType | undefined): [Conv, Conv] {
  const keyTo = atomToWire(name, key.type);
  const keyFrom = atomFromWire(key.type);
  switch (kind) {
    case 'scalar':
      return [keyTo, keyFrom];
    case 'optional':
      return [
        (v) => (v === undefined || v === null ? ['set', []] : keyTo(v)),
        (w) => {
          if (Array.isArray(w) && w[0] === 'set') return (w[1] as unknown[]).length > 0 ? keyFrom((w[1] as unknown[])[0]) : undefined;
          return keyFrom(w);
        },
      ];
    case 'set':
      return [
        (v) => {
          if (!Array.isArray(v)) throw new OvsdbEncodeError(`column ${name}: expected an array, got ${typeof v}`);
          return ['set', v.map(keyTo)];
        },
        (w) => (Array.isArray(w) && w[0] === 'set' ? (w[1] as unknown[]).map(keyFrom) : [keyFrom(w)]),
      ];
    case 'map': {
      const valTo = atomToWire(name, value!.type);
      const valFrom = atomFromWire(value!.type);
      const keyParse = mapKeyParser(key.type);
      return [
        (v) => {
          if (!v || typeof v !== 'object' || Array.isArray(v)) throw new OvsdbEncodeError(`column ${name}: expected a record`);
          const pairs: unknown[] = [];
          for (const k in v) pairs.push([keyTo(keyParse(k)), valTo((v as Record<string, unknown>)[k])]);
          return ['map', pairs];
        },
        (w) => {
          const out: Record<string, unknown> = {};
          for (const p of (w as [string, [unknown, unknown][]])[1]) out[String(keyFrom(p[0]))] = valFrom(p[1]);
          return out;
        },
      ];
    }
  }
}

type Writer = (v: unknown) => string;

function jsonWriter(name: string, kind: ColumnKind, key: BaseType, value: BaseType | undefined): Writer {
  const keyJson = atomJson(name, key.type);
  switch (kind) {
    case 'scalar':
      return keyJson;
    case 'optional':
      return (v) => (v === undefined || v === null ? '["set",[]]' : keyJson(v));
    case 'set':
      return (v) => {
        if (!Array.isArray(v)) throw new OvsdbEncodeError(`column ${name}: expected an array, got ${typeof v}`);
        let out = '["set",[';
        for (let i = 0; i < v.length; i++) out += (i ? ',' : '') + keyJson(v[i]);
        return `${out}]]`;
      };
    case 'map': {
      const valJson = atomJson(name, value!.type);
      const keyParse = mapKeyParser(key.type);
      return (v) => {
        if (!v || typeof v !== 'object' || Array.isArray(v)) throw new OvsdbEncodeError(`column ${name}: expected a record`);
        let out = '["map",[';
        let first = true;
        for (const k in v) {
          out += `${first ? '' : ','}[${keyJson(keyParse(k))},${valJson((v as Record<string, unknown>)[k])}]`;
          first = false;
        }
        return `${out}]]`;
      };
    }
  }
}

function atomJson(column: string, type: AtomicType): Writer {
  const toWire = atomToWire(column, type);
  if (type === 'uuid') {
    return (v) => {
      const w = toWire(v) as [string, string];
      return w[0] === 'uuid' ? `["uuid","${w[1]}"]` : `["named-uuid",${JSON.stringify(w[1])}]`;
    };
  }
  if (type === 'string') return (v) => JSON.stringify(toWire(v));
  return (v) => String(toWire(v));
}

/** Record keys are strings in JS; integer/real/boolean map keys are parsed back for the wire. */
function mapKeyParser(type: AtomicType): (k: string) => unknown {
  if (type === 'integer' || type === 'real') return Number;
  if (type === 'boolean') return (k) => k === 'true';
  return (k) => k;
}

function atomToWire(column: string, type: AtomicType): Conv {
  const bad = (v: unknown): never => {
    throw new OvsdbEncodeError(`column ${column}: expected ${type}, got ${JSON.stringify(v)}`);
  };
  switch (type) {
    case 'string':
      return (v) => (typeof v === 'string' ? v : bad(v));
    case 'integer':
      return (v) => (Number.isInteger(v) ? v : bad(v));
    case 'real':
      return (v) => (typeof v === 'number' && Number.isFinite(v) ? v : bad(v));
    case 'boolean':
      return (v) => (typeof v === 'boolean' ? v : bad(v));
    case 'uuid':
      return (v) => (typeof v !== 'string' ? bad(v) : isUuid(v) ? ['uuid', v] : ['named-uuid', v]);
  }
}

function atomFromWire(type: AtomicType): Conv {
  if (type === 'uuid') return (w) => (w as [string, string])[1];
  return (w) => w;
}

/** Looks up a column or throws a clear encode error. */
export function columnOf(table: TableSchema, column: string): ColumnSchema {
  const c = table.columns.get(column);
  if (!c) throw new OvsdbEncodeError(`table ${table.name} has no column ${column}`);
  return c;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
