#!/usr/bin/env node
/**
 * kovn's controller: a Temporal worker on the `kovn` task queue (workflows and the controller's
 * activities) and, on the replica that holds the Lease, the watchers of every kind in the registry
 * (`watchers/<file>.ts`) that turn Kubernetes changes into workflow runs. Losing the Lease stops the
 * watchers and competes again; the worker and its in-flight activities go on.
 * Usage: node watchers/main.ts CONFIG.json
 */
import { hostname } from 'node:os';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { KubernetesObject } from '@kubernetes/client-node';
import { EMPTY, merge, mergeMap, of, timer } from 'rxjs';
import type { Observable, Subscription } from 'rxjs';
import { createControllerActivities } from '../activities/controller.ts';
import { connectNb } from '../activities/nb.ts';
import { connectSb } from '../activities/sb.ts';
import { ControllerConfig, markReady } from '../lib/daemon-config.ts';
import { WORKER_FAILURE_TYPES, startDaemon, workflowSource } from '../lib/daemon.ts';
import { classifyActivityErrors } from '../lib/errors.ts';
import { CONTROLLER_QUEUE, SA, workflowId } from '../lib/ids.ts';
import { KINDS, KIND_NAMES, refFromKey } from '../lib/kinds.ts';
import type { Kind } from '../lib/kinds.ts';
import { connectKube } from '../lib/kube.ts';
import { informer } from './informer.ts';
import type { Informer, KeyEvent } from './informer.ts';
import { acquireLease } from './lease.ts';
import { dispatchKeys } from './pipeline.ts';
import { keyOf } from './watch.ts';
import type { Watch, WatchContext } from './watch.ts';
import { Subject } from 'rxjs';

const { cfg, log } = startDaemon('watchers/main.ts', ControllerConfig);

const kube = connectKube(cfg.kubeconfig, 'kovn-controller');
const nb = await connectNb(cfg.nb);
const sb = await connectSb(cfg.sb);
const native = await NativeConnection.connect({ address: cfg.temporal.address });
const worker = await Worker.create({
  connection: native, namespace: cfg.temporal.namespace, taskQueue: CONTROLLER_QUEUE,
  activities: await createControllerActivities({ nb, sb, kube, cfg: cfg.cluster }),
  interceptors: { activity: [classifyActivityErrors] },
  workflowFailureErrorTypes: WORKER_FAILURE_TYPES,
  ...workflowSource(cfg.workflowBundle),
  maxConcurrentLocalActivityExecutions: 64,
  maxConcurrentWorkflowTaskExecutions: 64,
});
const running = worker.run();
const client = new Client({ connection: await Connection.connect({ address: cfg.temporal.address }), namespace: cfg.temporal.namespace });
const stores = new Map<Kind, Informer<KubernetesObject>>();
const related = new Map<string, Informer<KubernetesObject>>();
const ctx: WatchContext = { kube, nb, cfg: cfg.cluster, objects: (kind) => stores.get(kind)?.list() ?? [], object: (kind, key) => stores.get(kind)?.get(key), related: (path) => related.get(path)?.list() ?? [] };
const watches = await Promise.all(KIND_NAMES.map(async (k) => ((await import(`./${KINDS[k].file}.ts`)) as { default: Watch }).default));
markReady(cfg.readyFile);
log(`controller ${cfg.identity}: worker on ${CONTROLLER_QUEUE}; waiting for the lease`);

/** signalWithStart: a running change takes the signal; otherwise a new run starts with the same ID. */
const dispatchFor = (kind: Kind) => async (key: string, triggers: string[]): Promise<void> => {
  const { namespace, name } = refFromKey(kind, key);
  await client.workflow.signalWithStart(KINDS[kind].workflowType, {
    workflowId: workflowId(kind, namespace, name), taskQueue: CONTROLLER_QUEUE,
    args: [{ namespace, name, trigger: '' }], signal: 'changed', signalArgs: [triggers.join(', ')],
    typedSearchAttributes: [{ key: SA.kind, value: kind }, { key: SA.namespace, value: namespace }, { key: SA.name, value: name },
      ...('isNode' in KINDS[kind] ? [{ key: SA.node, value: name }] : []), { key: SA.outcome, value: 'running' }],
  });
};

const RESYNC_MS = 10 * 60_000;

/** A kind's keys, those it defers held back and let through only if their object still needs a run then. */
function deferred(w: Watch, inf: Informer<KubernetesObject>, keys$: Observable<KeyEvent>, ctx: WatchContext): Observable<KeyEvent> {
  if (!w.deferMs) return keys$;
  const needs = (o: KubernetesObject): boolean => {
    try {
      return (w.actionable?.(o, ctx) ?? true) && !w.inSync(o, ctx);
    } catch (err) {
      log(`defer ${w.kind} ${keyOf(o)}: ${String(err)}`);
      return true; // its run looks at it
    }
  };
  return keys$.pipe(mergeMap((e) => {
    const o = inf.get(e.key);
    let ms = 0;
    try {
      ms = o ? (w.deferMs?.(o, ctx) ?? 0) : 0;
    } catch (err) {
      log(`defer ${w.kind} ${e.key}: ${String(err)}`);
    }
    if (ms <= 0) return of(e);
    return timer(ms).pipe(mergeMap(() => {
      const now = inf.get(e.key);
      // Gone meanwhile: its deletion was dispatched on its own, at once.
      return now && needs(now) ? of({ ...e, trigger: `${e.trigger} (not published by its node within ${ms / 1000} s)` }) : EMPTY;
    }));
  }));
}

/**
 * The watchers of every kind, while this replica leads. The periodic resync (and the first one, once
 * every informer has listed) compares each store with the NB cache in-process: a run starts only for an
 * object that drifted, and for an owner of NB rows that the store no longer has (deleted while no
 * controller ran). A restart with nothing changed starts nothing.
 */
function watchAll(): () => void {
  let firstSynced = false;
  const subs: Subscription[] = [];
  const resyncs: { watch: Watch; inf: Informer<KubernetesObject>; extra: Subject<KeyEvent>; wctx: WatchContext; own: Informer<KubernetesObject>[] }[] = [];
  for (const w of watches) {
    // A watch reads its own secondary stores: the one whose event it is handling has applied it
    // (another kind's informer of the same path may not have yet).
    const own = new Map<string, Informer<KubernetesObject>>();
    const wctx: WatchContext = { ...ctx, related: (path) => (own.get(path) ?? related.get(path))?.list() ?? [] };
    const inf = informer<KubernetesObject>({
      kc: kube.kc, path: w.path, list: w.list(wctx), keys: (o) => [keyOf(o)], log,
      relevant: (o) => w.relevant(o, wctx),
      // The first list of a restarted controller starts nothing by itself: until the first sync (which
      // waits for every store and dispatches what drifted) no add is judged, since a store still being
      // listed (an informer says synced before its items are in) makes everything look drifted.
      actionable: (o) => (w.actionable?.(o, wctx) ?? true),
      skipAdd: (o) => !firstSynced || w.inSync(o, wctx),
    });
    const secondaries = (w.secondary ?? []).map((s) => {
      const inf2 = informer<KubernetesObject>({
        // Likewise a secondary object's keys: the first sync covers what they would have said.
        kc: kube.kc, path: s.path, list: s.list(wctx), keys: (o) => (firstSynced ? s.keys(o, wctx) : []), relevant: (o) => s.relevant(o, wctx), log,
      });
      own.set(s.path, inf2);
      related.set(s.path, inf2);
      return inf2.events$;
    });
    const extra = new Subject<KeyEvent>();
    stores.set(w.kind, inf);
    resyncs.push({ watch: w, inf, extra, wctx, own: [...own.values()] });
    subs.push(dispatchKeys(deferred(w, inf, merge(inf.events$, extra, ...secondaries), wctx), dispatchFor(w.kind), { log }).subscribe({
      error: (e: unknown) => log(`${w.kind} watcher failed: ${String(e)}`),
    }));
  }
  const resync = (): boolean => {
    // Every store listed, the secondary ones too: a check against a half-listed store is no check.
    if (!resyncs.every((r) => r.inf.synced() && r.own.every((o) => o.synced()))) return false;
    const t0 = performance.now();
    let checked = 0, drifts = 0, orphans = 0;
    for (const { watch: w, inf, extra, wctx } of resyncs) {
      const objs = inf.list();
      const keys = new Set(objs.map(keyOf));
      for (const o of objs) {
        let drifted: boolean;
        try {
          drifted = (w.actionable?.(o, wctx) ?? true) && !w.inSync(o, wctx);
        } catch (err) {
          log(`resync ${w.kind} ${keyOf(o)}: ${String(err)}`);
          drifted = true; // its run looks at it
        }
        checked++;
        if (drifted) {
          drifts++;
          extra.next({ key: keyOf(o), trigger: 'resync: drifted from NB' });
        }
      }
      try {
        for (const k of new Set(w.ownerKeys(wctx))) {
          if (k && !keys.has(k)) {
            orphans++;
            extra.next({ key: k, trigger: 'sync: owner of NB rows is gone' });
          }
        }
      } catch (err) {
        log(`sync of ${w.kind} owners: ${String(err)}`);
      }
    }
    // What a restart costs, for operators and the netpol bench: objects checked, runs it started.
    if (!firstSynced) log(`first sync: ${checked} objects checked against NB in ${Math.round(performance.now() - t0)} ms; ${drifts} drifted, ${orphans} owners gone`);
    firstSynced = true;
    return true;
  };
  // The first sync once every store has listed; then every period.
  const firstSync = setInterval(() => { if (resync()) clearInterval(firstSync); }, 500);
  const periodic = setInterval(resync, RESYNC_MS);
  return () => {
    clearInterval(firstSync);
    clearInterval(periodic);
    for (const s of subs) s.unsubscribe();
    stores.clear();
    related.clear();
  };
}

let stopping = false;
let wake: () => void = () => undefined;
const stopped = new Promise<void>((r) => { wake = r; });
const standingDown = new AbortController();
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  standingDown.abort();
  wake();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);

while (!stopping) {
  const lease = await Promise.race([
    acquireLease(kube.kc, { namespace: 'kube-system', name: 'kovn-controller', identity: cfg.identity || hostname(), signal: standingDown.signal }, log)
      .catch(() => undefined),
    stopped.then(() => undefined),
  ]);
  if (!lease) break;
  log('holding the lease: watching');
  const stopWatching = watchAll();
  const why = await Promise.race([lease.lost.then(() => 'lost' as const), stopped.then(() => 'stop' as const)]);
  stopWatching();
  if (why === 'stop') {
    await lease.release();
    break;
  }
  log('lost the lease: stopped watching; competing again (the worker goes on)');
}
if (worker.getState() === 'RUNNING') worker.shutdown(); // the SDK may have begun it on the same signal
await running;
nb.close();
sb.close();
await native.close();
process.exit(0); // informers and a lease attempt in flight would otherwise hold the process
