import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { COREDNS_IMAGE, DNS, REPO } from '../config.ts';
import { kubectl } from '../kubectl.ts';

export const COREDNS_MANIFEST = join(REPO, 'deploy/addons/coredns.yaml');

/**
 * The box's cluster DNS (deploy/addons/coredns.yaml) on the pod network, applied once kovn networks pods;
 * returns when every replica is ready, so a test or a user's first pod can resolve names at once.
 */
export async function clusterDns(): Promise<string> {
  // The manifest names the image by its tag; a mismatch would leave the pods in ErrImageNeverPull.
  if (!readFileSync(COREDNS_MANIFEST, 'utf8').includes(`image: ${COREDNS_IMAGE}`)) {
    throw new Error(`${COREDNS_MANIFEST} does not run ${COREDNS_IMAGE}, the image the install builds`);
  }
  await kubectl(['apply', '-f', COREDNS_MANIFEST]);
  await kubectl(['-n', 'kube-system', 'rollout', 'status', 'deployment/coredns', '--timeout=120s'], { timeoutMs: 130_000 });
  return `kube-dns ${DNS.serviceIp}, ${DNS.domain}`;
}
