/**
 * kovn's writes to the OVN Northbound database. Desired rows come from the pure translation functions;
 * here they are diffed against the client's cache and applied in one transaction per object change,
 * creates guarded by `wait` operations, every row stamped with its owner. Each function returns what it
 * changed, for the run's history.
 */
import { OvsdbClient, opsFor } from '../ovsdb/index.ts';
import type { Operation } from '../ovsdb/index.ts';
import { ovnNorthboundModel } from '../ovsdb/models/ovn-nb.ts';
import type { OvnNorthboundTables } from '../ovsdb/models/ovn-nb.ts';
import { OWNER_NAME, OWNER_TYPE, ROW_ID, isKovnOwned } from './translate/ownership.ts';
import { InvalidInputError } from '../lib/errors.ts';
import type { Owner } from './translate/ownership.ts';
import type { DesiredRouterPort, DesiredSwitch, DesiredSwitchPort, SwitchAttachment } from './translate/topology.ts';
import { CLUSTER_ROUTER } from './translate/topology.ts';

export type NbClient = OvsdbClient<OvnNorthboundTables>;

import type { Change } from '../lib/change.ts';

export type { Change };

const ops = opsFor<OvnNorthboundTables>();

/** Connects to the Northbound DB and replicates the tables kovn reconciles, indexed by owner and id. */
export async function connectNb(endpoints: readonly string[]): Promise<NbClient> {
  const nb = await OvsdbClient.connect({ endpoints, database: 'OVN_Northbound', model: ovnNorthboundModel, leaderOnly: true });
  const owned = { externalIdIndexes: [ROW_ID, OWNER_NAME] };
  await nb.monitor({
    Logical_Switch: { ...owned, columns: ['name', 'other_config', 'external_ids', 'ports'] },
    Logical_Switch_Port: { ...owned, columns: ['name', 'type', 'addresses', 'port_security', 'options', 'external_ids', 'up'] },
    Logical_Router: { ...owned, columns: ['name', 'external_ids', 'ports'] },
    Logical_Router_Port: { ...owned, columns: ['name', 'mac', 'networks', 'external_ids'] },
  });
  return nb;
}

const sameMap = (a: Record<string, string>, b: Record<string, string>): boolean =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([k, v]) => b[k] === v);
const sameList = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && [...a].sort().every((v, i) => v === [...b].sort()[i]);

/** A transaction under construction, with the changes it will make. */
class Txn {
  readonly nb: NbClient;
  readonly ops: Operation[] = [];
  readonly changes: Change[] = [];
  #n = 0;
  constructor(nb: NbClient, comment: string) {
    this.nb = nb;
    this.ops.push(ops.comment(comment));
  }
  name(prefix: string): string {
    return `${prefix}${this.#n++}`;
  }
  change(table: string, row: string, op: Change['op']): void {
    this.changes.push({ db: 'nb', table, row, op });
  }
  async commit(): Promise<Change[]> {
    if (this.changes.length === 0) return [];
    await this.nb.transact(this.ops);
    return this.changes;
  }
}

const byName = <R extends { name: string }>(rows: R[], name: string): R | undefined => rows.find((r) => r.name === name);

/**
 * Where a new port goes: an existing parent row (by uuid), or a list of named-uuids that the parent
 * inserted in the same transaction will reference.
 */
type Parent = { uuid: string } | { pending: string[] };

/** Ensures a switch port on a switch. */
function ensureSwitchPort(t: Txn, swRef: Parent, want: DesiredSwitchPort): void {
  const cur = t.nb.cache.table('Logical_Switch_Port').byIndex({ name: want.name });
  const row = { name: want.name, type: want.type, addresses: want.addresses, port_security: want.port_security, options: want.options, external_ids: want.external_ids };
  if (!cur) {
    const named = t.name('lsp');
    t.ops.push(ops.wait('Logical_Switch_Port', [['name', '==', want.name]], { until: '==', rows: [], columns: ['name'], timeout: 0 }));
    t.ops.push(ops.insert('Logical_Switch_Port', row, named));
    if ('uuid' in swRef) t.ops.push(ops.mutate('Logical_Switch', [['_uuid', '==', swRef.uuid]], [['ports', 'insert', [named]]]));
    else swRef.pending.push(named);
    t.change('Logical_Switch_Port', want.name, 'insert');
    return;
  }
  if (!isKovnOwned(cur.external_ids)) {
    // Never touch a row kovn does not own: the object cannot converge until its owner removes it.
    throw new InvalidInputError('ForeignPort', `logical switch port ${want.name} exists and is not owned by kovn; remove it, then replay this change`);
  }
  const differs = cur.type !== want.type || !sameList(cur.addresses, want.addresses) || !sameList(cur.port_security, want.port_security) ||
    !sameMap(cur.options, want.options) || !sameMap(cur.external_ids, want.external_ids);
  if (differs) {
    t.ops.push(ops.update('Logical_Switch_Port', [['_uuid', '==', cur._uuid]], row));
    t.change('Logical_Switch_Port', want.name, 'update');
  }
  // A port of the same name on another switch (the pod moved nodes) is moved to this one.
  if ('uuid' in swRef) {
    const sws = t.nb.cache.table('Logical_Switch').all();
    const holder = sws.find((s) => s.ports.includes(cur._uuid));
    if (holder?._uuid !== swRef.uuid) {
      if (holder) t.ops.push(ops.mutate('Logical_Switch', [['_uuid', '==', holder._uuid]], [['ports', 'delete', [cur._uuid]]]));
      t.ops.push(ops.mutate('Logical_Switch', [['_uuid', '==', swRef.uuid]], [['ports', 'insert', [cur._uuid]]]));
      t.change('Logical_Switch_Port', want.name, 'update');
    }
  }
}

/**
 * Ensures a router. A new router is inserted by `finish()`, after the ports that reference it by
 * named-uuid (a named-uuid can only be used by operations that follow its insert).
 */
function ensureRouter(t: Txn, name: string, externalIds: Record<string, string>): { parent: Parent; finish: () => void } {
  const cur = byName(t.nb.cache.table('Logical_Router').all(), name);
  if (cur) {
    if (!sameMap(cur.external_ids, externalIds)) {
      t.ops.push(ops.update('Logical_Router', [['_uuid', '==', cur._uuid]], { external_ids: externalIds }));
      t.change('Logical_Router', name, 'update');
    }
    return { parent: { uuid: cur._uuid }, finish: () => undefined };
  }
  const pending: string[] = [];
  t.ops.push(ops.wait('Logical_Router', [['name', '==', name]], { until: '==', rows: [], columns: ['name'], timeout: 0 }));
  return {
    parent: { pending },
    finish: () => {
      t.ops.push(ops.insert('Logical_Router', { name, external_ids: externalIds, ports: pending }, t.name('lr')));
      t.change('Logical_Router', name, 'insert');
    },
  };
}

function ensureRouterPort(t: Txn, router: Parent, want: DesiredRouterPort): void {
  const cur = t.nb.cache.table('Logical_Router_Port').byIndex({ name: want.name });
  const row = { name: want.name, mac: want.mac, networks: want.networks, external_ids: want.external_ids };
  if (cur) {
    if (cur.mac !== want.mac || !sameList(cur.networks, want.networks) || !sameMap(cur.external_ids, want.external_ids)) {
      t.ops.push(ops.update('Logical_Router_Port', [['_uuid', '==', cur._uuid]], row));
      t.change('Logical_Router_Port', want.name, 'update');
    }
    return;
  }
  const named = t.name('lrp');
  t.ops.push(ops.wait('Logical_Router_Port', [['name', '==', want.name]], { until: '==', rows: [], columns: ['name'], timeout: 0 }));
  t.ops.push(ops.insert('Logical_Router_Port', row, named));
  if ('uuid' in router) t.ops.push(ops.mutate('Logical_Router', [['_uuid', '==', router.uuid]], [['ports', 'insert', [named]]]));
  else router.pending.push(named);
  t.change('Logical_Router_Port', want.name, 'insert');
}

/**
 * Ensures a switch linked to the cluster router (plus extra ports), in one transaction with the router
 * itself when it is new. `guard` adds wait operations for new switches (e.g. "no switch has this subnet").
 */
function ensureAttachment(t: Txn, router: Parent, att: SwitchAttachment, extraPorts: DesiredSwitchPort[], guard: Operation[] = []): void {
  const cur = byName(t.nb.cache.table('Logical_Switch').all(), att.sw.name);
  if (cur) {
    if (!sameMap(cur.other_config, att.sw.other_config) || !sameMap(cur.external_ids, att.sw.external_ids)) {
      t.ops.push(ops.update('Logical_Switch', [['_uuid', '==', cur._uuid]], { other_config: att.sw.other_config, external_ids: att.sw.external_ids }));
      t.change('Logical_Switch', att.sw.name, 'update');
    }
    for (const p of [att.switchPort, ...extraPorts]) ensureSwitchPort(t, { uuid: cur._uuid }, p);
  } else {
    t.ops.push(...guard);
    t.ops.push(ops.wait('Logical_Switch', [['name', '==', att.sw.name]], { until: '==', rows: [], columns: ['name'], timeout: 0 }));
    const pending: string[] = [];
    for (const p of [att.switchPort, ...extraPorts]) ensureSwitchPort(t, { pending }, p);
    insertSwitch(t, att.sw, t.name('ls'), pending);
  }
  ensureRouterPort(t, router, att.routerPort);
}

function insertSwitch(t: Txn, sw: DesiredSwitch, named: string, ports: string[]): void {
  t.ops.push(ops.insert('Logical_Switch', { name: sw.name, other_config: sw.other_config, external_ids: sw.external_ids, ports }, named));
  t.change('Logical_Switch', sw.name, 'insert');
}

/** The cluster router and the join switch. */
export async function ensureClusterTopology(nb: NbClient, topo: { router: { name: string; external_ids: Record<string, string> }; join: SwitchAttachment }): Promise<Change[]> {
  const t = new Txn(nb, 'kovn: cluster topology');
  const router = ensureRouter(t, topo.router.name, topo.router.external_ids);
  ensureAttachment(t, router.parent, topo.join, []);
  router.finish();
  return t.commit();
}

/** A node's switch, its router link and its management port; `guard` protects a new subnet claim. */
export async function ensureNodeTopology(nb: NbClient, node: string, att: SwitchAttachment & { mgmt: DesiredSwitchPort }, guard: Operation[]): Promise<Change[]> {
  const t = new Txn(nb, `kovn: Node ${node}`);
  const lr = byName(nb.cache.table('Logical_Router').all(), CLUSTER_ROUTER);
  if (!lr) throw new Error(`${CLUSTER_ROUTER} does not exist yet`);
  ensureAttachment(t, { uuid: lr._uuid }, att, [att.mgmt], guard);
  return t.commit();
}

/** Wait guard: no switch holds this subnet in other_config (an atomic subnet claim). */
export function noSwitchWithSubnet(key: 'subnet' | 'ipv6_prefix', value: string): Operation {
  return ops.wait('Logical_Switch', [['other_config', 'includes', { [key]: value }]], { until: '==', rows: [], columns: ['name'], timeout: 0 });
}

/** Subnets held by switches (v4 `subnet`, v6 `ipv6_prefix`), by switch name. */
export function switchSubnets(nb: NbClient): Map<string, { subnet?: string; ipv6Prefix?: string }> {
  return new Map((nb.cache.table('Logical_Switch').all()).map((s) => [s.name, { subnet: s.other_config.subnet, ipv6Prefix: s.other_config.ipv6_prefix }]));
}

/** A pod's logical switch port on its node's switch. */
export async function ensurePodPort(nb: NbClient, node: string, port: DesiredSwitchPort): Promise<Change[]> {
  const sw = byName(nb.cache.table('Logical_Switch').all(), node);
  if (!sw) throw new Error(`switch of node ${node} does not exist yet`);
  const t = new Txn(nb, `kovn: Pod port ${port.name}`);
  ensureSwitchPort(t, { uuid: sw._uuid }, port);
  return t.commit();
}

/** Deletes every row kovn owns for an owner: ports detached from their switch/router, switches deleted. */
export async function deleteOwned(nb: NbClient, owner: Owner): Promise<Change[]> {
  const t = new Txn(nb, `kovn: delete ${owner.type} ${owner.name}`);
  const mine = <R extends { external_ids: Record<string, string> }>(rows: R[]): R[] =>
    rows.filter((r) => isKovnOwned(r.external_ids) && r.external_ids[OWNER_TYPE] === owner.type && r.external_ids[OWNER_NAME] === owner.name);
  const switches = nb.cache.table('Logical_Switch').all();
  const routers = nb.cache.table('Logical_Router').all();
  const deadSwitches = new Set(mine(switches).map((s) => s._uuid));
  for (const p of mine(nb.cache.table('Logical_Switch_Port').all())) {
    const holder = switches.find((s) => s.ports.includes(p._uuid));
    if (holder && !deadSwitches.has(holder._uuid)) t.ops.push(ops.mutate('Logical_Switch', [['_uuid', '==', holder._uuid]], [['ports', 'delete', [p._uuid]]]));
    t.change('Logical_Switch_Port', p.name, 'delete');
  }
  for (const p of mine(nb.cache.table('Logical_Router_Port').all())) {
    const holder = routers.find((r) => r.ports.includes(p._uuid));
    if (holder) t.ops.push(ops.mutate('Logical_Router', [['_uuid', '==', holder._uuid]], [['ports', 'delete', [p._uuid]]]));
    t.change('Logical_Router_Port', p.name, 'delete');
  }
  for (const s of mine(switches)) {
    t.ops.push(ops.delete('Logical_Switch', [['_uuid', '==', s._uuid]]));
    t.change('Logical_Switch', s.name, 'delete');
  }
  return t.commit();
}

/** Pod ports kovn owns, with their owner key ("ns/name"), for startup sync. */
export function ownedPodPorts(nb: NbClient): { name: string; owner: string; uid?: string; node?: string }[] {
  return (nb.cache.table('Logical_Switch_Port').all())
    .filter((p) => isKovnOwned(p.external_ids) && p.external_ids[OWNER_TYPE] === 'Pod')
    .map((p) => ({ name: p.name, owner: p.external_ids[OWNER_NAME] ?? '', uid: p.options['iface-id-ver'], node: p.options['requested-chassis'] }));
}
