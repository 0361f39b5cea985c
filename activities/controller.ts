/**
 * The controller's activities: every kind's (from the registry, `activities/<file>.ts`, each a default
 * factory returning its reads and writes) and the shared ones, as one object for the worker.
 */
import { KINDS, KIND_NAMES } from '../lib/kinds.ts';
import { createCommonActivities } from './common.ts';
import type { ControllerDeps } from './common.ts';

export type { ControllerDeps };

type Activity = (...args: never[]) => Promise<unknown>;
interface KindModule { default: (deps: ControllerDeps) => { reads: Record<string, Activity>; writes: Record<string, Activity> } }

export async function createControllerActivities(deps: ControllerDeps): Promise<Record<string, Activity>> {
  const all: Record<string, Activity> = { ...createCommonActivities(deps) };
  for (const kind of KIND_NAMES) {
    const mod = (await import(`./${KINDS[kind].file}.ts`)) as KindModule;
    const { reads, writes } = mod.default(deps);
    for (const [name, fn] of Object.entries({ ...reads, ...writes })) {
      if (name in all) throw new Error(`activity ${name} of ${kind} is defined twice`);
      all[name] = fn;
    }
  }
  return all;
}
