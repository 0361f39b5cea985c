/**
 * OVN-Kubernetes' annotations, which kovn reads and writes so its users can switch. Parsed with zod at
 * the edge; a parse error names the annotation and the path of the bad field.
 */
import { z } from 'zod';
import { parseCidr, parseIp } from './cidr.ts';

export const POD_NETWORKS = 'k8s.ovn.org/pod-networks';
export const NODE_SUBNETS = 'k8s.ovn.org/node-subnets';
export const NODE_CHASSIS_ID = 'k8s.ovn.org/node-chassis-id';
export const NODE_ID = 'k8s.ovn.org/node-id';
export const NODE_GATEWAY_ROUTER_LRP_IFADDR = 'k8s.ovn.org/node-gateway-router-lrp-ifaddr';
export const L3_GATEWAY_CONFIG = 'k8s.ovn.org/l3-gateway-config';
export const NODE_PRIMARY_IFADDR = 'k8s.ovn.org/node-primary-ifaddr';
export const ACL_LOGGING = 'k8s.ovn.org/acl-logging';

const cidrString = z.string().refine((s) => { try { parseCidr(s); return true; } catch { return false; } }, 'not a CIDR');
/** An address with its prefix length, as OVN-K writes pod addresses ("10.244.1.5/24"). */
const ipWithPrefix = z.string().refine((s) => {
  const [ip, len, rest] = s.split('/');
  if (ip === undefined || len === undefined || rest !== undefined || !/^\d+$/.test(len)) return false;
  try { parseIp(ip); return true; } catch { return false; }
}, 'not an address/prefix');
const ipString = z.string().refine((s) => { try { parseIp(s); return true; } catch { return false; } }, 'not an IP address');
const mac = z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/, 'not a lower-case MAC address');

export const PodNetwork = z.object({
  ip_addresses: z.array(ipWithPrefix).min(1),
  mac_address: mac,
  gateway_ips: z.array(ipString).optional(),
  routes: z.array(z.object({ dest: cidrString, nextHop: ipString })).optional(),
  ip_address: ipWithPrefix.optional(),
  gateway_ip: ipString.optional(),
  role: z.string().optional(),
});
export type PodNetwork = z.infer<typeof PodNetwork>;

export const PodNetworks = z.record(z.string(), PodNetwork);
export type PodNetworks = z.infer<typeof PodNetworks>;

/** `{"default": ["10.244.1.0/24", "fd00:10:244:1::/64"]}`; older OVN-K wrote a single string. */
export const NodeSubnets = z.record(z.string(), z.union([cidrString.transform((s) => [s]), z.array(cidrString).min(1)]));
export type NodeSubnets = z.infer<typeof NodeSubnets>;

/** `{"ipv4": "100.64.0.2/16", "ipv6": "fd98::2/64"}` (node-gateway-router-lrp-ifaddr, node-primary-ifaddr). */
export const IfAddr = z.object({ ipv4: ipWithPrefix.optional(), ipv6: ipWithPrefix.optional() }).strict();

/** `{"default": {"mode": "shared", "interface-id": ..., "mac-address": ..., "ip-addresses": [...], ...}}` */
export const L3GatewayConfig = z.record(z.string(), z.object({
  mode: z.enum(['shared', 'local', 'disabled']),
  'bridge-id': z.string().optional(),
  'interface-id': z.string().optional(),
  'mac-address': mac.optional(),
  'ip-addresses': z.array(ipWithPrefix).optional(),
  'ip-address': ipWithPrefix.optional(),
  'next-hops': z.array(ipString).optional(),
  'next-hop': ipString.optional(),
  'node-port-enable': z.enum(['true', 'false']).optional(),
  'vlan-id': z.string().regex(/^\d+$/, 'not a VLAN id').optional(),
}).passthrough());

/** ACL log severities, as OVN names them. */
export const Severity = z.enum(['alert', 'warning', 'notice', 'info', 'debug']);
export type Severity = z.infer<typeof Severity>;

/** `{"deny": "alert", "allow": "notice"}` on a namespace: which of its policies' verdicts are logged, and how. */
export const AclLogging = z.object({ deny: Severity.optional(), allow: Severity.optional() });
export type AclLogging = z.infer<typeof AclLogging>;

/** A node id: a decimal integer ("2"). */
export const NodeId = z.number().int().min(0);

/** A malformed annotation: non-retryable, reported on the object. */
export class AnnotationError extends Error {
  override readonly name = 'AnnotationError';
  readonly annotation: string;
  constructor(annotation: string, detail: string) {
    super(`annotation ${annotation}: ${detail}`);
    this.annotation = annotation;
  }
}

/** Parses a JSON annotation with a schema; undefined when absent, AnnotationError when malformed. */
export function readAnnotation<T>(annotations: Record<string, string> | undefined, key: string, schema: z.ZodType<T>): T | undefined {
  const raw = annotations?.[key];
  if (raw === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new AnnotationError(key, `not JSON: ${raw.slice(0, 80)}`);
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const first = r.error.issues[0];
    throw new AnnotationError(key, `${first?.path.join('.') || '(root)'}: ${first?.message ?? 'invalid'}`);
  }
  return r.data;
}

/** Whether two parsed annotation values say the same (kovn writes only when they differ). */
export const sameAnnotation = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
