// The client-side replica of monitored tables: rows by _uuid, unique indexes from the schema,
// optional external_ids and column indexes, and a stream of row events for watchers.
import type { Observable} from 'rxjs';
import { Subject } from 'rxjs';
import type { TableMap } from './model.ts';
import type { TableSchema } from './schema.ts';

export type RowOp = 'insert' | 'update' | 'delete';

/** A change of one cached row. `old` is absent on insert, `new` on delete. */
export interface RowEvent<R = Record<string, unknown>> {
  readonly table: string;
  readonly op: RowOp;
  readonly uuid: string;
  readonly old?: R;
  readonly new?: R;
}

type Row = Record<string, unknown>;

interface UniqueIndex {
  readonly columns: readonly string[];
  readonly rows: Map<string, string>;
}

/** value -> uuids. One uuid per value is the common case; a Set only when a value is shared. */
type MultiIndex = Map<string, string | Set<string>>;

function multiAdd(idx: MultiIndex, v: string, uuid: string): void {
  const cur = idx.get(v);
  if (cur === undefined || cur === uuid) idx.set(v, uuid);
  else if (typeof cur === 'string') idx.set(v, new Set([cur, uuid]));
  else cur.add(uuid);
}

function multiRemove(idx: MultiIndex, v: string, uuid: string): void {
  const cur = idx.get(v);
  if (cur === uuid) idx.delete(v);
  else if (cur !== undefined && typeof cur !== 'string') {
    cur.delete(uuid);
    if (cur.size === 1) idx.set(v, cur.values().next().value!);
  }
}

function multiGet(idx: MultiIndex, v: string): string[] {
  const uuids = idx.get(v);
  if (uuids === undefined) return [];
  return typeof uuids === 'string' ? [uuids] : [...uuids];
}

const atomKey = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v ?? null));

/** The index keys of a column value: a set's elements, a scalar's (or an optional's present) value. */
function columnKeys(v: unknown): string[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? v.map(atomKey) : [atomKey(v)];
}

/** Elements of a column value (a set's element type, or the column's own type). */
type Elem<V> = V extends readonly (infer E)[] ? E : V;

function indexKey(row: Row, columns: readonly string[]): string {
  if (columns.length === 1) {
    const v = row[columns[0]!];
    return typeof v === 'string' ? v : JSON.stringify(v ?? null);
  }
  return JSON.stringify(columns.map((c) => row[c] ?? null));
}

/** Rows of one table. Rows are immutable snapshots: a change replaces the object. */
export class TableCache<R extends object = Row> {
  readonly name: string;
  readonly #rows = new Map<string, Row>();
  #unique: UniqueIndex[] = [];
  readonly #external = new Map<string, MultiIndex>();
  readonly #columns = new Map<string, MultiIndex>();
  readonly #emit: (e: RowEvent) => void;
  #schema: TableSchema | undefined;

  /** @internal built by Cache */
  constructor(name: string, emit: (e: RowEvent) => void) {
    this.name = name;
    this.#emit = emit;
  }

  get size(): number {
    return this.#rows.size;
  }

  /** The row with this _uuid. */
  get(uuid: string): R | undefined {
    return this.#rows.get(uuid) as R | undefined;
  }

  /** Every row. */
  all(): R[] {
    return [...this.#rows.values()] as R[];
  }

  /** Rows matching a predicate (a scan). */
  find(pred: (row: R) => boolean): R[] {
    const out: R[] = [];
    for (const r of this.#rows.values()) if (pred(r as R)) out.push(r as R);
    return out;
  }

  /**
   * The row whose values equal `key` on one of the schema's indexes, e.g. `byIndex({ name: 'p1' })`.
   * Throws if no schema index (with all its columns monitored) has exactly these columns.
   */
  byIndex(key: Partial<R>): R | undefined {
    const cols = Object.keys(key);
    const idx = this.#unique.find((i) => i.columns.length === cols.length && i.columns.every((c) => cols.includes(c)));
    if (!idx) throw new Error(`table ${this.name} has no monitored index on (${cols.join(', ')})`);
    const uuid = idx.rows.get(indexKey(key, idx.columns));
    return uuid === undefined ? undefined : (this.#rows.get(uuid) as R | undefined);
  }

  /** Rows whose external_ids[key] === value; `key` must have been indexed (monitor's externalIdIndexes). */
  byExternalId(key: string, value: string): R[] {
    const idx = this.#external.get(key);
    if (!idx) throw new Error(`table ${this.name} has no external_ids index on ${key}`);
    return multiGet(idx, value).map((u) => this.#rows.get(u) as R);
  }

  /**
   * Rows whose `column` holds `value`: equals it (a scalar or optional column) or contains it (a set
   * column). On a set of uuids this answers "which rows reference this one", e.g.
   * `cache.table('Logical_Switch').byColumn('ports', lspUuid)`. `column` must have been indexed
   * (monitor's columnIndexes).
   */
  byColumn<K extends keyof R & string>(column: K, value: Elem<R[K]>): R[] {
    const idx = this.#columns.get(column);
    if (!idx) throw new Error(`table ${this.name} has no column index on ${column}`);
    return multiGet(idx, atomKey(value)).map((u) => this.#rows.get(u) as R);
  }

  /** Whether `column` has a column index (monitor's columnIndexes). */
  hasColumnIndex(column: string): boolean {
    return this.#columns.has(column);
  }

  /** @internal sets which indexes to maintain; rebuilds them. */
  configure(schema: TableSchema, monitored: readonly string[] | undefined, externalKeys: readonly string[], columnKeys: readonly string[] = []): void {
    this.#schema = schema;
    const has = (c: string): boolean => !monitored || monitored.includes(c);
    for (const c of columnKeys) {
      const col = schema.columns.get(c);
      if (!col || !has(c)) throw new Error(`cannot index ${this.name}.${c}: not a monitored column`);
      if (col.kind === 'map') throw new Error(`cannot index ${this.name}.${c}: map columns have no column index`);
    }
    this.#unique = schema.indexes.filter((cols) => cols.every(has)).map((columns) => ({ columns, rows: new Map() }));
    for (const k of externalKeys) if (!this.#external.has(k)) this.#external.set(k, new Map());
    for (const c of columnKeys) if (!this.#columns.has(c)) this.#columns.set(c, new Map());
    for (const idx of this.#unique) for (const [u, r] of this.#rows) idx.rows.set(indexKey(r, idx.columns), u);
    for (const idx of [...this.#external.values(), ...this.#columns.values()]) idx.clear();
    for (const [u, r] of this.#rows) {
      this.#indexExternal(u, r, 1);
      this.#indexColumns(u, undefined, r);
    }
  }

  /** @internal the table schema the rows were decoded with. */
  get schema(): TableSchema | undefined {
    return this.#schema;
  }

  /** @internal inserts or replaces a row. */
  put(uuid: string, row: Row): void {
    const old = this.#rows.get(uuid);
    if (old) this.#unindex(uuid, old);
    this.#rows.set(uuid, row);
    this.#index(uuid, row);
    if (this.#columns.size > 0) this.#indexColumns(uuid, old, row);
    this.#emit(old ? { table: this.name, op: 'update', uuid, old, new: row } : { table: this.name, op: 'insert', uuid, new: row });
  }

  /** @internal */
  remove(uuid: string): void {
    const old = this.#rows.get(uuid);
    if (!old) return;
    this.#unindex(uuid, old);
    if (this.#columns.size > 0) this.#indexColumns(uuid, old, undefined);
    this.#rows.delete(uuid);
    this.#emit({ table: this.name, op: 'delete', uuid, old });
  }

  /** @internal raw row access for applying diffs. */
  raw(uuid: string): Row | undefined {
    return this.#rows.get(uuid);
  }

  /** @internal uuids currently cached. */
  uuids(): string[] {
    return [...this.#rows.keys()];
  }

  #index(uuid: string, row: Row): void {
    for (const idx of this.#unique) idx.rows.set(indexKey(row, idx.columns), uuid);
    if (this.#external.size > 0) this.#indexExternal(uuid, row, 1);
  }

  #unindex(uuid: string, row: Row): void {
    for (const idx of this.#unique) {
      const k = indexKey(row, idx.columns);
      if (idx.rows.get(k) === uuid) idx.rows.delete(k);
    }
    if (this.#external.size > 0) this.#indexExternal(uuid, row, -1);
  }

  #indexExternal(uuid: string, row: Row, dir: 1 | -1): void {
    const ids = row.external_ids as Record<string, string> | undefined;
    if (!ids) return;
    for (const [key, idx] of this.#external) {
      const v = ids[key];
      if (v === undefined) continue;
      if (dir === 1) multiAdd(idx, v, uuid);
      else multiRemove(idx, v, uuid);
    }
  }

  /** Moves a row's column-index entries from `old` to `row` (either absent on insert/delete). */
  #indexColumns(uuid: string, old: Row | undefined, row: Row | undefined): void {
    for (const [col, idx] of this.#columns) {
      const before = old?.[col];
      const after = row?.[col];
      // Diffs share the arrays of unchanged columns: a switch's 1000 ports are not re-indexed when
      // only its external_ids change.
      if (old && row && before === after) continue;
      const next = new Set(columnKeys(after));
      const prev = new Set(columnKeys(before));
      for (const k of prev) if (!next.has(k)) multiRemove(idx, k, uuid);
      for (const k of next) if (!prev.has(k)) multiAdd(idx, k, uuid);
    }
  }
}

/** All cached tables of one database, and the event stream. */
export class Cache<M extends TableMap = TableMap> {
  readonly #tables = new Map<string, TableCache>();
  readonly #events = new Subject<RowEvent>();
  /** Every row change applied to the cache, in order. */
  readonly events$: Observable<RowEvent> = this.#events.asObservable();
  readonly #emit = (e: RowEvent): void => {
    // Building events costs nothing when nobody listens.
    if (this.#events.observed) this.#events.next(e);
  };

  /** The cache of one table (empty until monitored). */
  table<T extends keyof M & string>(name: T): TableCache<M[T]> {
    let t = this.#tables.get(name);
    if (!t) {
      t = new TableCache(name, this.#emit);
      this.#tables.set(name, t);
    }
    return t as unknown as TableCache<M[T]>;
  }

  /** Names of tables with a cache. */
  tableNames(): string[] {
    return [...this.#tables.keys()];
  }

  /** @internal */
  complete(): void {
    this.#events.complete();
  }
}
