/**
 * The node's Open_vSwitch database, through kovn's OVSDB client: ports on br-int with their OVN
 * interface ids, and the wait for ovn-controller's `ovn-installed` mark.
 */
import { filter, firstValueFrom, timeout } from 'rxjs';
import { OvsdbClient, opsFor } from '../ovsdb/index.ts';
import { openVSwitchModel } from '../ovsdb/models/vswitch.ts';
import type { Interface, OpenVSwitchTables } from '../ovsdb/models/vswitch.ts';
import type { Change } from '../lib/change.ts';

export type OvsClient = OvsdbClient<OpenVSwitchTables>;
const ops = opsFor<OpenVSwitchTables>();
export const INTEGRATION_BRIDGE = 'br-int';
export const SANDBOX_KEY = 'k8s.ovn.org/sandbox';
export const POD_KEY = 'k8s.ovn.org/pod';

export async function connectOvs(sock: string): Promise<OvsClient> {
  const ovs = await OvsdbClient.connect({ endpoints: [`unix:${sock}`], database: 'Open_vSwitch', model: openVSwitchModel });
  await ovs.monitor({
    Open_vSwitch: { columns: ['external_ids', 'bridges'] },
    Bridge: { columns: ['name', 'ports'] },
    Port: { columns: ['name', 'interfaces'] },
    Interface: { columns: ['name', 'type', 'external_ids', 'ofport', 'error'], externalIdIndexes: ['iface-id'] },
  });
  return ovs;
}

export function systemId(ovs: OvsClient): string | undefined {
  return ovs.cache.table('Open_vSwitch').all()[0]?.external_ids['system-id'];
}

const ifaceByName = (ovs: OvsClient, name: string): Interface | undefined => ovs.cache.table('Interface').all().find((i) => i.name === name);

/** Ensures a port+interface on br-int with the given type and external_ids (updated in place if present). */
export async function ensurePort(ovs: OvsClient, name: string, type: string, externalIds: Record<string, string>): Promise<Change[]> {
  const cur = ifaceByName(ovs, name);
  if (cur) {
    const same = cur.type === type && Object.entries(externalIds).every(([k, v]) => cur.external_ids[k] === v);
    if (same) return [];
    await ovs.transact([ops.update('Interface', [['_uuid', '==', cur._uuid]], { type, external_ids: { ...cur.external_ids, ...externalIds } })]);
    return [{ db: 'ovs', table: 'Interface', row: name, op: 'update' }];
  }
  const br = ovs.cache.table('Bridge').all().find((b) => b.name === INTEGRATION_BRIDGE);
  if (!br) throw new Error(`bridge ${INTEGRATION_BRIDGE} does not exist`);
  await ovs.transact([
    ops.comment(`kovn: port ${name}`),
    ops.wait('Port', [['name', '==', name]], { until: '==', rows: [], columns: ['name'], timeout: 0 }),
    ops.insert('Interface', { name, type, external_ids: externalIds }, 'iface'),
    ops.insert('Port', { name, interfaces: ['iface'] }, 'port'),
    ops.mutate('Bridge', [['_uuid', '==', br._uuid]], [['ports', 'insert', ['port']]]),
  ]);
  return [{ db: 'ovs', table: 'Port', row: name, op: 'insert' }];
}

/** Removes a port from br-int (and with it its interface); nothing when it is not there. */
export async function deletePort(ovs: OvsClient, name: string): Promise<Change[]> {
  const port = ovs.cache.table('Port').all().find((p) => p.name === name);
  if (!port) return [];
  const brs = ovs.cache.table('Bridge').all().filter((b) => b.ports.includes(port._uuid));
  await ovs.transact(brs.map((b) => ops.mutate('Bridge', [['_uuid', '==', b._uuid]], [['ports', 'delete', [port._uuid]]])));
  return [{ db: 'ovs', table: 'Port', row: name, op: 'delete' }];
}

/** A pod's port on br-int as kovn's plug wrote it. */
export interface PodPort {
  /** Port and interface name (the host end of the veth). */
  name: string;
  ifaceId: string;
  sandbox: string;
  /** The pod's UID (`iface-id-ver`) and `<namespace>/<name>`. */
  uid: string;
  pod: string;
}

/** Pod ports kovn plugged on br-int (they carry kovn's sandbox key; the management port does not). */
export function podPorts(ovs: OvsClient): PodPort[] {
  return ovs.cache.table('Interface').all()
    .filter((i) => i.external_ids['iface-id'] !== undefined && i.external_ids[SANDBOX_KEY] !== undefined)
    .map((i) => ({ name: i.name, ifaceId: i.external_ids['iface-id'] ?? '', sandbox: i.external_ids[SANDBOX_KEY] ?? '',
      uid: i.external_ids['iface-id-ver'] ?? '', pod: i.external_ids[POD_KEY] ?? '' }));
}

/**
 * Resolves once ovn-controller has installed the flows of the interface (it sets
 * external_ids:ovn-installed=true), so the pod's first packet is not dropped.
 */
export async function waitOvnInstalled(ovs: OvsClient, name: string, timeoutMs: number): Promise<void> {
  if (ifaceByName(ovs, name)?.external_ids['ovn-installed'] === 'true') return;
  await firstValueFrom(ovs.events$.pipe(
    filter((e) => e.table === 'Interface' && (e.new as Partial<Interface> | undefined)?.name === name &&
      (e.new as Partial<Interface> | undefined)?.external_ids?.['ovn-installed'] === 'true'),
    timeout({ first: timeoutMs, with: () => { throw new Error(`interface ${name}: ovn-installed not set after ${timeoutMs} ms (is the logical port bound to this chassis?)`); } }),
  ));
}

/** What makes this node an OVN chassis: its id, its GENEVE endpoint, where the Southbound DB is. */
export interface ChassisConfig {
  systemId: string;
  encapIp: string;
  sbRemote: string;
  /** ovn-bridge-mappings ("physnet:breth0"): where ovn-controller patches localnet ports. */
  bridgeMappings?: string;
}

/** Sets the chassis keys in Open_vSwitch external_ids where they differ (ovn-controller reads them). */
export async function ensureChassis(ovs: OvsClient, c: ChassisConfig): Promise<Change[]> {
  const row = ovs.cache.table('Open_vSwitch').all()[0];
  if (!row) throw new Error('the Open_vSwitch table has no row yet');
  const want: Record<string, string> = {
    'system-id': row.external_ids['system-id'] ?? c.systemId, // an existing chassis keeps its identity
    'ovn-encap-type': 'geneve', 'ovn-encap-ip': c.encapIp, 'ovn-remote': c.sbRemote,
    'ovn-bridge': INTEGRATION_BRIDGE, 'ovn-bridge-datapath-type': 'netdev',
    ...(c.bridgeMappings ? { 'ovn-bridge-mappings': c.bridgeMappings } : {}),
  };
  const differs = Object.entries(want).filter(([k, v]) => row.external_ids[k] !== v);
  if (differs.length === 0) return [];
  await ovs.transact([ops.update('Open_vSwitch', [['_uuid', '==', row._uuid]], { external_ids: { ...row.external_ids, ...want } })]);
  return [{ db: 'ovs', table: 'Open_vSwitch', row: differs.map(([k]) => k).join(','), op: 'update' }];
}
