// Compares a client's cache with `ovsdb-client dump`: both normalised to typed rows with sorted sets.
import type { OvsdbClient } from '../client.ts';
import { decodeRow } from '../encode.ts';
import type { OvsdbServer } from './ovsdb-server.ts';

type Row = Record<string, unknown>;

/** Sorted, undefined-free copy of a typed row restricted to `columns` (+ _uuid). */
export function normalise(row: Row, columns?: readonly string[]): Row {
  const out: Row = {};
  for (const k of Object.keys(row).sort()) {
    if (columns && k !== '_uuid' && !columns.includes(k)) continue;
    const v = row[k];
    if (v === undefined || k === '_version') continue;
    out[k] = Array.isArray(v) ? [...(v as unknown[])].sort() : v;
  }
  return out;
}

/** Table -> uuid -> normalised row, from the server's dump decoded with the client's schema. */
export async function dumpTables(srv: OvsdbServer, client: OvsdbClient, tables: readonly string[], columns?: ReadonlyMap<string, readonly string[]>): Promise<Record<string, Record<string, Row>>> {
  const dump = await srv.dump(client.schema.name);
  const out: Record<string, Record<string, Row>> = {};
  for (const t of tables) {
    const schema = client.schema.tables.get(t)!;
    out[t] = {};
    for (const wire of dump.get(t) ?? []) {
      const uuid = (wire._uuid as [string, string])[1];
      out[t][uuid] = normalise(decodeRow(schema, wire, uuid), columns?.get(t));
    }
  }
  return out;
}

/** The same shape from a client's cache. */
export function cacheTables(client: OvsdbClient, tables: readonly string[], columns?: ReadonlyMap<string, readonly string[]>): Record<string, Record<string, Row>> {
  const out: Record<string, Record<string, Row>> = {};
  for (const t of tables) {
    out[t] = {};
    for (const r of client.cache.table(t).all()) out[t][(r as { _uuid: string })._uuid] = normalise(r as Row, columns?.get(t));
  }
  return out;
}
