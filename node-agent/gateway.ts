/**
 * The node's external bridge (OVN-Kubernetes' `breth0`), owned by the agent as on a real node: made
 * from the gateway interface (the node's address and default routes move onto the bridge, as userspace
 * GENEVE tunnelling also needs), mapped to OVN's physical network, its OpenFlow rules kept, and the
 * host side of the masquerade subnet (host -> Service through the gateway router).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { filter } from 'rxjs';
import type { Subscription } from 'rxjs';
import { opsFor } from '../ovsdb/index.ts';
import type { OpenVSwitchTables } from '../ovsdb/models/vswitch.ts';
import type { Change } from '../lib/change.ts';
import { clusterFamilies } from '../lib/cluster-config.ts';
import type { ClusterConfig } from '../lib/cluster-config.ts';
import { parseCidr } from '../lib/cidr.ts';
import { run, runRaw, sleep } from '../lib/exec.ts';
import { MASQUERADE, PHYSNET, localnetPort } from '../activities/translate/gateway.ts';
import type { GatewayFacts } from '../activities/translate/gateway.ts';
import { bridgeFlows, gratuitousArp, unsolicitedNa } from './bridge-flows.ts';
import type { ServiceFlows } from './bridge-flows.ts';
import type { OvsClient } from './ovs.ts';

const ops = opsFor<OpenVSwitchTables>();

/** OVN-Kubernetes names the bridge of interface X `brX`. */
export const bridgeFor = (iface: string): string => `br${iface}`;

/** The patch port ovn-controller makes on the bridge for the node's localnet port. */
export const patchPort = (bridge: string, node: string): string => `patch-${localnetPort(bridge, node)}-to-br-int`;

interface IpAddr { family: 'inet' | 'inet6'; local: string; prefixlen: number; scope: string }
interface IpLink { ifname: string; address?: string; addr_info?: IpAddr[] }
interface IpRoute { dst: string; gateway?: string; dev?: string }

const json = async <T>(args: readonly string[]): Promise<T> => JSON.parse((await run('ip', ['-j', ...args])) || '[]') as T;
const isMasquerade = (a: string): boolean => a === MASQUERADE[4].host || a === MASQUERADE[6].host;

/** The interface's global addresses ("172.29.0.11/24"), the masquerade ones left out. */
async function globalAddrs(dev: string): Promise<{ cidr: string; v6: boolean }[]> {
  const [link] = await json<IpLink[]>(['addr', 'show', 'dev', dev]);
  return (link?.addr_info ?? []).filter((a) => a.scope === 'global' && !isMasquerade(a.local))
    .map((a) => ({ cidr: `${a.local}/${a.prefixlen}`, v6: a.family === 'inet6' }));
}

async function defaultRoutes(dev: string): Promise<{ via: string; v6: boolean }[]> {
  const out: { via: string; v6: boolean }[] = [];
  for (const v6 of [false, true]) {
    for (const r of await json<IpRoute[]>([...(v6 ? ['-6'] : ['-4']), 'route', 'show', 'default', 'dev', dev])) if (r.gateway) out.push({ via: r.gateway, v6 });
  }
  return out;
}

async function macOf(dev: string): Promise<string> {
  const [link] = await json<IpLink[]>(['link', 'show', 'dev', dev]);
  if (!link?.address) throw new Error(`interface ${dev} has no MAC address`);
  return link.address;
}

/**
 * Makes the external bridge from the gateway interface, once: the bridge (netdev, keeping the
 * interface's MAC) with the interface as its port, then the interface's addresses and default routes
 * moved onto the bridge. Idempotent; on a node whose bridge exists it only finishes a move cut short.
 */
export async function ensureExternalBridge(ovs: OvsClient, iface: string): Promise<Change[]> {
  const bridge = bridgeFor(iface);
  const changes: Change[] = [];
  if (!ovs.cache.table('Bridge').all().some((b) => b.name === bridge)) {
    const owner = ovs.cache.table('Port').all().find((p) => p.name === iface);
    if (owner) throw new Error(`${iface} is already a port of an OVS bridge; kovn makes ${bridge} from a free interface`);
    const root = ovs.cache.table('Open_vSwitch').all()[0];
    if (!root) throw new Error('the Open_vSwitch table has no row yet');
    const mac = await macOf(iface);
    await ovs.transact([
      ops.comment(`kovn: external bridge ${bridge}`),
      ops.wait('Bridge', [['name', '==', bridge]], { until: '==', rows: [], columns: ['name'], timeout: 0 }),
      ops.insert('Interface', { name: bridge, type: 'internal' }, 'ilocal'),
      ops.insert('Port', { name: bridge, interfaces: ['ilocal'] }, 'plocal'),
      ops.insert('Interface', { name: iface, type: '' }, 'iphys'),
      ops.insert('Port', { name: iface, interfaces: ['iphys'] }, 'pphys'),
      // The bridge keeps the interface's MAC: the node's neighbours (and the gateway router) know it by it.
      ops.insert('Bridge', { name: bridge, datapath_type: 'netdev', ports: ['plocal', 'pphys'], other_config: { hwaddr: mac } }, 'br'),
      ops.mutate('Open_vSwitch', [['_uuid', '==', root._uuid]], [['bridges', 'insert', ['br']]]),
    ]);
    changes.push({ db: 'ovs', table: 'Bridge', row: bridge, op: 'insert' });
  }
  for (let i = 0; i < 100 && (await runRaw('ip', ['link', 'show', bridge])).code !== 0; i++) await sleep(50);
  const addrs = await globalAddrs(iface);
  if (addrs.length > 0) {
    const routes = await defaultRoutes(iface);
    const have = new Set((await globalAddrs(bridge)).map((a) => a.cidr));
    for (const a of addrs) if (!have.has(a.cidr)) await run('ip', ['addr', 'add', a.cidr, 'dev', bridge, ...(a.v6 ? ['nodad'] : [])]);
    await run('ip', ['link', 'set', bridge, 'up']);
    for (const a of addrs) await run('ip', ['addr', 'del', a.cidr, 'dev', iface]);
    for (const r of routes) await run('ip', [...(r.v6 ? ['-6'] : []), 'route', 'replace', 'default', 'via', r.via, 'dev', bridge]);
    changes.push({ db: 'node', table: 'Address', row: `${addrs.map((a) => a.cidr).join(',')} ${iface}->${bridge}`, op: 'update' });
  }
  await run('ip', ['link', 'set', bridge, 'up']);
  changes.push(...quietKernelPort(iface));
  return changes;
}

/**
 * The userspace datapath reads the interface with a packet socket, so the kernel still sees every
 * packet on it too, and, the node's address being on the bridge, would take a reply meant for a pod
 * (SNATed to the node's IP) as its own and answer it with a reset. With no address of its own, the
 * interface is made deaf: reverse-path filtering drops IPv4 (no route points back through it), no ARP
 * answers, no IPv6. Packets still reach OVS.
 */
function quietKernelPort(iface: string): Change[] {
  const want: [string, string][] = [
    [`/proc/sys/net/ipv4/conf/${iface}/rp_filter`, '1'],
    [`/proc/sys/net/ipv4/conf/${iface}/arp_ignore`, '8'],
    [`/proc/sys/net/ipv6/conf/${iface}/disable_ipv6`, '1'],
  ];
  const changed: Change[] = [];
  for (const [file, value] of want) {
    if (!existsSync(file) || readFileSync(file, 'utf8').trim() === value) continue;
    writeFileSync(file, value);
    changed.push({ db: 'node', table: 'Sysctl', row: `${file.slice('/proc/sys/'.length).replaceAll('/', '.')}=${value}`, op: 'update' });
  }
  return changed;
}

/** What the controller needs of the bridge for the node's gateway (the l3-gateway-config's facts). */
export async function gatewayFacts(bridge: string): Promise<GatewayFacts> {
  return {
    bridge,
    mac: await macOf(bridge),
    ipAddresses: (await globalAddrs(bridge)).map((a) => a.cidr),
    nextHops: (await defaultRoutes(bridge)).map((r) => r.via),
  };
}

/**
 * The host's side of the masquerade subnet: its masquerade address on the bridge, the dummy next hop
 * and OVN's masquerade address as permanent neighbours (the gateway router's MAC: the bridge's), and
 * the service networks routed through it to the gateway router, from the masquerade address.
 */
export async function ensureHostMasquerade(bridge: string, cluster: ClusterConfig): Promise<void> {
  const mac = await macOf(bridge);
  const fams = clusterFamilies(cluster);
  const have = await run('ip', ['-o', 'addr', 'show', 'dev', bridge]);
  for (const f of fams) {
    const m = MASQUERADE[f];
    const prefix = m.subnet.split('/')[1] ?? '';
    const fam = f === 6 ? ['-6'] : ['-4'];
    if (!have.includes(` ${m.host}/${prefix} `)) await run('ip', [...fam, 'addr', 'add', `${m.host}/${prefix}`, 'dev', bridge, ...(f === 6 ? ['nodad'] : [])]);
    // Both OVN's addresses on the subnet are the gateway router's, behind the bridge's (shared) MAC.
    for (const n of [m.nextHop, m.ovn]) await run('ip', [...fam, 'neigh', 'replace', n, 'lladdr', mac, 'dev', bridge, 'nud', 'permanent']);
    for (const svc of cluster.serviceNetworks.filter((s) => parseCidr(s).family === f)) {
      // From the masquerade address: the bridge then needs no SNAT (and no conntrack) before the gateway router.
      await run('ip', [...fam, 'route', 'replace', svc, 'via', m.nextHop, 'dev', bridge, 'src', m.host, 'mtu', String(cluster.mtu)]);
    }
  }
}

/** Sets ovn-bridge-mappings so ovn-controller patches the node's localnet port to the bridge. */
export function bridgeMapping(bridge: string): string {
  return `${PHYSNET}:${bridge}`;
}

/**
 * Keeps the bridge's flows what bridgeFlows says for the ports as they are: installed at once, and
 * again whenever an interface of the bridge (its patch port, above all) appears, goes or is renumbered.
 * `ovs-ofctl replace-flows` changes only the flows that differ.
 */
export function keepBridgeFlows(opts: { ovs: OvsClient; ovsSock: string; node: string; iface: string; cluster: ClusterConfig; services: () => ServiceFlows; log: (m: string) => void }): { sync: () => Promise<void>; stop: () => void } {
  const { ovs, node, iface, cluster, log } = opts;
  const bridge = bridgeFor(iface);
  const target = `unix:${dirname(opts.ovsSock)}/${bridge}.mgmt`;
  const patch = patchPort(bridge, node);
  let last = '';
  let mac: string | undefined;
  let announced = new Set<string>();
  let running: Promise<void> = Promise.resolve();
  const ofport = (name: string): number | undefined => {
    const p = ovs.cache.table('Interface').all().find((x) => x.name === name)?.ofport;
    return p !== undefined && p > 0 ? p : undefined;
  };
  const once = async (): Promise<void> => {
    const phys = ofport(iface);
    if (phys === undefined) return;
    mac ??= await macOf(bridge);
    const svc = opts.services();
    const flows = bridgeFlows({
      mac, phys, patch: ofport(patch), families: clusterFamilies(cluster), serviceCidrs: cluster.serviceNetworks,
      ...svc,
    }).join('\n');
    if (flows === last) return;
    await run('ovs-ofctl', ['-O', 'OpenFlow13', 'replace-flows', target, '-'], { input: `${flows}\n`, timeoutMs: 20_000 });
    last = flows;
    // An address this node has just taken over: tell the segment at once (the old node may be gone).
    const fresh = svc.announce.filter((a) => !announced.has(a));
    announced = new Set(svc.announce);
    for (const a of fresh) {
      await run('ovs-ofctl', ['-O', 'OpenFlow13', 'packet-out', target, `in_port=controller,packet=${a.includes(':') ? unsolicitedNa(mac, a) : gratuitousArp(mac, a)},actions=output:${phys}`], { timeoutMs: 5_000 })
        .then(() => log(`${bridge}: announcing ${a}`), (err: unknown) => log(`${bridge}: announcing ${a} failed: ${err instanceof Error ? err.message : String(err)}`));
    }
    log(`${bridge}: flows installed (${ofport(patch) === undefined ? 'no patch port to OVN yet' : `patch port ${patch}`})`);
  };
  const sync = (): Promise<void> => (running = running.then(once, once));
  // Pods' ports come and go all the time: only a change of the bridge's own ports' numbers matters.
  const ports = (): string => `${ofport(iface) ?? '-'}/${ofport(patch) ?? '-'}`;
  let seen = ports();
  const sub: Subscription = ovs.events$.pipe(filter((e) => e.table === 'Interface')).subscribe(() => {
    if (ports() === seen) return;
    seen = ports();
    sync().catch((err: unknown) => log(`${bridge}: installing flows failed: ${err instanceof Error ? err.message : String(err)}`));
  });
  return { sync, stop: () => sub.unsubscribe() };
}
