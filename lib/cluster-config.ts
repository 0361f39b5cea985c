/** The cluster's network settings, validated at the edge (controller and node agents read the same file). */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseCidr } from './cidr.ts';
import type { Family } from './cidr.ts';

const cidr = z.string().refine((s) => { try { parseCidr(s); return true; } catch { return false; } }, 'not a CIDR');

const ClusterNetwork = z.object({ cidr, hostPrefix: z.number().int().min(8).max(126) });

export const ClusterConfig = z.object({
  /** One entry per IP family (a dual-stack cluster has two). */
  clusterNetworks: z.array(ClusterNetwork).min(1).max(2),
  serviceNetworks: z.array(cidr).min(1).max(2),
  joinSubnets: z.array(cidr).min(1).max(2).default(['100.64.0.0/16']),
  mtu: z.number().int().min(1280).max(9000).default(1400),
  /**
   * Where kovn's LoadBalancer allocator takes addresses from: at most one pool per family, on a network
   * the nodes are on (one node answers ARP for each address). None: LoadBalancer Services stay pending.
   */
  loadBalancerPools: z.array(cidr).max(2).default([]),
}).superRefine((c, ctx) => {
  const fams = c.clusterNetworks.map((n) => parseCidr(n.cidr).family);
  if (new Set(fams).size !== fams.length) ctx.addIssue({ code: 'custom', path: ['clusterNetworks'], message: 'one network per IP family' });
  const pools = c.loadBalancerPools.map((p) => parseCidr(p).family);
  if (new Set(pools).size !== pools.length) ctx.addIssue({ code: 'custom', path: ['loadBalancerPools'], message: 'one pool per IP family' });
  c.clusterNetworks.forEach((n, i) => {
    if (n.hostPrefix <= parseCidr(n.cidr).prefix) ctx.addIssue({ code: 'custom', path: ['clusterNetworks', i, 'hostPrefix'], message: 'must be longer than the CIDR prefix' });
  });
});
export type ClusterConfig = z.infer<typeof ClusterConfig>;

/** The cluster's IP families, in its networks' order (one network per family, validated). */
export const clusterFamilies = (c: Pick<ClusterConfig, 'clusterNetworks'>): Family[] => c.clusterNetworks.map((n) => parseCidr(n.cidr).family);

export const IPV4_CLUSTER: ClusterConfig = {
  clusterNetworks: [{ cidr: '10.244.0.0/16', hostPrefix: 24 }],
  serviceNetworks: ['10.96.0.0/16'],
  joinSubnets: ['100.64.0.0/16'],
  mtu: 1400,
  loadBalancerPools: [],
};

export const DUAL_STACK_CLUSTER: ClusterConfig = {
  clusterNetworks: [{ cidr: '10.244.0.0/16', hostPrefix: 24 }, { cidr: 'fd00:10:244::/48', hostPrefix: 64 }],
  serviceNetworks: ['10.96.0.0/16', 'fd00:10:96::/112'],
  joinSubnets: ['100.64.0.0/16', 'fd98::/64'],
  mtu: 1400,
  loadBalancerPools: [],
};

export function loadClusterConfig(file: string): ClusterConfig {
  const r = ClusterConfig.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`${file}: ${i?.path.join('.') ?? ''}: ${i?.message ?? 'invalid'}`);
  }
  return r.data;
}
