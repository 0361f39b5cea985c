/**
 * One watching replica: a coordination.k8s.io Lease held by the leader and renewed; the others wait
 * and take over when it expires. Workers scale out freely; only watching is single. Timings as
 * client-go's leader election: lease 15 s, renew deadline 10 s, retry period 2 s, and every lease call
 * bounded well inside the renew deadline, so a leader whose renewals hang (the apiserver unreachable, the
 * process stalled) gives up before a standby can take over.
 */
import { CoordinationV1Api, V1MicroTime } from '@kubernetes/client-node';
import type { KubeConfig, V1Lease } from '@kubernetes/client-node';
import { httpStatus } from '../lib/kube.ts';
import { sleep } from '../lib/exec.ts';

export interface LeaseOptions {
  namespace: string;
  name: string;
  identity: string;
  /** How long a record may stand still before a standby takes the lease (client-go: 15 s). */
  durationSeconds?: number;
  /** How long the leader keeps trying to renew before it stops leading (client-go: 10 s). */
  renewDeadlineSeconds?: number;
  /** Between two attempts to acquire or renew (client-go: 2 s). */
  retryPeriodSeconds?: number;
  /** Gives up acquiring (the promise then rejects): a replica shutting down while it stands by. */
  signal?: AbortSignal;
}

export interface HeldLease {
  /** Resolves when leadership is lost (a renewal refused, or none succeeded within the renew deadline). */
  lost: Promise<void>;
  /** Gives the lease up at once (a clean shutdown), so a standby need not wait for it to expire. */
  release(): Promise<void>;
}

// MicroTime: the apiserver wants six fractional digits, which a plain Date does not give.
const nowMicro = (): V1MicroTime => new V1MicroTime();

/** Rejects when `p` takes longer than `ms` (the request itself is left to finish or fail on its own). */
function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Resolves once this replica holds the lease; keeps renewing it until it is lost or released. */
export async function acquireLease(kc: KubeConfig, o: LeaseOptions, log: (msg: string) => void = console.error): Promise<HeldLease> {
  const durationS = o.durationSeconds ?? 15;
  const renewDeadlineMs = (o.renewDeadlineSeconds ?? 10) * 1000;
  const retryMs = (o.retryPeriodSeconds ?? 2) * 1000;
  // Each call well inside the renew deadline: two attempts fit in it even when both hang.
  const callMs = Math.max(500, Math.min(renewDeadlineMs / 2 - 100, 5000));
  const api = kc.makeApiClient(CoordinationV1Api);
  const ref = { name: o.name, namespace: o.namespace };
  const spec = (): NonNullable<V1Lease['spec']> => ({ holderIdentity: o.identity, leaseDurationSeconds: durationS, renewTime: nowMicro() });
  // Expiry is judged on this replica's clock: since when has the record stood still (as client-go's
  // leader election does), never by comparing the holder's renewTime with our clock, which may be skewed.
  let seen = { record: '', since: Date.now() };
  let otherHolder = false;
  const tryTake = async (): Promise<boolean> => {
    let lease: V1Lease | undefined;
    try {
      lease = await bounded(api.readNamespacedLease(ref), callMs, 'read lease');
    } catch (err) {
      if (httpStatus(err) !== 404) throw err;
    }
    if (!lease) {
      try {
        await bounded(api.createNamespacedLease({ namespace: o.namespace, body: { metadata: ref, spec: { ...spec(), acquireTime: nowMicro() } } }), callMs, 'create lease');
        return true;
      } catch (err) {
        if (httpStatus(err) === 409) return false;
        throw err;
      }
    }
    const s = lease.spec ?? {};
    const record = lease.metadata?.resourceVersion ?? '';
    if (record !== seen.record) seen = { record, since: Date.now() };
    const expired = !s.holderIdentity || Date.now() - seen.since > (s.leaseDurationSeconds ?? durationS) * 1000;
    otherHolder = Boolean(s.holderIdentity) && s.holderIdentity !== o.identity && !expired;
    if (otherHolder) return false;
    try {
      await bounded(api.replaceNamespacedLease({ ...ref, body: { ...lease, spec: { ...s, ...spec() } } }), callMs, 'renew lease');
      return true;
    } catch (err) {
      if (httpStatus(err) === 409) return false; // someone else renewed or took it first
      throw err;
    }
  };
  const attempt = (): Promise<boolean> => tryTake().catch((err: unknown) => {
    log(`lease ${o.namespace}/${o.name}: ${err instanceof Error ? err.message : String(err)}`);
    return false;
  });
  while (!(await attempt())) {
    if (o.signal?.aborted) throw new Error(`lease ${o.namespace}/${o.name}: no longer wanted`);
    await sleep(retryMs);
  }

  let held = true;
  let renewed = Date.now();
  let inFlight: Promise<void> | undefined;
  let onLost: () => void = () => undefined;
  const lost = new Promise<void>((resolve) => { onLost = resolve; });
  const lose = (why: string): void => {
    if (!held) return;
    held = false;
    clearInterval(renew);
    log(`lease ${o.namespace}/${o.name}: lost (${why})`);
    onLost();
  };
  // One renewal at a time. The deadline is checked first on every tick, so a replica that was stalled
  // (SIGSTOP, a long pause) gives up before it acts on anything it saw while stalled.
  const renew = setInterval(() => {
    if (Date.now() - renewed > renewDeadlineMs) return lose(`no renewal for ${Date.now() - renewed} ms`);
    if (inFlight) return;
    // Counted from when the attempt began: the server wrote the renewal no earlier, so a standby that
    // saw that write waits a whole lease duration after it, and the deadline (+ one tick) falls before.
    const began = Date.now();
    inFlight = attempt().then((ok) => {
      if (!held) return;
      if (ok) renewed = began;
      else if (otherHolder) lose('another replica holds it');
      else if (Date.now() - renewed > renewDeadlineMs) lose('renew deadline passed');
    }).finally(() => { inFlight = undefined; });
  }, retryMs);
  return {
    lost,
    async release() {
      clearInterval(renew);
      held = false;
      await inFlight; // a renewal still on its way would make the hand-over below conflict
      // Only while it is still ours: a holder that lost it must not end its successor's term. A conflict
      // is someone else's write meanwhile: read again and decide again.
      for (let i = 0; i < 3; i++) {
        const lease = await bounded(api.readNamespacedLease(ref), callMs, 'read lease').catch(() => undefined);
        if (lease?.spec?.holderIdentity !== o.identity) return;
        try {
          await bounded(api.replaceNamespacedLease({ ...ref, body: { ...lease, spec: { ...lease.spec, holderIdentity: '' } } }), callMs, 'release lease');
          return;
        } catch (err) {
          if (httpStatus(err) !== 409) return;
        }
      }
    },
  };
}
