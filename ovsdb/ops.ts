// Transaction operations, built apart from executing them (libovsdb style): the builder returns plain
// typed descriptions; the client encodes them against the schema when it sends the transaction.
import type { TableMap } from './model.ts';

export type ConditionFunction = '==' | '!=' | '<' | '<=' | '>' | '>=' | 'includes' | 'excludes';
export type Mutator = '+=' | '-=' | '*=' | '/=' | '%=' | 'insert' | 'delete';

type Cols<R> = keyof R & string;
type Elem<V> = V extends readonly (infer E)[] ? E : V;

/** A where clause: [column, function, value], value typed like the column. */
export type Condition<R> =
  | { [K in Cols<R>]-?: readonly [K, ConditionFunction, R[K]] }[Cols<R>]
  | readonly ['_uuid', '==' | '!=', string];

/**
 * A mutation: [column, mutator, value]. insert/delete take a value of the column's type (a map's
 * delete may also take a list of keys); arithmetic mutators take one element.
 */
export type Mutation<R> = {
  [K in Cols<R>]-?: readonly [K, Mutator, R[K] | Elem<R[K]> | (R[K] extends Record<string, unknown> ? string[] : never)];
}[Cols<R>];

export interface InsertOp { readonly op: 'insert'; readonly table: string; readonly row: object; readonly uuidName?: string }
export interface UpdateOp { readonly op: 'update'; readonly table: string; readonly where: readonly unknown[]; readonly row: object }
export interface MutateOp { readonly op: 'mutate'; readonly table: string; readonly where: readonly unknown[]; readonly mutations: readonly unknown[] }
export interface DeleteOp { readonly op: 'delete'; readonly table: string; readonly where: readonly unknown[] }
export interface SelectOp { readonly op: 'select'; readonly table: string; readonly where: readonly unknown[]; readonly columns?: readonly string[] }
export interface WaitOp {
  readonly op: 'wait';
  readonly table: string;
  readonly where: readonly unknown[];
  readonly columns: readonly string[];
  readonly until: '==' | '!=';
  readonly rows: readonly object[];
  readonly timeout?: number;
}
export interface CommentOp { readonly op: 'comment'; readonly comment: string }
export interface AssertOp { readonly op: 'assert'; readonly lock: string }

/** One operation of a transaction (typed values; encoded at transact time). */
export type Operation = InsertOp | UpdateOp | MutateOp | DeleteOp | SelectOp | WaitOp | CommentOp | AssertOp;

/** Options of a wait operation (RFC 7047 5.2.6). */
export interface WaitOptions<R> {
  /** Columns compared; defaults to the keys of the first expected row (or none). */
  readonly columns?: readonly Cols<R>[];
  /** '==': wait until the selected rows equal `rows`; '!=': until they differ. */
  readonly until: '==' | '!=';
  readonly rows: readonly Partial<R>[];
  /** Milliseconds; 0 fails at once ("timed out") if the condition does not hold. */
  readonly timeout?: number;
}

/**
 * Typed builder of operations for one database model, e.g. `const nb = opsFor<NorthboundTables>()`.
 * Each method returns an Operation; collect them and pass the list to `client.transact`.
 */
export class OpsBuilder<M extends TableMap> {
  /** Inserts a row; `uuidName` names it so other ops of the same transaction can reference it. */
  insert<T extends Cols<M>>(table: T, row: Partial<M[T]>, uuidName?: string): InsertOp {
    return uuidName === undefined ? { op: 'insert', table, row } : { op: 'insert', table, row, uuidName };
  }

  /** Sets columns of every row matching `where`. */
  update<T extends Cols<M>>(table: T, where: readonly Condition<M[T]>[], row: Partial<M[T]>): UpdateOp {
    return { op: 'update', table, where, row };
  }

  mutate<T extends Cols<M>>(table: T, where: readonly Condition<M[T]>[], mutations: readonly Mutation<M[T]>[]): MutateOp {
    return { op: 'mutate', table, where, mutations };
  }

  delete<T extends Cols<M>>(table: T, where: readonly Condition<M[T]>[]): DeleteOp {
    return { op: 'delete', table, where };
  }

  select<T extends Cols<M>>(table: T, where: readonly Condition<M[T]>[], columns?: readonly Cols<M[T]>[]): SelectOp {
    return columns === undefined ? { op: 'select', table, where } : { op: 'select', table, where, columns };
  }

  /** Guards a transaction, e.g. "no row named X yet": `wait(t, [['name','==',x]], {until:'==', rows:[], timeout:0})`. */
  wait<T extends Cols<M>>(table: T, where: readonly Condition<M[T]>[], opts: WaitOptions<M[T]>): WaitOp {
    const columns = opts.columns ?? (opts.rows[0] ? Object.keys(opts.rows[0]) : []);
    const op: WaitOp = { op: 'wait', table, where, columns, until: opts.until, rows: opts.rows };
    return opts.timeout === undefined ? op : { ...op, timeout: opts.timeout };
  }

  comment(comment: string): CommentOp {
    return { op: 'comment', comment };
  }

  /** Fails the transaction unless this client holds `lock`. */
  assert(lock: string): AssertOp {
    return { op: 'assert', lock };
  }
}

/** A builder typed by a model's table map. */
export function opsFor<M extends TableMap>(): OpsBuilder<M> {
  return new OpsBuilder<M>();
}

/** The result of one operation, decoded. */
export interface OperationResult {
  /** insert: the new row's UUID. */
  readonly uuid?: string;
  /** update/mutate/delete: rows affected. */
  readonly count?: number;
  /** select: the rows, typed. */
  readonly rows?: readonly Record<string, unknown>[];
}
