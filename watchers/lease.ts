/**
 * One watching replica: a coordination.k8s.io Lease held by the leader and renewed; the others wait
 * and take over when it expires. Workers scale out freely; only watching is single.
 */
import { CoordinationV1Api, V1MicroTime } from '@kubernetes/client-node';
import type { KubeConfig, V1Lease } from '@kubernetes/client-node';
import { httpStatus } from '../lib/kube.ts';
import { sleep } from '../lib/exec.ts';

export interface LeaseOptions {
  namespace: string;
  name: string;
  identity: string;
  durationSeconds: number;
}

// MicroTime: the apiserver wants six fractional digits, which a plain Date does not give.
const nowMicro = (): V1MicroTime => new V1MicroTime();

/** Resolves once this replica holds the lease; keeps renewing it, and calls onLost if it ever loses it. */
export async function acquireLease(kc: KubeConfig, o: LeaseOptions, onLost: () => void): Promise<{ release(): Promise<void> }> {
  const api = kc.makeApiClient(CoordinationV1Api);
  const spec = (): NonNullable<V1Lease['spec']> => ({ holderIdentity: o.identity, leaseDurationSeconds: o.durationSeconds, renewTime: nowMicro() });
  // Expiry is judged on this replica's clock: since when has the record stood still (as client-go's
  // leader election does), never by comparing the holder's renewTime with our clock, which may be skewed.
  let seen = { record: '', since: Date.now() };
  const tryTake = async (): Promise<boolean> => {
    let lease: V1Lease | undefined;
    try {
      lease = await api.readNamespacedLease({ name: o.name, namespace: o.namespace });
    } catch (err) {
      if (httpStatus(err) !== 404) throw err;
    }
    if (!lease) {
      try {
        await api.createNamespacedLease({ namespace: o.namespace, body: { metadata: { name: o.name, namespace: o.namespace }, spec: { ...spec(), acquireTime: nowMicro() } } });
        return true;
      } catch (err) {
        if (httpStatus(err) === 409) return false;
        throw err;
      }
    }
    const s = lease.spec ?? {};
    const record = lease.metadata?.resourceVersion ?? '';
    if (record !== seen.record) seen = { record, since: Date.now() };
    const expired = !s.holderIdentity || Date.now() - seen.since > (s.leaseDurationSeconds ?? o.durationSeconds) * 1000;
    if (s.holderIdentity !== o.identity && !expired) return false;
    try {
      await api.replaceNamespacedLease({ name: o.name, namespace: o.namespace, body: { ...lease, spec: { ...s, ...spec() } } });
      return true;
    } catch (err) {
      if (httpStatus(err) === 409) return false; // someone else renewed or took it first
      throw err;
    }
  };
  for (;;) {
    if (await tryTake().catch((err: unknown) => { console.error(`lease ${o.namespace}/${o.name}: ${err instanceof Error ? err.message : String(err)}`); return false; })) break;
    await sleep(1000);
  }
  // Leadership ends when a renewal is refused, or when none has succeeded for a whole lease duration
  // (another replica may hold it by then); one renewal at a time.
  let held = true;
  let renewed = Date.now();
  let inFlight: Promise<void> | undefined;
  const lose = (): void => {
    if (!held) return;
    held = false;
    clearInterval(renew);
    onLost();
  };
  const renew = setInterval(() => {
    if (inFlight) return;
    if (Date.now() - renewed > o.durationSeconds * 1000) return lose();
    inFlight = tryTake().then((ok) => {
      if (ok) renewed = Date.now();
      else lose();
    }, () => undefined).finally(() => { inFlight = undefined; });
  }, (o.durationSeconds * 1000) / 3);
  return {
    /** Gives the lease up at once (a clean shutdown), so a standby need not wait for it to expire. */
    async release() {
      clearInterval(renew);
      held = false;
      await inFlight; // a renewal still on its way would make the hand-over below conflict
      // Only while it is still ours: a holder that lost it must not end its successor's term. A conflict
      // is someone else's write meanwhile: read again and decide again.
      for (let attempt = 0; attempt < 3; attempt++) {
        const lease = await api.readNamespacedLease({ name: o.name, namespace: o.namespace }).catch(() => undefined);
        if (lease?.spec?.holderIdentity !== o.identity) return;
        try {
          await api.replaceNamespacedLease({ name: o.name, namespace: o.namespace, body: { ...lease, spec: { ...lease.spec, holderIdentity: '' } } });
          return;
        } catch (err) {
          if (httpStatus(err) !== 409) return;
        }
      }
    },
  };
}
