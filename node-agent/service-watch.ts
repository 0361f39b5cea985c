/**
 * Every Service, from an informer: the node's external bridge sends NodePort traffic and external
 * addresses (ExternalIPs, LoadBalancer addresses) to the gateway router and answers ARP for the
 * addresses this node announces (bridge-flows.ts). Only those matter; a change of them calls `onChange`.
 */
import { makeInformer } from '@kubernetes/client-node';
import type { V1Service } from '@kubernetes/client-node';
import type { Kube } from '../lib/kube.ts';
import { ANNOUNCING_NODE } from '../activities/translate/load-balancer.ts';
import { announcedBy, externalVipsOf, nodePortsOf } from './bridge-flows.ts';
import type { ServiceFlows } from './bridge-flows.ts';

export class NodeServices {
  readonly #services = new Map<string, V1Service>();
  readonly #kube: Kube;
  readonly #node: string;
  readonly #onChange: () => void;
  #stopped = false;
  #stop: () => void = () => undefined;

  constructor(kube: Kube, node: string, onChange: () => void) {
    this.#kube = kube;
    this.#node = node;
    this.#onChange = onChange;
  }

  /** Lists and watches; resolves once the first list is in. */
  async start(): Promise<void> {
    const kube = this.#kube;
    const informer = makeInformer(kube.kc, '/api/v1/services', () => kube.core.listServiceForAllNamespaces());
    this.#stop = () => void informer.stop();
    let seen = '';
    const changed = (): void => {
      const now = JSON.stringify(this.flows());
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

  flows(): ServiceFlows {
    const all = [...this.#services.values()];
    return { nodePorts: nodePortsOf(all), externalVips: externalVipsOf(all), announce: announcedBy(all, this.#node, ANNOUNCING_NODE) };
  }

  stop(): void {
    this.#stopped = true;
    this.#stop();
  }
}
