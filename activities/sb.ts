/**
 * The Southbound rows kovn removes: the chassis of a deleted node (ovn-controller registers it, but a
 * node that vanished never deregisters, and a stale chassis keeps tunnels to nowhere).
 */
import { OvsdbClient, opsFor } from '../ovsdb/index.ts';
import { ovnSouthboundModel } from '../ovsdb/models/ovn-sb.ts';
import type { OvnSouthboundTables } from '../ovsdb/models/ovn-sb.ts';
import type { Change } from '../lib/change.ts';

export type SbClient = OvsdbClient<OvnSouthboundTables>;
const ops = opsFor<OvnSouthboundTables>();

export async function connectSb(endpoints: readonly string[]): Promise<SbClient> {
  const sb = await OvsdbClient.connect({ endpoints, database: 'OVN_Southbound', model: ovnSouthboundModel, leaderOnly: true });
  await sb.monitor({ Chassis: { columns: ['name', 'hostname'] }, Chassis_Private: { columns: ['name'] } });
  return sb;
}

/** Deletes the chassis (its encaps go with it) and its private row of a node, matched by name or hostname. */
export async function deleteNodeChassis(sb: SbClient, node: string): Promise<Change[]> {
  const chassis = sb.cache.table('Chassis').all().filter((c) => c.name === node || c.hostname === node);
  if (chassis.length === 0) return [];
  const names = new Set(chassis.map((c) => c.name));
  const priv = sb.cache.table('Chassis_Private').all().filter((p) => names.has(p.name));
  await sb.transact([
    ops.comment(`kovn: delete Node ${node}'s chassis`),
    ...chassis.map((c) => ops.delete('Chassis', [['_uuid', '==', c._uuid]])),
    ...priv.map((p) => ops.delete('Chassis_Private', [['_uuid', '==', p._uuid]])),
  ]);
  return chassis.map((c) => ({ db: 'sb' as const, table: 'Chassis', row: c.name, op: 'delete' as const }));
}
