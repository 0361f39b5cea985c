// The client-side replica of monitored tables: rows by _uuid, unique indexes from the schema,
// optional external_ids indexes, and a stream of row events for watchers.
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
  // One uuid per value is the common case; a Set only when a value is shared.
  readonly #external = new Map<string, Map<string, string | Set<string>>>();
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
    const uuids = idx.get(value);
    if (uuids === undefined) return [];
    if (typeof uuids === 'string') return [this.#rows.get(uuids) as R];
    return [...uuids].map((u) => this.#rows.get(u) as R);
  }

  /** @internal sets which indexes to maintain; rebuilds them. */
  configure(schema: TableSchema, monitored: readonly string[] | undefined, externalKeys: readonly string[]): void {
    this.#schema = schema;
    const has = (c: string): boolean => !monitored || monitored.includes(c);
    this.#unique = schema.indexes.filter((cols) => cols.every(has)).map((columns) => ({ columns, rows: new Map() }));
    for (const k of externalKeys) if (!this.#external.has(k)) this.#external.set(k, new Map());
    for (const idx of this.#unique) for (const [u, r] of this.#rows) idx.rows.set(indexKey(r, idx.columns), u);
    for (const [u, r] of this.#rows) this.#indexExternal(u, r, 1);
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
    this.#emit(old ? { table: this.name, op: 'update', uuid, old, new: row } : { table: this.name, op: 'insert', uuid, new: row });
  }

  /** @internal */
  remove(uuid: string): void {
    const old = this.#rows.get(uuid);
    if (!old) return;
    this.#unindex(uuid, old);
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
      const cur = idx.get(v);
      if (dir === 1) {
        if (cur === undefined || cur === uuid) idx.set(v, uuid);
        else if (typeof cur === 'string') idx.set(v, new Set([cur, uuid]));
        else cur.add(uuid);
      } else if (cur === uuid) idx.delete(v);
      else if (cur !== undefined && typeof cur !== 'string') {
        cur.delete(uuid);
        if (cur.size === 1) idx.set(v, cur.values().next().value!);
      }
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
