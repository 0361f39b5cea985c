// A generated database model: row types for the compiler, the .ovsschema tables for runtime checks.
import { parseSchema } from './schema.ts';
import type { ColumnSchema, DatabaseSchema } from './schema.ts';

/** Table name -> row type. */
export type TableMap = { [table: string]: object };

/** What `ovsdb/gen/generate.ts` emits per database. `T` is phantom: it only carries the row types. */
export interface DatabaseModel<T extends TableMap = TableMap> {
  readonly name: string;
  readonly version: string;
  /** The .ovsschema JSON the model was generated from. */
  readonly schema: unknown;
  /** Never set at runtime; carries the row types. */
  readonly rowTypes?: T;
}

/** Row type of a model's table. */
export type RowOf<M extends TableMap, T extends keyof M> = M[T];

const parsed = new WeakMap<object, DatabaseSchema>();

/** The parsed schema of a model (parsed once). */
export function modelSchema(model: DatabaseModel): DatabaseSchema {
  let s = parsed.get(model);
  if (!s) {
    s = parseSchema(model.schema);
    parsed.set(model, s);
  }
  return s;
}

/**
 * What in the server's schema is incompatible with the model: a table or column the model expects is
 * absent, or a column changed shape. Extra tables/columns on the server and new enum values are fine.
 */
export function modelProblems(model: DatabaseSchema, server: DatabaseSchema): string[] {
  const problems: string[] = [];
  if (model.name !== server.name) problems.push(`database is ${server.name}, the model is for ${model.name}`);
  for (const [tname, table] of model.tables) {
    const st = server.tables.get(tname);
    if (!st) {
      problems.push(`table ${tname} is absent on the server`);
      continue;
    }
    for (const [cname, col] of table.columns) {
      const sc = st.columns.get(cname);
      if (!sc) problems.push(`table ${tname}: column ${cname} is absent on the server`);
      else if (shape(col) !== shape(sc)) problems.push(`table ${tname}: column ${cname} is ${shape(sc)} on the server, ${shape(col)} in the model`);
    }
  }
  return problems;
}

function shape(c: ColumnSchema): string {
  return `${c.kind}<${c.key.type}${c.value ? `,${c.value.type}` : ''}>`;
}
