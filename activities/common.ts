/**
 * Activities every kind's workflow shares: putting a failure where the object's author sees it.
 */
import type { ClusterConfig } from '../lib/cluster-config.ts';
import { KINDS } from '../lib/kinds.ts';
import type { Kind } from '../lib/kinds.ts';
import { recordEvent } from '../lib/kube.ts';
import type { Kube } from '../lib/kube.ts';
import type { NbClient } from './nb.ts';
import type { SbClient } from './sb.ts';

/** What the controller's activities are built from. */
export interface ControllerDeps {
  nb: NbClient;
  sb: SbClient;
  kube: Kube;
  cfg: ClusterConfig;
}

export function createCommonActivities({ kube }: { kube: Kube }) {
  return {
    /** A Warning Event on the object (one series per reason and message: repeats raise its count). */
    async recordFailure(p: { kind: Kind; namespace?: string; name: string; type: 'Normal' | 'Warning'; reason: string; message: string }): Promise<void> {
      await recordEvent(kube, { kind: p.kind, apiVersion: KINDS[p.kind].apiVersion, ...(p.namespace ? { namespace: p.namespace } : {}), name: p.name },
        p.type, p.reason, p.message);
    },
  };
}

export type CommonActivities = ReturnType<typeof createCommonActivities>;
