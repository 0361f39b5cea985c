/**
 * Ownership stamped into `external_ids` of every OVN row kovn writes (OVN-Kubernetes' keys), so stale
 * rows are pruned by owner and rows kovn does not own are never touched.
 */
export const OWNER_CONTROLLER = 'k8s.ovn.org/owner-controller';
export const OWNER_TYPE = 'k8s.ovn.org/owner-type';
export const OWNER_NAME = 'k8s.ovn.org/name';
export const ROW_ID = 'k8s.ovn.org/id';
export const CONTROLLER = 'kovn';
/** OVN-Kubernetes' owner keys on load balancers (`kind=Service`, `owner=<ns>/<name>`), read beside kovn's. */
export const OVNK_KIND = 'k8s.ovn.org/kind';
export const OVNK_OWNER = 'k8s.ovn.org/owner';

import { isOwnerType } from '../../lib/kinds.ts';
import type { OwnerType } from '../../lib/kinds.ts';

export type { OwnerType };

export interface Owner {
  type: OwnerType;
  /** "default/web" for a pod, "node-1" for a node, "default" for the cluster. */
  name: string;
}

export function ownedBy(owner: Owner, id: string, extra: Record<string, string> = {}): Record<string, string> {
  return { ...extra, [OWNER_CONTROLLER]: CONTROLLER, [OWNER_TYPE]: owner.type, [OWNER_NAME]: owner.name, [ROW_ID]: id };
}

export const isKovnOwned = (ext: Record<string, string> | undefined): boolean => ext?.[OWNER_CONTROLLER] === CONTROLLER;

export function ownerOf(ext: Record<string, string> | undefined): Owner | undefined {
  if (!isKovnOwned(ext)) return undefined;
  const type = ext?.[OWNER_TYPE] ?? ext?.[OVNK_KIND];
  const name = ext?.[OWNER_NAME] ?? ext?.[OVNK_OWNER];
  return type !== undefined && isOwnerType(type) && name !== undefined ? { type, name } : undefined;
}
