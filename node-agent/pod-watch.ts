/** The pods bound to this node, from an informer, so a CNI ADD can wait for its pod's annotation. */
import { makeInformer } from '@kubernetes/client-node';
import type { V1Pod } from '@kubernetes/client-node';
import { Subject, filter, firstValueFrom, timeout } from 'rxjs';
import { restartOnError } from '../lib/kube.ts';
import type { Kube } from '../lib/kube.ts';

export class NodePods {
  readonly #pods = new Map<string, V1Pod>();
  readonly #changes = new Subject<V1Pod>();
  readonly #stop: () => void;
  #listed = false;
  #stopped = false;

  private constructor(stop: () => void) {
    this.#stop = stop;
  }

  static async start(kube: Kube, node: string): Promise<NodePods> {
    const fieldSelector = `spec.nodeName=${node}`;
    const informer = makeInformer(kube.kc, `/api/v1/pods?fieldSelector=${encodeURIComponent(fieldSelector)}`,
      async () => {
        const list = await kube.core.listPodForAllNamespaces({ fieldSelector });
        self.#listed = true;
        return list;
      });
    const self = new NodePods(() => void informer.stop());
    const put = (p: V1Pod): void => {
      self.#pods.set(`${p.metadata?.namespace}/${p.metadata?.name}`, p);
      self.#changes.next(p);
    };
    informer.on('add', put);
    informer.on('update', put);
    informer.on('delete', (p) => self.#pods.delete(`${p.metadata?.namespace}/${p.metadata?.name}`));
    restartOnError(informer, () => self.#stopped);
    await informer.start();
    return self;
  }

  /**
   * Whether a list of this node's pods has succeeded since the start: before that the cache is empty,
   * not "no pods" (an apiserver unreachable at start fails the list and the informer goes on).
   */
  get synced(): boolean {
    return this.#listed;
  }

  /** UIDs of the pods on this node that still hold their network (not Succeeded or Failed). */
  liveUids(): Set<string> {
    return new Set([...this.#pods.values()].filter((p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed')
      .map((p) => p.metadata?.uid ?? ''));
  }

  get(namespace: string, name: string): V1Pod | undefined {
    return this.#pods.get(`${namespace}/${name}`);
  }

  /** Resolves with the pod once `ready` holds for it (checked now, then on every change). */
  async waitFor(namespace: string, name: string, ready: (p: V1Pod) => boolean, timeoutMs: number, what: string): Promise<V1Pod> {
    const now = this.get(namespace, name);
    if (now && ready(now)) return now;
    return firstValueFrom(this.#changes.pipe(
      filter((p) => p.metadata?.namespace === namespace && p.metadata.name === name && ready(p)),
      timeout({ first: timeoutMs, with: () => { throw new Error(`pod ${namespace}/${name}: ${what} not seen after ${timeoutMs} ms`); } }),
    ));
  }

  stop(): void {
    this.#stopped = true;
    this.#stop();
  }
}
