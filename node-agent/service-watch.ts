/**
 * Every Service, from an informer: the node's external bridge sends NodePort traffic to the gateway
 * router, so it must know the ports (bridge-flows.ts). Only the ports matter; a change calls `onChange`.
 */
import { makeInformer } from '@kubernetes/client-node';
import type { V1Service } from '@kubernetes/client-node';
import type { Kube } from '../lib/kube.ts';
import { nodePortsOf } from './bridge-flows.ts';
import type { NodePort } from './bridge-flows.ts';

export class NodeServices {
  readonly #services = new Map<string, V1Service>();
  readonly #kube: Kube;
  readonly #onChange: () => void;
  #stopped = false;
  #stop: () => void = () => undefined;

  constructor(kube: Kube, onChange: () => void) {
    this.#kube = kube;
    this.#onChange = onChange;
  }

  /** Lists and watches; resolves once the first list is in. */
  async start(): Promise<void> {
    const kube = this.#kube;
    const informer = makeInformer(kube.kc, '/api/v1/services', () => kube.core.listServiceForAllNamespaces());
    this.#stop = () => void informer.stop();
    let seen = '';
    const changed = (): void => {
      const now = JSON.stringify(this.nodePorts());
      if (now === seen) return;
      seen = now;
      this.#onChange();
    };
    const key = (s: V1Service): string => `${s.metadata?.namespace}/${s.metadata?.name}`;
    informer.on('add', (s) => { this.#services.set(key(s), s); changed(); });
    informer.on('update', (s) => { this.#services.set(key(s), s); changed(); });
    informer.on('delete', (s) => { this.#services.delete(key(s)); changed(); });
    // A dropped watch is restarted with backoff; the ports stay as they were meanwhile.
    let delay = 500;
    informer.on('error', () => {
      if (this.#stopped) return;
      setTimeout(() => void informer.start().then(() => { delay = 500; }, () => undefined), delay);
      delay = Math.min(delay * 2, 30_000);
    });
    await informer.start();
  }

  nodePorts(): NodePort[] {
    return nodePortsOf([...this.#services.values()]);
  }

  stop(): void {
    this.#stopped = true;
    this.#stop();
  }
}
