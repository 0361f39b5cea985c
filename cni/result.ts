/**
 * The CNI ADD result (spec 1.1.0 is the superset kovn builds) and its rendering for the version the
 * runtime asked for: 1.0.0 drops the 1.1 additions, 0.3.x/0.4.0 add `version` to each IP.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { compareVersions } from './versions.ts';

const ip = z.string().refine((s) => isIP(s) !== 0, 'not an IP address');
/** An address with a prefix length, e.g. "10.244.1.5/24" (host bits allowed, unlike a subnet). */
const ipWithPrefix = z.string().refine((s) => {
  const slash = s.lastIndexOf('/');
  const family = isIP(s.slice(0, slash));
  const len = s.slice(slash + 1);
  return slash > 0 && family !== 0 && /^\d{1,3}$/.test(len) && Number(len) <= (family === 4 ? 32 : 128);
}, 'not an address/prefix in CIDR notation');
const uint = z.number().int().nonnegative();

export const CniInterface = z.object({
  name: z.string().min(1),
  mac: z.string().optional(),
  mtu: uint.optional(),
  sandbox: z.string().optional(),
  socketPath: z.string().optional(),
  pciID: z.string().optional(),
});
export type CniInterface = z.infer<typeof CniInterface>;

export const CniIpConfig = z.object({
  address: ipWithPrefix,
  gateway: ip.optional(),
  /** Index into `interfaces`. */
  interface: uint.optional(),
  /** Only in 0.3.x/0.4.0 results; accepted in a prevResult, never needed from the agent. */
  version: z.enum(['4', '6']).optional(),
});
export type CniIpConfig = z.infer<typeof CniIpConfig>;

export const CniRoute = z.object({
  dst: ipWithPrefix,
  gw: ip.optional(),
  mtu: uint.optional(),
  advmss: uint.optional(),
  priority: uint.optional(),
  table: uint.optional(),
  scope: uint.optional(),
});
export type CniRoute = z.infer<typeof CniRoute>;

export const CniDns = z.object({
  nameservers: z.array(ip).optional(),
  domain: z.string().optional(),
  search: z.array(z.string()).optional(),
  options: z.array(z.string()).optional(),
});
export type CniDns = z.infer<typeof CniDns>;

/** An ADD result. `cniVersion` is optional here: the plugin stamps the version it was asked for. */
export const CniResult = z.object({
  cniVersion: z.string().optional(),
  interfaces: z.array(CniInterface).default([]),
  ips: z.array(CniIpConfig).default([]),
  routes: z.array(CniRoute).default([]),
  dns: CniDns.default({}),
}).superRefine((r, ctx) => {
  r.ips.forEach((ipc, i) => {
    if (ipc.interface !== undefined && ipc.interface >= r.interfaces.length) {
      ctx.addIssue({ code: 'custom', path: ['ips', i, 'interface'], message: `no interface at index ${ipc.interface}` });
    }
  });
});
export type CniResult = z.infer<typeof CniResult>;
/** What a handler may return: defaults (empty lists) may be left out. */
export type CniResultInput = z.input<typeof CniResult>;

/** The result as the runtime expects it for `cniVersion`, with keys in spec order. */
export function resultForVersion(result: CniResult, cniVersion: string): CniResult {
  const v11 = compareVersions(cniVersion, '1.1.0') >= 0;
  const v1 = compareVersions(cniVersion, '1.0.0') >= 0;
  return {
    cniVersion,
    interfaces: result.interfaces.map((i) => v11 ? { ...i } : pick({ name: i.name, mac: i.mac, sandbox: i.sandbox })),
    ips: result.ips.map((ipc) => pick({
      ...(v1 ? {} : { version: ipc.address.includes(':') ? '6' as const : '4' as const }),
      address: ipc.address,
      gateway: ipc.gateway,
      interface: ipc.interface,
    })),
    routes: result.routes.map((r) => v11 ? { ...r } : pick({ dst: r.dst, gw: r.gw })),
    dns: { ...result.dns },
  };
}

/** Drops keys whose value is undefined, so the JSON carries only what is set. */
function pick<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
