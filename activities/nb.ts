/**
 * kovn's writes to the OVN Northbound database, through one generic, owner-scoped layer (in the spirit
 * of OVN-Kubernetes' libovsdb ops): an owner's desired rows are diffed against the client's cache and
 * applied in one transaction, creates guarded by `wait`s, only differing columns (and map keys) written,
 * children attached to and moved between parents, the owner's extra rows pruned. Every op that targets a
 * row by uuid is preceded by a `wait` for the cached values the plan relied on, so a plan made from a
 * stale cache commits nothing; it is then re-planned from the refreshed cache. Lookups go through
 * indexes only (name, owner, reverse reference). Each function returns what it changed.
 */
import { filter, firstValueFrom, map, race, timer } from 'rxjs';
import { OvsdbClient, opsFor } from '../ovsdb/index.ts';
import type { Operation, TableCache, TableSchema, WaitOp } from '../ovsdb/index.ts';
import { ovnNorthboundModel } from '../ovsdb/models/ovn-nb.ts';
import type { OvnNorthboundTables } from '../ovsdb/models/ovn-nb.ts';
import { OWNER_NAME, OWNER_TYPE, ROW_ID, isKovnOwned, ownedBy, ownerOf } from './translate/ownership.ts';
import { InvalidInputError, StalePlanError } from '../lib/errors.ts';
import type { Owner } from './translate/ownership.ts';
import type { DesiredSwitchPort, SwitchAttachment } from './translate/topology.ts';
import { CLUSTER_ROUTER } from './translate/topology.ts';
import { gatewayRouter } from './translate/gateway.ts';
import { CLUSTER_LB_GROUP } from './translate/service.ts';
import { ACL_LOGGING_METER, nodeAllowAcl } from './translate/network-policy.ts';
import type { Reach } from './translate/service.ts';
import type { Change } from '../lib/change.ts';
import type { ClusterConfig } from '../lib/cluster-config.ts';

export type { Change };

type NB = OvnNorthboundTables;
export type NbClient = OvsdbClient<NB>;

const ops = opsFor<NB>();

/**
 * Northbound tables whose rows kovn owns: each has `external_ids`. A row is keyed by its `name` where
 * the table has one, else (routes, NAT, router policies) by kovn's row id in `external_ids`.
 */
export type NamedTable = {
  [T in keyof NB]: NB[T] extends { external_ids: Record<string, string> } ? T : never;
}[keyof NB];

/** The tables kovn writes; what a prune looks through unless told otherwise. */
export const OWNED_TABLES: readonly NamedTable[] = [
  'Logical_Switch', 'Logical_Switch_Port', 'Logical_Router', 'Logical_Router_Port', 'Logical_Router_Static_Route', 'NAT', 'Logical_Router_Policy',
  'Load_Balancer', 'Port_Group', 'ACL', 'Address_Set',
];

/** Map columns whose keys kovn manages one by one, leaving other keys to whoever set them. */
type MapColumn<T extends NamedTable> = { [K in keyof NB[T]]-?: NB[T][K] extends Record<string, string> ? K : never }[keyof NB[T]] & string;

/**
 * The columns of a row kovn manages: any but its uuid and name (an ACL's name is only what logs show:
 * it is keyed by row id); map columns key by key.
 */
export type ManagedColumns<T extends NamedTable> = Partial<Omit<NB[T], '_uuid' | (T extends 'ACL' ? never : 'name')>>;

/** Where a row hangs: the parent row (by name) whose reference set `column` holds it. */
export interface ParentRef {
  /** A kovn-owned row's table, or a table without external_ids whose rows kovn names (Load_Balancer_Group). */
  readonly table: NamedTable | 'Load_Balancer_Group';
  readonly name: string;
  /** A set of strong references to the child's table, e.g. Logical_Switch `ports`. */
  readonly column: string;
}

/** One row an owner wants, identified by table and name. */
export interface DesiredRow<T extends NamedTable = NamedTable> {
  readonly table: T;
  readonly name: string;
  readonly columns: ManagedColumns<T>;
  readonly parent?: ParentRef;
  /** Map keys kovn manages that must be absent (deleted when present, unless `columns` sets them). */
  readonly clear?: { readonly [K in MapColumn<T>]?: readonly string[] };
  /** Extra waits sent only when the row is created, e.g. an atomic subnet claim. */
  readonly createGuard?: readonly Operation[];
  /**
   * Weak-reference sets (a policy's port group) the row joins in the transaction that creates it, where
   * they exist: a pod's port is covered by its policies from its first packet. Others own those sets.
   */
  readonly joins?: readonly { readonly table: 'Port_Group'; readonly name: string; readonly column: 'ports' }[];
}

/** A desired row of any named table, typed by its table. */
export type AnyDesiredRow = { [T in NamedTable]: DesiredRow<T> }[NamedTable];

/** A typed DesiredRow: `desired('Logical_Switch', 'node-1', { other_config: {...} })`. */
export function desired<T extends NamedTable>(table: T, name: string, columns: ManagedColumns<T>, more: Omit<DesiredRow<T>, 'table' | 'name' | 'columns'> = {}): DesiredRow<T> {
  return { table, name, columns, ...more };
}

export interface SyncOptions {
  /** Delete the owner's rows (in `tables`) that are not desired. Per-object writes prune; shared topology does not. */
  readonly prune?: boolean;
  /** Tables to prune; default OWNED_TABLES. */
  readonly tables?: readonly NamedTable[];
  /** Transaction comment (shows in ovsdb-server logs). */
  readonly comment?: string;
  /** Plans sent before giving up on a stale cache (default 5). */
  readonly attempts?: number;
  /**
   * Prune only the rows for which `test` holds, judged anew on every plan and guarded by a `wait` on
   * `columns`: a row rewritten meanwhile (a pod's port taken over by its next incarnation) is kept.
   */
  readonly pruneIf?: { readonly columns: readonly string[]; readonly test: (row: Row) => boolean };
  /** Called when a sent plan is found stale and is re-planned. */
  readonly onRetry?: (e: { readonly attempt: number; readonly error: unknown }) => void;
}

/** A planned transaction: its operations and the changes it makes; empty `changes` means nothing to do. */
export interface SyncPlan {
  readonly ops: Operation[];
  readonly changes: Change[];
  /** Tables the plan read, to know when the cache has caught up after a stale plan. */
  readonly tables: ReadonlySet<string>;
  /** Indexes in `ops` of the caller's create guards (DesiredRow.createGuard). */
  readonly guards: ReadonlySet<number>;
}

/** Connects to the Northbound DB and replicates the tables kovn reconciles, indexed by owner, name and reference. */
export async function connectNb(endpoints: readonly string[]): Promise<NbClient> {
  const nb = await OvsdbClient.connect({ endpoints, database: 'OVN_Northbound', model: ovnNorthboundModel, leaderOnly: true });
  const owned = { externalIdIndexes: [ROW_ID, OWNER_NAME, OWNER_TYPE] };
  // Switches and routers have no schema index on name: a column index stands in; on `ports` it tells
  // which switch or router holds a port.
  await nb.monitor({
    Logical_Switch: { ...owned, columns: ['name', 'other_config', 'external_ids', 'ports', 'acls', 'load_balancer', 'load_balancer_group'], columnIndexes: ['name', 'ports', 'acls', 'load_balancer'] },
    Logical_Switch_Port: { ...owned, columns: ['name', 'type', 'addresses', 'port_security', 'options', 'external_ids', 'up'] },
    Logical_Router: {
      ...owned, columns: ['name', 'options', 'external_ids', 'ports', 'static_routes', 'nat', 'policies', 'load_balancer', 'load_balancer_group'],
      columnIndexes: ['name', 'ports', 'static_routes', 'nat', 'policies', 'load_balancer'],
    },
    Logical_Router_Port: { ...owned, columns: ['name', 'mac', 'networks', 'options', 'external_ids'] },
    Logical_Router_Static_Route: { ...owned, columns: ['ip_prefix', 'nexthop', 'output_port', 'policy', 'route_table', 'options', 'external_ids'] },
    NAT: { ...owned, columns: ['type', 'logical_ip', 'external_ip', 'logical_port', 'options', 'external_ids'] },
    Logical_Router_Policy: { ...owned, columns: ['priority', 'match', 'action', 'nexthops', 'options', 'external_ids'] },
    Static_MAC_Binding: { columns: ['logical_port', 'ip', 'mac', 'override_dynamic_mac'] },
    Load_Balancer: { ...owned, columns: ['name', 'protocol', 'vips', 'options', 'selection_fields', 'external_ids'], columnIndexes: ['name'] },
    Load_Balancer_Group: { columns: ['name', 'load_balancer'], columnIndexes: ['load_balancer'] },
    // Policies: which port groups hold a pod's port and which address sets its address tell a pod's
    // change which policies it touches.
    Port_Group: { ...owned, columns: ['name', 'ports', 'acls', 'external_ids'], columnIndexes: ['ports', 'acls'] },
    ACL: { ...owned, columns: ['name', 'priority', 'direction', 'match', 'action', 'log', 'severity', 'meter', 'label', 'options', 'external_ids'] },
    Address_Set: { ...owned, columns: ['name', 'addresses', 'external_ids'], columnIndexes: ['addresses'] },
    Meter: { ...owned, columns: ['name', 'unit', 'bands', 'fair', 'external_ids'], columnIndexes: ['bands'] },
    Meter_Band: { ...owned, columns: ['action', 'rate', 'burst_size', 'external_ids'] },
  });
  return nb;
}

// ---- the generic layer ------------------------------------------------------------------------------

type Row = { readonly _uuid: string } & Readonly<Record<string, unknown>>;

const tableCache = (nb: NbClient, table: string): TableCache<Row> => nb.cache.table(table as NamedTable) as unknown as TableCache<Row>;

function schemaOf(nb: NbClient, table: string): TableSchema {
  const t = nb.schema.tables.get(table);
  if (!t) throw new Error(`no table ${table} in ${nb.schema.name}`);
  return t;
}

/**
 * Whether the table's rows are keyed by `name`; the others by kovn's row id in `external_ids`. An ACL's
 * name is optional, short and not unique (log lines show it): ACLs are keyed by row id.
 */
const hasName = (nb: NbClient, table: string): boolean => table !== 'ACL' && schemaOf(nb, table).columns.has('name');

/** A row's key: its name, or its row id for tables without names. */
const keyOf = (nb: NbClient, table: string, row: Row): string =>
  hasName(nb, table) ? (row.name as string) : ((row.external_ids as Record<string, string> | undefined)?.[ROW_ID] ?? row._uuid);

/** Rows of `table` keyed `name`: through the schema's unique index, else the monitor's column index (or row-id index). */
function rowsNamed(nb: NbClient, table: string, name: string): Row[] {
  const tc = tableCache(nb, table);
  if (!hasName(nb, table)) return [...tc.byExternalId(ROW_ID, name)].sort((a, b) => a._uuid.localeCompare(b._uuid));
  if (schemaOf(nb, table).indexes.some((i) => i.length === 1 && i[0] === 'name')) {
    const r = tc.byIndex({ name });
    return r ? [r] : [];
  }
  return [...tc.byColumn('name', name)].sort((a, b) => a._uuid.localeCompare(b._uuid));
}

/** The rows that hold `uuid` in a strong reference set (which switch holds this port), via column indexes. */
function holdersOf(nb: NbClient, table: string, uuid: string): { table: string; column: string; row: Row }[] {
  const out: { table: string; column: string; row: Row }[] = [];
  for (const [ptable, column] of referrers(nb, table)) {
    for (const row of tableCache(nb, ptable).byColumn(column, uuid)) out.push({ table: ptable, column, row });
  }
  return out;
}

/** Monitored (table, column) pairs that strongly reference `table` and have a column index. */
function referrers(nb: NbClient, table: string): [string, string][] {
  const out: [string, string][] = [];
  for (const [ptable, t] of nb.schema.tables) {
    for (const [column, c] of t.columns) {
      if (c.kind === 'set' && c.key.refTable === table && c.key.refType === 'strong' && tableCache(nb, ptable).hasColumnIndex(column)) out.push([ptable, column]);
    }
  }
  return out;
}

const humanTable = (table: string): string => table.replace(/_/g, ' ').toLowerCase();

/** The error for a row kovn would have to modify but does not own. */
function foreignRow(table: string, name: string): InvalidInputError {
  const reason = table.endsWith('_Port') ? 'ForeignPort' : `Foreign${table.split('_').at(-1) ?? table}`;
  return new InvalidInputError(reason, `${humanTable(table)} ${name} exists and is not owned by kovn; remove it, then replay this change`);
}

const owns = (owner: Owner, r: Row): boolean => {
  const o = ownerOf(r.external_ids as Record<string, string> | undefined);
  return o?.type === owner.type && o.name === owner.name;
};

/** The existing row a desired (table, name) is, or undefined; throws if a row of that name is not kovn's. */
function existing(nb: NbClient, owner: Owner, table: string, name: string): Row | undefined {
  const rows = rowsNamed(nb, table, name);
  if (rows.some((r) => !isKovnOwned(r.external_ids as Record<string, string> | undefined))) throw foreignRow(table, name);
  return rows.find((r) => owns(owner, r)) ?? rows[0];
}

const sortedJson = (v: unknown): string => JSON.stringify(Array.isArray(v) ? [...(v as unknown[])].map((x) => JSON.stringify(x)).sort() : v);

/** How a planned row stands: new (inserted under a named uuid) or existing (by uuid). */
type Resolved =
  | { readonly kind: 'new'; readonly want: AnyDesiredRow; readonly named: string; readonly refs: Map<string, string[]> }
  | { readonly kind: 'existing'; readonly want: AnyDesiredRow | undefined; readonly row: Row; readonly table: string };

/** A transaction under construction. Waits go first: they check the state the plan read, before any write. */
class Planner {
  readonly nb: NbClient;
  readonly owner: Owner;
  readonly waits: Operation[] = [];
  readonly inserts: { depth: number; op: Operation }[] = [];
  readonly writes: Operation[] = [];
  readonly deletes: Operation[] = [];
  readonly changes: Change[] = [];
  readonly tables = new Set<string>();
  readonly guards = new Set<Operation>();
  readonly #waited = new Set<string>();
  #n = 0;

  constructor(nb: NbClient, owner: Owner) {
    this.nb = nb;
    this.owner = owner;
  }

  named(): string {
    return `row${this.#n++}`;
  }

  change(table: string, row: string, op: Change['op']): void {
    if (!this.changes.some((c) => c.table === table && c.row === row && c.op === op)) this.changes.push({ db: 'nb', table, row, op });
  }

  /** Fails the transaction unless the row still holds its cached values in `columns`. */
  waitRow(table: string, row: Row, columns: readonly string[]): void {
    const cols = [...new Set([hasName(this.nb, table) ? 'name' : 'external_ids', ...columns])].sort();
    this.#wait(`${table}|${row._uuid}|${cols.join(',')}`, {
      op: 'wait', table, where: [['_uuid', '==', row._uuid]], columns: cols, until: '==', timeout: 0,
      rows: [Object.fromEntries(cols.map((c) => [c, row[c]]))],
    });
  }

  /** Fails the transaction unless the parent still exists and does (or does not) hold `child`. */
  waitMembership(table: string, parent: Row, column: string, child: string | undefined, holds: boolean): void {
    const where: unknown[] = [['_uuid', '==', parent._uuid]];
    if (child !== undefined) where.push([column, holds ? 'includes' : 'excludes', [child]]);
    this.#wait(`${table}|${parent._uuid}|${column}|${child ?? ''}|${holds}`, {
      op: 'wait', table, where, columns: ['name'], until: '==', timeout: 0, rows: [{ name: parent.name }],
    });
  }

  /** Fails the transaction if a row of this name appeared meanwhile (the create guard). */
  waitAbsent(table: string, name: string): void {
    const where = hasName(this.nb, table) ? [['name', '==', name]] : [['external_ids', 'includes', { [ROW_ID]: name }]];
    this.#wait(`${table}|absent|${name}`, { op: 'wait', table, where, columns: [hasName(this.nb, table) ? 'name' : 'external_ids'], until: '==', rows: [], timeout: 0 });
  }

  #wait(key: string, op: WaitOp): void {
    if (this.#waited.has(key)) return;
    this.#waited.add(key);
    this.waits.push(op);
  }

  ops(comment: string): Operation[] {
    const inserts = [...this.inserts].sort((a, b) => b.depth - a.depth).map((i) => i.op);
    return [ops.comment(comment), ...this.waits, ...inserts, ...this.writes, ...this.deletes];
  }
}

/**
 * Plans, from the cache alone, the transaction that makes `owner`'s rows what `rows` say (see syncOwned).
 * Throws InvalidInputError for a row that exists and is not kovn's, and a plain (retryable) Error when
 * a parent does not exist yet.
 */
export function planSync(nb: NbClient, owner: Owner, rows: readonly AnyDesiredRow[], opts: Pick<SyncOptions, 'prune' | 'tables' | 'comment' | 'pruneIf'> = {}): SyncPlan {
  const p = new Planner(nb, owner);
  const byKey = new Map<string, Resolved>();
  const key = (table: string, name: string): string => `${table}\u0000${name}`;
  for (const want of rows) {
    if (byKey.has(key(want.table, want.name))) throw new Error(`${want.table} ${want.name} is desired twice`);
    if (!hasName(nb, want.table) && (want.columns.external_ids)?.[ROW_ID] !== want.name) {
      throw new Error(`${want.table} ${want.name}: a row without a name is keyed by its ${ROW_ID}, which must be ${want.name}`);
    }
    p.tables.add(want.table);
    const cur = existing(nb, owner, want.table, want.name);
    byKey.set(key(want.table, want.name), cur
      ? { kind: 'existing', want, row: cur, table: want.table }
      : { kind: 'new', want, named: p.named(), refs: new Map() });
  }
  const parentOf = (ref: ParentRef): Resolved => {
    p.tables.add(ref.table);
    const mine = byKey.get(key(ref.table, ref.name));
    if (mine) return mine;
    const rowsOfName = rowsNamed(nb, ref.table, ref.name);
    if (rowsOfName.length === 0) throw new Error(`${humanTable(ref.table)} ${ref.name} does not exist yet`);
    // A table without external_ids cannot say who owns a row: kovn's rows there are known by name.
    const unowned = !schemaOf(nb, ref.table).columns.has('external_ids');
    const row = rowsOfName.find((r) => unowned || isKovnOwned(r.external_ids as Record<string, string> | undefined));
    if (!row) throw foreignRow(ref.table, ref.name);
    const r: Resolved = { kind: 'existing', want: undefined, row, table: ref.table };
    byKey.set(key(ref.table, ref.name), r);
    return r;
  };
  for (const r of [...byKey.values()]) {
    if (!r.want) continue;
    if (r.kind === 'new') planInsert(p, r, parentOf);
    else planUpdate(p, r.want, r.row, parentOf);
  }
  for (const r of byKey.values()) {
    if (r.kind === 'new') p.inserts.push({ depth: depthOf(r.want, byKey, key), op: insertOp(nb, r) });
  }
  if (opts.prune) planPrune(p, new Set([...byKey.values()].flatMap((r) => (r.kind === 'existing' && r.want ? [r.row._uuid] : []))), opts.tables ?? OWNED_TABLES, opts.pruneIf);
  const planned = p.ops(opts.comment ?? `kovn: ${owner.type} ${owner.name}`);
  const guards = new Set(planned.flatMap((o, i) => (p.guards.has(o) ? [i] : [])));
  return { ops: planned, changes: p.changes, tables: p.tables, guards };
}

/** How many desired ancestors a row has: children are inserted before the parents that reference them. */
function depthOf(want: AnyDesiredRow, byKey: Map<string, Resolved>, key: (t: string, n: string) => string): number {
  let depth = 0;
  for (let ref = want.parent; ref; ) {
    const parent = byKey.get(key(ref.table, ref.name));
    if (!parent?.want) break;
    if (++depth > byKey.size) throw new Error(`${want.table} ${want.name}: parents form a cycle`);
    ref = parent.want.parent;
  }
  return depth;
}

function insertOp(nb: NbClient, r: Extract<Resolved, { kind: 'new' }>): Operation {
  const row: Record<string, unknown> = { ...(hasName(nb, r.want.table) ? { name: r.want.name } : {}), ...r.want.columns };
  for (const [column, children] of r.refs) row[column] = [...((row[column] as string[] | undefined) ?? []), ...children];
  return { op: 'insert', table: r.want.table, row, uuidName: r.named };
}

/** Checks that `column` of `table` is a set of references to `child` rows. */
function checkRefColumn(nb: NbClient, ref: ParentRef, child: string): void {
  const c = schemaOf(nb, ref.table).columns.get(ref.column);
  if (c?.kind !== 'set' || c.key.refTable !== child) throw new Error(`${ref.table}.${ref.column} is not a set of references to ${child}`);
}

function planInsert(p: Planner, r: Extract<Resolved, { kind: 'new' }>, parentOf: (ref: ParentRef) => Resolved): void {
  const { want } = r;
  for (const g of want.createGuard ?? []) {
    p.guards.add(g);
    p.waits.push(g);
  }
  p.waitAbsent(want.table, want.name);
  p.change(want.table, want.name, 'insert');
  for (const j of want.joins ?? []) {
    const set = rowsNamed(p.nb, j.table, j.name)[0];
    // A set that goes meanwhile matches no row: the mutation is then a no-op, never a failure.
    p.tables.add(j.table);
    if (set) p.writes.push({ op: 'mutate', table: j.table, where: [['_uuid', '==', set._uuid]], mutations: [[j.column, 'insert', [r.named]]] });
  }
  if (!want.parent) return;
  checkRefColumn(p.nb, want.parent, want.table);
  const parent = parentOf(want.parent);
  if (parent.kind === 'new') addRef(parent, want.parent.column, r.named);
  else {
    p.waitMembership(want.parent.table, parent.row, want.parent.column, undefined, true);
    p.writes.push({ op: 'mutate', table: want.parent.table, where: [['_uuid', '==', parent.row._uuid]], mutations: [[want.parent.column, 'insert', [r.named]]] });
  }
}

const addRef = (parent: Extract<Resolved, { kind: 'new' }>, column: string, child: string): void => {
  parent.refs.set(column, [...(parent.refs.get(column) ?? []), child]);
};

/** Updates only what differs; map columns key by key. Re-parents the row when its parent changed. */
function planUpdate(p: Planner, want: AnyDesiredRow, cur: Row, parentOf: (ref: ParentRef) => Resolved): void {
  const schema = schemaOf(p.nb, want.table);
  const read = ['external_ids']; // ownership was read
  const set: Record<string, unknown> = {};
  const mutations: unknown[] = [];
  const columns = want.columns as Record<string, unknown>;
  const clear = (want.clear ?? {}) as Record<string, readonly string[] | undefined>;
  for (const column of new Set([...Object.keys(columns), ...Object.keys(clear)])) {
    const c = schema.columns.get(column);
    if (!c) throw new Error(`${want.table} has no column ${column}`);
    if (!(column in cur)) throw new Error(`${want.table}.${column} is not monitored: kovn cannot tell what it holds`);
    read.push(column);
    const have = cur[column];
    const to = columns[column];
    if (c.kind === 'map') {
      const h = (have ?? {}) as Record<string, string>;
      const w = (to ?? {}) as Record<string, string>;
      const changed = Object.keys(w).filter((k) => h[k] !== w[k]);
      const gone = (clear[column] ?? []).filter((k) => !(k in w) && k in h);
      const del = [...changed.filter((k) => k in h), ...gone];
      // A map's insert never overwrites a key: changed keys go first, then come back with their new value.
      if (del.length > 0) mutations.push([column, 'delete', del]);
      if (changed.length > 0) mutations.push([column, 'insert', Object.fromEntries(changed.map((k) => [k, w[k]]))]);
    } else if (column in columns && c.kind === 'set' && c.max === Infinity) {
      // By delta: a port group's ports or an address set's addresses change by the pods that came and went.
      const h = new Set(((have ?? []) as unknown[]).map((x) => JSON.stringify(x)));
      const w = new Set(((to ?? []) as unknown[]).map((x) => JSON.stringify(x)));
      const gone = [...h].filter((x) => !w.has(x)).map((x) => JSON.parse(x) as unknown);
      const added = [...w].filter((x) => !h.has(x)).map((x) => JSON.parse(x) as unknown);
      // Inserts first: a set that must hold one element (a port's networks) is never empty in between.
      if (added.length > 0) mutations.push([column, 'insert', added]);
      if (gone.length > 0) mutations.push([column, 'delete', gone]);
    } else if (column in columns && (c.kind === 'set' ? sortedJson(have) !== sortedJson(to) : have !== to)) {
      set[column] = to;
    }
  }
  const where = [['_uuid', '==', cur._uuid]];
  const differs = Object.keys(set).length > 0 || mutations.length > 0;
  if (Object.keys(set).length > 0) p.writes.push({ op: 'update', table: want.table, where, row: set });
  if (mutations.length > 0) p.writes.push({ op: 'mutate', table: want.table, where, mutations });
  if (differs) p.change(want.table, want.name, 'update');
  const moved = want.parent ? planParent(p, want, want.parent, cur, parentOf) : false;
  if (differs || moved) p.waitRow(want.table, cur, read);
}

/** Attaches an existing row to its desired parent and detaches it from any other; true if it moved. */
function planParent(p: Planner, want: AnyDesiredRow, ref: ParentRef, cur: Row, parentOf: (ref: ParentRef) => Resolved): boolean {
  checkRefColumn(p.nb, ref, want.table);
  if (!tableCache(p.nb, ref.table).hasColumnIndex(ref.column)) throw new Error(`${ref.table}.${ref.column} has no column index: monitor it with columnIndexes`);
  const parent = parentOf(ref);
  const target = parent.kind === 'existing' ? parent.row._uuid : undefined;
  const holders = tableCache(p.nb, ref.table).byColumn(ref.column, cur._uuid);
  let moved = false;
  for (const h of holders) {
    if (h._uuid === target) continue;
    detach(p, ref.table, ref.column, h, cur._uuid);
    moved = true;
  }
  if (parent.kind === 'new') {
    addRef(parent, ref.column, cur._uuid);
    moved = true;
  } else if (!holders.some((h) => h._uuid === target)) {
    p.waitMembership(ref.table, parent.row, ref.column, cur._uuid, false);
    p.writes.push({ op: 'mutate', table: ref.table, where: [['_uuid', '==', parent.row._uuid]], mutations: [[ref.column, 'insert', [cur._uuid]]] });
    moved = true;
  }
  if (moved) p.change(want.table, want.name, 'update');
  return moved;
}

function detach(p: Planner, table: string, column: string, holder: Row, child: string): void {
  p.tables.add(table);
  p.waitMembership(table, holder, column, child, true);
  p.writes.push({ op: 'mutate', table, where: [['_uuid', '==', holder._uuid]], mutations: [[column, 'delete', [child]]] });
}

/** Deletes the owner's rows that are not desired; non-root rows are detached from their holders first. */
function planPrune(p: Planner, keep: ReadonlySet<string>, tables: readonly NamedTable[], only?: SyncOptions['pruneIf']): void {
  const dead: { table: string; row: Row }[] = [];
  for (const table of tables) {
    p.tables.add(table);
    for (const row of tableCache(p.nb, table).byExternalId(OWNER_NAME, p.owner.name)) {
      if (owns(p.owner, row) && !keep.has(row._uuid) && (only?.test(row) ?? true)) dead.push({ table, row });
    }
  }
  const deadIds = new Set(dead.map((d) => d.row._uuid));
  for (const { table, row } of dead) {
    p.waitRow(table, row, ['external_ids', ...(only?.columns ?? [])]);
    if (!schemaOf(p.nb, table).isRoot) {
      // A holder deleted in the same transaction drops its references by itself.
      for (const h of holdersOf(p.nb, table, row._uuid)) if (!deadIds.has(h.row._uuid)) detach(p, h.table, h.column, h.row, row._uuid);
    }
    p.deletes.push({ op: 'delete', table, where: [['_uuid', '==', row._uuid]] });
    p.change(table, keyOf(p.nb, table, row), 'delete');
  }
}

/** Why a sent plan failed, when re-planning from a fresher cache may fix it. */
function staleness(err: unknown, plan: SyncPlan): 'wait' | 'guard' | 'reference' | 'reconnect' | undefined {
  const e = err as { name?: unknown; failed?: { op?: unknown; index?: unknown }; inDoubt?: unknown } | undefined;
  if (e?.name === 'OvsdbTimedOutError' && e.failed?.op === 'wait') return typeof e.failed.index === 'number' && plan.guards.has(e.failed.index) ? 'guard' : 'wait';
  if (e?.name === 'OvsdbReferentialIntegrityError') return 'reference';
  if (e?.name === 'OvsdbDisconnectedError' && e.inDoubt === true) return 'reconnect';
  return undefined;
}

/** Resolves once connected (a reconnect has resynced the cache by then), or after `ms`. */
function whenConnected(nb: NbClient, ms: number): Promise<void> {
  if (nb.connected) return Promise.resolve();
  return firstValueFrom(race(nb.connection$.pipe(filter((e) => e.state === 'connected')), timer(ms)).pipe(map(() => undefined)), { defaultValue: undefined });
}

/** Resolves when the cache applied a change to one of `tables`, or after `ms`. */
export function cacheCatchUp(nb: NbClient, tables: ReadonlySet<string>, ms: number): Promise<void> {
  return firstValueFrom(race(nb.events$.pipe(filter((e) => tables.has(e.table))), timer(ms)).pipe(map(() => undefined)), { defaultValue: undefined });
}

/**
 * Makes the owner's rows what `rows` say, in one transaction: creates what is missing (guarded by a
 * `wait` that no row of that name exists), updates only the columns that differ and, in map columns,
 * only the keys that differ (a key someone else set survives), attaches new rows to their parent and
 * moves rows whose parent changed, and with `prune` deletes the owner's rows that are not desired. A
 * row of a wanted name that kovn does not own is never modified: InvalidInputError ('ForeignPort' for
 * ports). Commits nothing and returns [] when nothing differs.
 *
 * A plan found stale when sent (a wait failed, a reference broke, the connection dropped with it in
 * flight) committed nothing: it is re-planned from the cache once the cache caught up, up to
 * `attempts` times, then StalePlanError (retryable) is thrown.
 */
export async function syncOwned(nb: NbClient, owner: Owner, rows: readonly AnyDesiredRow[] | (() => readonly AnyDesiredRow[]), opts: SyncOptions = {}): Promise<Change[]> {
  const attempts = opts.attempts ?? 5;
  let sent: string | undefined;
  // A plan lost in flight with the connection may have committed: if nothing is left to do, it did.
  let inDoubt: Change[] | undefined;
  for (let attempt = 1; ; attempt++) {
    // A cache from before a reconnect is stale by definition: plan from the resynced one.
    await whenConnected(nb, 10_000);
    // Rows given as a function are made anew from the refreshed cache on every plan (a port group's
    // members: a port that joined it meanwhile stays).
    const plan = planSync(nb, owner, typeof rows === 'function' ? rows() : rows, opts);
    if (plan.changes.length === 0) return inDoubt ?? [];
    const json = JSON.stringify(plan.ops);
    try {
      await nb.transact(plan.ops);
      return plan.changes;
    } catch (err) {
      const why = staleness(err, plan);
      if (!why) throw err;
      // The caller's guard (a subnet claim) read something else: only the caller can plan anew.
      if (why === 'guard') throw new StalePlanError(`${owner.type} ${owner.name}: a create guard no longer holds`, attempt, { cause: err });
      inDoubt = why === 'reconnect' ? plan.changes : undefined;
      // The same plan failing twice on a reference is kovn's own mistake, not a stale cache.
      if (why === 'reference' && json === sent) throw err;
      if (attempt >= attempts) {
        throw new StalePlanError(`${owner.type} ${owner.name}: the Northbound cache was still stale after ${attempts} plan(s)`, attempts, { cause: err });
      }
      opts.onRetry?.({ attempt, error: err });
      sent = json;
      await cacheCatchUp(nb, plan.tables, 25 * 2 ** (attempt - 1));
    }
  }
}

// ---- kovn's rows, through the generic layer ---------------------------------------------------------

const ownerFrom = (ext: Record<string, string>): Owner => {
  const o = ownerOf(ext);
  if (!o) throw new Error(`desired row has no kovn owner in external_ids: ${JSON.stringify(ext)}`);
  return o;
};

const switchPortRow = (p: DesiredSwitchPort, sw: string, createGuard: readonly Operation[] = []): DesiredRow<'Logical_Switch_Port'> => desired('Logical_Switch_Port', p.name, {
  type: p.type, addresses: p.addresses, port_security: p.port_security, options: p.options, external_ids: p.external_ids,
}, { parent: { table: 'Logical_Switch', name: sw, column: 'ports' }, ...(createGuard.length ? { createGuard } : {}) });

/** other_config keys of a node switch: a key a node no longer has (a family dropped) is removed. */
const SUBNET_KEYS = ['subnet', 'exclude_ips', 'ipv6_prefix'];

/** A switch linked to the cluster router: the switch, its router-type port and the router's port. */
function attachmentRows(att: SwitchAttachment, createGuard: readonly Operation[] = []): AnyDesiredRow[] {
  return [
    desired('Logical_Switch', att.sw.name, { other_config: att.sw.other_config, external_ids: att.sw.external_ids }, { clear: { other_config: SUBNET_KEYS }, createGuard }),
    switchPortRow(att.switchPort, att.sw.name),
    desired('Logical_Router_Port', att.routerPort.name, { mac: att.routerPort.mac, networks: att.routerPort.networks, external_ids: att.routerPort.external_ids },
      { parent: { table: 'Logical_Router', name: CLUSTER_ROUTER, column: 'ports' } }),
  ];
}

/**
 * The cluster router and the join switch. Only ports are pruned: the cluster's ports renamed since
 * (`rtos-join`/`stor-join` became `rtoj-`/`jtor-ovn_cluster_router`) go in the transaction that adds
 * their successors.
 */
export async function ensureClusterTopology(nb: NbClient, topo: { router: { name: string; external_ids: Record<string, string> }; join: SwitchAttachment }): Promise<Change[]> {
  const owner = ownerFrom(topo.router.external_ids);
  // The meter every ACL log line goes through (20 lines a second, as OVN-Kubernetes sets it).
  const meter = [
    desired('Meter', ACL_LOGGING_METER, { unit: 'pktps', fair: true, external_ids: ownedBy(owner, `meter:${ACL_LOGGING_METER}`) }),
    desired('Meter_Band', `meter:${ACL_LOGGING_METER}:drop`, { action: 'drop', rate: 20, external_ids: ownedBy(owner, `meter:${ACL_LOGGING_METER}:drop`) },
      { parent: { table: 'Meter', name: ACL_LOGGING_METER, column: 'bands' } }),
  ];
  const rows = [desired('Logical_Router', topo.router.name, { external_ids: topo.router.external_ids }), ...attachmentRows(topo.join), ...meter];
  const changes = await ensureLbGroup(nb, CLUSTER_LB_GROUP);
  return [...changes, ...(await syncOwned(nb, owner, rows, {
    prune: true, tables: ['Logical_Switch_Port', 'Logical_Router_Port'], comment: 'kovn: cluster topology',
  }))];
}

/**
 * A load balancer group, created once by name (the table has no external_ids: kovn knows its groups by
 * their OVN-Kubernetes names). Two controllers creating it at once: the second one's wait fails, and
 * the group is there.
 */
export async function ensureLbGroup(nb: NbClient, name: string): Promise<Change[]> {
  if (nb.cache.table('Load_Balancer_Group').byIndex({ name })) return [];
  try {
    await nb.transact([
      ops.comment(`kovn: load balancer group ${name}`),
      ops.wait('Load_Balancer_Group', [['name', '==', name]], { until: '==', rows: [], columns: ['name'], timeout: 0 }),
      ops.insert('Load_Balancer_Group', { name }),
    ]);
  } catch (err) {
    if ((err as { name?: unknown }).name !== 'OvsdbTimedOutError') throw err;
    return [];
  }
  return [{ db: 'nb', table: 'Load_Balancer_Group', row: name, op: 'insert' }];
}

/** A Service's load balancers, in one transaction; its other load balancers (a port or node gone) are pruned. */
export async function ensureServiceLoadBalancers(nb: NbClient, owner: Owner, rows: readonly AnyDesiredRow[]): Promise<Change[]> {
  return syncOwned(nb, owner, rows, { prune: true, tables: ['Load_Balancer'], comment: `kovn: Service ${owner.name}` });
}

/** A node's switch, its router link and its management port (its rows from before the gateway). */
function nodeTopologyRows(att: SwitchAttachment & { mgmt: DesiredSwitchPort }, guard: readonly Operation[] = []): AnyDesiredRow[] {
  const mgmtIps = (att.mgmt.addresses[0] ?? '').split(' ').slice(1);
  return [...attachmentRows(att, guard), switchPortRow(att.mgmt, att.sw.name), nodeAllowAcl(att.sw.name, mgmtIps)];
}

/**
 * A node's switch, its router link and its management port; `guard` protects a new subnet claim.
 * Nothing is pruned here: the node's whole desired state, gateway included, is synced by ensureNodeGateway.
 */
export async function ensureNodeTopology(nb: NbClient, node: string, att: SwitchAttachment & { mgmt: DesiredSwitchPort }, guard: Operation[]): Promise<Change[]> {
  if (rowsNamed(nb, 'Logical_Router', CLUSTER_ROUTER).length === 0) throw new Error(`${CLUSTER_ROUTER} does not exist yet`);
  return syncOwned(nb, ownerFrom(att.sw.external_ids), nodeTopologyRows(att, guard), { comment: `kovn: Node ${node}` });
}

/**
 * Every row of a node, in one transaction: its topology and its gateway; whatever else the node owns
 * is pruned (old names, a family dropped). `guard` protects a new node id claim.
 */
export async function ensureNodeGateway(nb: NbClient, node: string, att: SwitchAttachment & { mgmt: DesiredSwitchPort }, gateway: readonly AnyDesiredRow[], guard: Operation[]): Promise<Change[]> {
  // The node's switch and gateway router carry the cluster's load balancer group: every Service's
  // cluster-wide load balancer reaches a new node without being rewritten.
  const group = nb.cache.table('Load_Balancer_Group').byIndex({ name: CLUSTER_LB_GROUP });
  if (!group) throw new Error(`load balancer group ${CLUSTER_LB_GROUP} does not exist yet`);
  const withGroup = (r: AnyDesiredRow): AnyDesiredRow =>
    (r.table === 'Logical_Switch' && r.name === node) || (r.table === 'Logical_Router' && r.name === gatewayRouter(node))
      ? { ...r, columns: { ...r.columns, load_balancer_group: [group._uuid] } } : r;
  const rows = [...nodeTopologyRows(att), ...gateway.map((r) => (r.table === 'Logical_Router' && guard.length ? { ...r, createGuard: guard } : r))].map(withGroup);
  return syncOwned(nb, ownerFrom(att.sw.external_ids), rows, { prune: true, comment: `kovn: Node ${node} gateway` });
}

/** Wait guard: no router holds this node id (an atomic id claim, like a subnet's). */
export function noRouterWithNodeId(key: string, id: number): Operation {
  return ops.wait('Logical_Router', [['external_ids', 'includes', { [key]: String(id) }]], { until: '==', rows: [], columns: ['name'], timeout: 0 });
}

/** Node ids held by gateway routers (any router carrying the key), by router name. */
export function routerNodeIds(nb: NbClient, key: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of nb.cache.table('Logical_Router').all()) {
    const v = r.external_ids[key];
    if (v !== undefined && /^\d+$/.test(v)) out.set(r.name, Number(v));
  }
  return out;
}

/**
 * Static MAC bindings on a router port: exactly `want` (by ip), in one transaction. The table has no
 * external_ids: a binding belongs to whoever owns its port, and goes with it (`want` empty).
 */
export async function syncMacBindings(nb: NbClient, port: string, want: readonly { ip: string; mac: string }[]): Promise<Change[]> {
  const have = nb.cache.table('Static_MAC_Binding').all().filter((b) => b.logical_port === port);
  const txn: Operation[] = [ops.comment(`kovn: MAC bindings of ${port}`)];
  const changes: Change[] = [];
  for (const w of want) {
    const cur = have.find((b) => b.ip === w.ip);
    if (!cur) {
      // A binding that appeared meanwhile (a stale cache) fails the transaction; the retry sees it.
      txn.push(ops.wait('Static_MAC_Binding', [['logical_port', '==', port], ['ip', '==', w.ip]], { until: '==', rows: [], columns: ['ip'], timeout: 0 }));
      txn.push(ops.insert('Static_MAC_Binding', { logical_port: port, ip: w.ip, mac: w.mac, override_dynamic_mac: true }));
      changes.push({ db: 'nb', table: 'Static_MAC_Binding', row: `${port} ${w.ip}`, op: 'insert' });
    } else if (cur.mac !== w.mac || !cur.override_dynamic_mac) {
      txn.push(ops.update('Static_MAC_Binding', [['_uuid', '==', cur._uuid]], { mac: w.mac, override_dynamic_mac: true }));
      changes.push({ db: 'nb', table: 'Static_MAC_Binding', row: `${port} ${w.ip}`, op: 'update' });
    }
  }
  for (const cur of have.filter((b) => !want.some((w) => w.ip === b.ip))) {
    txn.push(ops.delete('Static_MAC_Binding', [['_uuid', '==', cur._uuid]]));
    changes.push({ db: 'nb', table: 'Static_MAC_Binding', row: `${port} ${cur.ip}`, op: 'delete' });
  }
  if (changes.length > 0) await nb.transact(txn);
  return changes;
}

/** Wait guard: no switch holds this subnet in other_config (an atomic subnet claim). */
export function noSwitchWithSubnet(key: 'subnet' | 'ipv6_prefix', value: string): Operation {
  return ops.wait('Logical_Switch', [['other_config', 'includes', { [key]: value }]], { until: '==', rows: [], columns: ['name'], timeout: 0 });
}

/**
 * Subnets held by switches (v4 `subnet`, v6 `ipv6_prefix`), by switch name. A scan of every switch on
 * purpose: subnet allocation must see the subnets of all nodes (and of switches kovn does not own).
 */
export function switchSubnets(nb: NbClient): Map<string, { subnet?: string; ipv6Prefix?: string }> {
  return new Map((nb.cache.table('Logical_Switch').all()).map((s) => [s.name, { subnet: s.other_config.subnet, ipv6Prefix: s.other_config.ipv6_prefix }]));
}

/**
 * A pod's logical switch port on its node's switch (moved there from another switch if need be). Created
 * only while no other port holds its addresses (a wait in the same transaction): one address, one port.
 */
export async function ensurePodPort(nb: NbClient, node: string, port: DesiredSwitchPort, portGroups: readonly string[] = []): Promise<Change[]> {
  if (rowsNamed(nb, 'Logical_Switch', node).length === 0) throw new Error(`switch of node ${node} does not exist yet`);
  const unique = port.addresses.map((a) => ops.wait('Logical_Switch_Port', [['addresses', 'includes', [a]], ['name', '!=', port.name]], { until: '==', rows: [], columns: ['name'], timeout: 0 }));
  const row = { ...switchPortRow(port, node, unique), joins: portGroups.map((name) => ({ table: 'Port_Group' as const, name, column: 'ports' as const })) };
  return syncOwned(nb, ownerFrom(port.external_ids), [row], { prune: true, comment: `kovn: Pod port ${port.name}` });
}

/** Deletes every row kovn owns for an owner: ports detached from their switch/router, switches deleted. */
export async function deleteOwned(nb: NbClient, owner: Owner, pruneIf?: SyncOptions['pruneIf']): Promise<Change[]> {
  return syncOwned(nb, owner, [], { prune: true, comment: `kovn: delete ${owner.type} ${owner.name}`, ...(pruneIf ? { pruneIf } : {}) });
}

/** Pod ports kovn owns, with their owner key ("ns/name"), for startup sync. */
export function ownedPodPorts(nb: NbClient): { name: string; owner: string; uid?: string; node?: string }[] {
  return nb.cache.table('Logical_Switch_Port').byExternalId(OWNER_TYPE, 'Pod')
    .filter((p) => isKovnOwned(p.external_ids))
    .map((p) => ({ name: p.name, owner: p.external_ids[OWNER_NAME] ?? '', uid: p.options['iface-id-ver'], node: p.options['requested-chassis'] }));
}

/** The node's subnets held by its switch in NB (v4 `subnet`, v6 `ipv6_prefix` with the configured host prefix). */
export function nodeSubnetsInNb(nb: NbClient, cfg: ClusterConfig, node: string): string[] | undefined {
  const s = switchSubnets(nb).get(node);
  return s ? subnetsOf(s, cfg) : undefined;
}

function subnetsOf(s: { subnet?: string; ipv6Prefix?: string }, cfg: ClusterConfig): string[] {
  const v6 = s.ipv6Prefix ? cfg.clusterNetworks.find((n) => n.cidr.includes(':')) : undefined;
  return [...(s.subnet ? [s.subnet] : []), ...(s.ipv6Prefix && v6 ? [`${s.ipv6Prefix}/${v6.hostPrefix}`] : [])];
}


/** The addresses the ports of a node's switch hold ("mac ip..." entries; `dynamic`/`router` skipped), with each port's pod. */
export function switchPortAddresses(nb: NbClient, node: string): { name: string; uid?: string; pod?: string; ips: string[] }[] {
  const sw = rowsNamed(nb, 'Logical_Switch', node)[0] as { ports?: string[] } | undefined;
  const ports = nb.cache.table('Logical_Switch_Port');
  return (sw?.ports ?? []).flatMap((uuid) => {
    const p = ports.get(uuid);
    if (!p) return [];
    const ips = p.addresses.flatMap((a) => a.split(' ').slice(1)).filter((x) => x.includes('.') || x.includes(':'));
    return [{ name: p.name, uid: p.options['iface-id-ver'], pod: p.external_ids[OWNER_TYPE] === 'Pod' ? p.external_ids[OWNER_NAME] : undefined, ips }];
  });
}

/** What the cluster routes a Service's endpoints to: its networks and the pod subnets every node's switch holds. */
export function serviceReach(nb: NbClient, cfg: ClusterConfig): Reach {
  const nodeSubnets = new Map([...switchSubnets(nb)].flatMap(([n, sw]) => {
    const s = subnetsOf(sw, cfg);
    return s.length ? [[n, s] as const] : [];
  }));
  return { serviceNetworks: cfg.serviceNetworks, joinSubnets: cfg.joinSubnets, clusterNetworks: cfg.clusterNetworks.map((c) => c.cidr), nodeSubnets };
}

/** The nodes whose gateway routers exist, with the IPs a NodePort answers on (the router's physical_ips). */
export function gatewayNodes(nb: NbClient): { name: string; ips: string[] }[] {
  return nb.cache.table('Logical_Router').all()
    .filter((r) => isKovnOwned(r.external_ids) && r.external_ids[OWNER_TYPE] === 'Node' && r.name === gatewayRouter(r.external_ids[OWNER_NAME] ?? ''))
    .map((r) => ({ name: r.external_ids[OWNER_NAME] ?? '', ips: (r.external_ids.physical_ips ?? '').split(',').filter(Boolean) }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The Services that own load balancers in NB (`<ns>/<name>`). */
export function serviceOwners(nb: NbClient): string[] {
  return [...new Set(nb.cache.table('Load_Balancer').all().flatMap((lb) => {
    const o = ownerOf(lb.external_ids);
    return o?.type === 'Service' ? [o.name] : [];
  }))];
}

/** A Service's load balancers in the cache, by name. */
export function serviceLoadBalancersInNb(nb: NbClient, key: string): { name: string; protocol: string | undefined; vips: Record<string, string>; options: Record<string, string> }[] {
  return nb.cache.table('Load_Balancer').byExternalId(OWNER_NAME, key).filter((lb) => ownerOf(lb.external_ids)?.type === 'Service')
    .map((lb) => ({ name: lb.name, protocol: lb.protocol, vips: lb.vips, options: lb.options }));
}

/** Every pod's logical switch port, by pod key (`ns/name`): its uuid, its incarnation and its addresses. */
export function podPortsByKey(nb: NbClient): Map<string, { uuid: string; uid?: string; ips: string[] }> {
  return new Map(nb.cache.table('Logical_Switch_Port').byExternalId(OWNER_TYPE, 'Pod').filter((p) => isKovnOwned(p.external_ids)).map((p) => [
    p.external_ids[OWNER_NAME] ?? '',
    { uuid: p._uuid, uid: p.options['iface-id-ver'], ips: (p.addresses[0] ?? '').split(' ').slice(1) },
  ]));
}

/** The kovn owners of a kind (`NetworkPolicy`, `Namespace`) of port groups, ACLs or address sets. */
export function policyOwners(nb: NbClient, type: 'NetworkPolicy' | 'Namespace'): string[] {
  return [...new Set((['Port_Group', 'ACL', 'Address_Set'] as const).flatMap((t) => nb.cache.table(t).byExternalId(OWNER_TYPE, type)
    .flatMap((r) => (ownerOf(r.external_ids)?.type === type ? [ownerOf(r.external_ids)?.name ?? ''] : []))))];
}

/** The owners of the port groups holding a port and of the address sets holding an address. */
export function policiesHolding(nb: NbClient, portUuid: string | undefined, ips: readonly string[]): string[] {
  const pgs = portUuid ? nb.cache.table('Port_Group').byColumn('ports', portUuid) : [];
  const sets = ips.flatMap((ip) => nb.cache.table('Address_Set').byColumn('addresses', ip));
  return [...new Set([...pgs, ...sets].flatMap((r) => {
    const o = ownerOf(r.external_ids);
    return o?.type === 'NetworkPolicy' ? [o.name] : [];
  }))];
}

/** Whether NB already holds exactly `rows` for `owner` (nothing to write): the watchers' in-sync check. */
export function ownedInSync(nb: NbClient, owner: Owner, rows: readonly AnyDesiredRow[], tables: readonly NamedTable[]): boolean {
  try {
    return planSync(nb, owner, rows, { prune: true, tables }).changes.length === 0;
  } catch {
    return false; // a parent missing, a foreign row: its run says what
  }
}
