// Monitor requests (monitor, monitor_cond, monitor_cond_since) and applying their table updates
// (update, update2/update3 diffs) to the cache.
import type { Cache, TableCache } from './cache.ts';
import { decodeRow } from './encode.ts';
import { columnOf } from './schema.ts';
import type { DatabaseSchema, TableSchema } from './schema.ts';
import type { Condition } from './ops.ts';
import type { TableMap } from './model.ts';

export type MonitorMethod = 'monitor' | 'monitor_cond' | 'monitor_cond_since';

/** What to monitor in one table. */
export interface TableMonitor<R> {
  /** Columns to replicate; default: every column of the model (or schema). */
  readonly columns?: readonly (keyof R & string)[];
  /** Only rows matching all of these (monitor_cond and later). */
  readonly where?: readonly Condition<R>[];
  /** Which changes to receive; default all. */
  readonly select?: { readonly initial?: boolean; readonly insert?: boolean; readonly delete?: boolean; readonly modify?: boolean };
  /** external_ids keys to index for `byExternalId`. */
  readonly externalIdIndexes?: readonly string[];
  /**
   * Columns to index by value for `byColumn` (non-unique): a scalar by its value, a set by each
   * element. On a reference set (e.g. Logical_Switch `ports`) it is the reverse reference: which rows
   * hold a uuid. On `name` of a table without a schema index (Logical_Switch) it is the lookup by name.
   */
  readonly columnIndexes?: readonly (keyof R & string)[];
}

/** Tables to monitor, by name. */
export type MonitorSpec<M extends TableMap> = { readonly [T in keyof M & string]?: TableMonitor<M[T]> };

type Row = Record<string, unknown>;

/** Builds the <monitor-requests> object for the chosen method. */
export function monitorRequests(schema: DatabaseSchema, spec: MonitorSpec<TableMap>, method: MonitorMethod): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [tname, m] of Object.entries(spec)) {
    if (!m) continue;
    const table = schema.tables.get(tname);
    if (!table) throw new Error(`cannot monitor ${tname}: no such table in ${schema.name}`);
    const columns = m.columns ? [...m.columns] : [...table.columns.keys()].filter((c) => c !== '_uuid' && c !== '_version');
    const req: Record<string, unknown> = { columns };
    if (m.where && m.where.length > 0) {
      if (method === 'monitor') throw new Error(`monitor of ${tname}: conditions need monitor_cond`);
      req.where = m.where.map((cond) => {
        const [col, fn, value] = cond as readonly [string, string, unknown];
        return [col, fn, columnOf(table, col).toWire(value)];
      });
    }
    if (m.select) req.select = m.select;
    out[tname] = [req];
  }
  return out;
}

/** Counts what an update carried, for resume checks. */
export interface ApplyStats {
  rows: number;
}

/** Where updates go: the cache, the schema rows are typed by, and each table's monitored columns. */
export interface ApplyTarget {
  readonly cache: Cache;
  readonly schema: DatabaseSchema;
  readonly columns: ReadonlyMap<string, readonly string[]>;
  /**
   * Tables whose every matching row the cache holds (initial rows and inserts selected): there, a
   * modify or delete of a row the cache lacks means the cache is out of sync. Absent: every table.
   */
  readonly complete?: ReadonlySet<string>;
}

/** An update for a row the cache does not have: the cache missed something and needs a resync. */
export interface MissingRow {
  readonly table: string;
  readonly uuid: string;
  readonly op: 'modify' | 'delete';
}

/** Tables of a spec whose monitor replicates every matching row (so a missing row is a lost update). */
export function completeTables(spec: MonitorSpec<TableMap>): Set<string> {
  const out = new Set<string>();
  for (const [tname, m] of Object.entries(spec)) {
    if (m && m.select?.initial !== false && m.select?.insert !== false) out.add(tname);
  }
  return out;
}

/** Monitored columns per table of a spec. */
export function monitoredColumns(schema: DatabaseSchema, spec: MonitorSpec<TableMap>): Map<string, readonly string[]> {
  const out = new Map<string, readonly string[]>();
  for (const [tname, m] of Object.entries(spec)) {
    const table = schema.tables.get(tname);
    if (!table || !m) continue;
    out.set(tname, m.columns ? [...m.columns] : [...table.columns.keys()].filter((c) => c !== '_uuid' && c !== '_version'));
  }
  return out;
}

const templates = new WeakMap<readonly string[], Row>();

/** A full row: update2 initial/insert omit columns that hold their default value. */
function fullRow(table: TableSchema, wire: Row, uuid: string, columns: readonly string[] | undefined): Row {
  if (!columns) return decodeRow(table, wire, uuid);
  // Copying a template keeps V8's fast in-object layout; adding 17 keys one by one would turn each
  // row into a dictionary (measured: ~4x the heap per row).
  let template = templates.get(columns);
  if (!template) {
    template = { _uuid: '' };
    for (const c of columns) template[c] = undefined;
    templates.set(columns, template);
  }
  const row: Row = { ...template };
  row._uuid = uuid;
  for (const c of columns) {
    const col = table.columns.get(c);
    if (!col) continue;
    const w = wire[c];
    row[c] = w === undefined ? col.defaultValue() : col.fromWire(w);
  }
  return row;
}

/**
 * Applies RFC 7047 <table-updates> (monitor/update): each row carries its full new state. Returns the
 * updates (a modify carries `old`) for rows the cache lacked: non-empty means the cache is out of sync.
 */
export function applyUpdates(target: ApplyTarget, updates: unknown, stats?: ApplyStats, seen?: Map<string, Set<string>>): MissingRow[] {
  const { cache, schema } = target;
  const missing: MissingRow[] = [];
  for (const [tname, rows] of Object.entries(updates as Record<string, Record<string, { old?: Row; new?: Row }>>)) {
    const table = schema.tables.get(tname);
    if (!table) continue;
    const tc = cache.table(tname) as unknown as TableCache;
    const columns = target.columns.get(tname);
    const complete = !target.complete || target.complete.has(tname);
    for (const [uuid, u] of Object.entries(rows)) {
      if (stats) stats.rows++;
      const prev = tc.raw(uuid);
      if (!prev && u.old && complete) missing.push({ table: tname, uuid, op: u.new ? 'modify' : 'delete' });
      if (u.new) {
        seen?.get(tname)?.add(uuid);
        putIfChanged(tc, uuid, prev, fullRow(table, u.new, uuid, columns));
      } else tc.remove(uuid);
    }
  }
  return missing;
}

/**
 * Applies <table-updates2> (monitor_cond/update2, monitor_cond_since/update3). Returns the modifies and
 * deletes of rows the cache lacked (the change cannot be applied): non-empty means the cache is out of
 * sync and the monitor needs a full resync.
 */
export function applyUpdates2(target: ApplyTarget, updates: unknown, stats?: ApplyStats, seen?: Map<string, Set<string>>): MissingRow[] {
  const { cache, schema } = target;
  const missing: MissingRow[] = [];
  for (const [tname, rows] of Object.entries(updates as Record<string, Record<string, Record<string, Row>>>)) {
    const table = schema.tables.get(tname);
    if (!table) continue;
    const tc = cache.table(tname) as unknown as TableCache;
    const columns = target.columns.get(tname);
    const complete = !target.complete || target.complete.has(tname);
    for (const uuid in rows) {
      const u = rows[uuid]!;
      if (stats) stats.rows++;
      if (u.initial) {
        seen?.get(tname)?.add(uuid);
        putIfChanged(tc, uuid, tc.raw(uuid), fullRow(table, u.initial, uuid, columns));
      } else if (u.insert) tc.put(uuid, fullRow(table, u.insert, uuid, columns));
      else if (u.modify) {
        const old = tc.raw(uuid);
        if (old) tc.put(uuid, applyDiff(table, old, u.modify));
        else if (complete) missing.push({ table: tname, uuid, op: 'modify' });
      } else if (u.delete !== undefined) {
        if (tc.raw(uuid)) tc.remove(uuid);
        else if (complete) missing.push({ table: tname, uuid, op: 'delete' });
      }
    }
  }
  return missing;
}

/** After a full snapshot (first sync or a resync), drops cached rows the snapshot did not contain. */
export function dropUnseen(cache: Cache, seen: Map<string, Set<string>>): void {
  for (const [tname, uuids] of seen) {
    const tc = cache.table(tname) as unknown as TableCache;
    for (const u of tc.uuids()) if (!uuids.has(u)) tc.remove(u);
  }
}

function putIfChanged(tc: TableCache, uuid: string, prev: Row | undefined, row: Row): void {
  // A resync re-sends every row: only real changes become events.
  if (prev && sameRow(prev, row)) return;
  tc.put(uuid, row);
}

function sameRow(a: Row, b: Row): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    const x = a[k];
    const y = b[k];
    if (x !== y && (typeof x !== 'object' || JSON.stringify(x) !== JSON.stringify(y))) return false;
  }
  return true;
}

/**
 * update2 "modify": sets and maps carry a difference (RFC 7047 extension in ovsdb-server(5)); scalar
 * and optional columns carry the new value (an empty set clears an optional column).
 */
function applyDiff(table: TableSchema, old: Row, diff: Row): Row {
  const row: Row = { ...old };
  for (const col in diff) {
    const c = table.columns.get(col);
    if (!c) continue;
    const d = c.fromWire(diff[col]);
    if (c.kind === 'set') {
      const cur = new Set(old[col] as unknown[] | undefined);
      for (const e of d as unknown[]) {
        if (cur.has(e)) cur.delete(e);
        else cur.add(e);
      }
      row[col] = [...cur];
    } else if (c.kind === 'map') {
      const cur: Record<string, unknown> = { ...(old[col] as Record<string, unknown> | undefined) };
      for (const [k, v] of Object.entries(d as Record<string, unknown>)) {
        if (!(k in cur)) cur[k] = v;
        else if (cur[k] === v) delete cur[k];
        else cur[k] = v;
      }
      row[col] = cur;
    } else row[col] = d;
  }
  return row;
}
