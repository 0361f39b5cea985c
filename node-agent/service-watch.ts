/**
 * Every Service and EndpointSlice, from informers, for what the node itself does for Services: its
 * external bridge sends NodePorts and external addresses (ExternalIPs, LoadBalancer addresses) to the
 * gateway router and answers ARP for the addresses this node announces (bridge-flows.ts), and it answers
 * the health checks of `externalTrafficPolicy: Local` (health-check.ts), and its host reaches its own
 * NodePorts (host-nat.ts). Only those matter: a change of
 * them calls `onChange`.
 */
import { makeInformer } from '@kubernetes/client-node';
import type { KubernetesObject, ListPromise, V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { restartOnError } from '../lib/kube.ts';
import type { Kube } from '../lib/kube.ts';
import { ANNOUNCING_NODE } from '../activities/translate/load-balancer.ts';
import { announcedBy, externalVipsOf, loadBalancerIpsOf, nodePortsOf } from './bridge-flows.ts';
import type { ServiceFlows } from './bridge-flows.ts';
import { healthChecksOf } from './health-check.ts';
import { hostNodePortsOf } from './host-nat.ts';
import type { HostNodePort } from './host-nat.ts';
import type { HealthCheck } from './health-check.ts';

export class NodeServices {
  readonly #services = new Map<string, V1Service>();
  readonly #slices = new Map<string, V1EndpointSlice>();
  readonly #kube: Kube;
  readonly #node: string;
  readonly #onChange: () => void;
  readonly #stops: (() => void)[] = [];
  #stopped = false;
  #seen = '';

  constructor(kube: Kube, node: string, onChange: () => void) {
    this.#kube = kube;
    this.#node = node;
    this.#onChange = onChange;
  }

  /** Lists and watches; resolves once the first lists are in. */
  async start(): Promise<void> {
    const k = this.#kube;
    await Promise.all([
      this.#watch(this.#services, '/api/v1/services', () => k.core.listServiceForAllNamespaces()),
      this.#watch(this.#slices, '/apis/discovery.k8s.io/v1/endpointslices', () => k.discovery.listEndpointSliceForAllNamespaces()),
    ]);
  }

  async #watch<T extends KubernetesObject>(store: Map<string, T>, path: string, list: ListPromise<T>): Promise<void> {
    const informer = makeInformer(this.#kube.kc, path, list);
    this.#stops.push(() => void informer.stop());
    const key = (o: T): string => `${o.metadata?.namespace}/${o.metadata?.name}`;
    informer.on('add', (o) => { store.set(key(o), o); this.#changed(); });
    informer.on('update', (o) => { store.set(key(o), o); this.#changed(); });
    informer.on('delete', (o) => { store.delete(key(o)); this.#changed(); });
    restartOnError(informer, () => this.#stopped);
    await informer.start();
  }

  #changed(): void {
    const now = JSON.stringify([this.flows(), this.healthChecks(), this.hostNodePorts()]);
    if (now === this.#seen) return;
    this.#seen = now;
    this.#onChange();
  }

  flows(): ServiceFlows {
    const all = [...this.#services.values()];
    return { nodePorts: nodePortsOf(all), externalVips: externalVipsOf(all), loadBalancerIps: loadBalancerIpsOf(all), announce: announcedBy(all, this.#node, ANNOUNCING_NODE) };
  }

  hostNodePorts(): HostNodePort[] {
    return hostNodePortsOf([...this.#services.values()]);
  }

  healthChecks(): HealthCheck[] {
    return healthChecksOf([...this.#services.values()], [...this.#slices.values()], this.#node);
  }

  stop(): void {
    this.#stopped = true;
    for (const s of this.#stops) s();
  }
}
