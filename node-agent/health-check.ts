/**
 * `healthCheckNodePort`, answered on each node as kube-proxy does: for a LoadBalancer Service with
 * `externalTrafficPolicy: Local`, HTTP 200 while this node has a ready local endpoint, 503 without, so an
 * outside load balancer sends traffic only to nodes that can serve it locally.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { SERVICE_NAME_LABEL } from '../lib/kube.ts';

export interface HealthCheck {
  port: number;
  namespace: string;
  name: string;
  /** Ready endpoints of the Service on this node. */
  local: number;
}

/** The health checks this node answers, one per Service that has a healthCheckNodePort, sorted by port. */
export function healthChecksOf(services: readonly V1Service[], slices: readonly V1EndpointSlice[], node: string): HealthCheck[] {
  const out: HealthCheck[] = [];
  for (const s of services) {
    const port = s.spec?.healthCheckNodePort;
    if (!port || s.spec?.externalTrafficPolicy !== 'Local') continue;
    const namespace = s.metadata?.namespace ?? '';
    const name = s.metadata?.name ?? '';
    // One endpoint per address of this node, whichever slice (and family) it is in.
    const local = new Set(slices
      .filter((sl) => sl.metadata?.namespace === namespace && sl.metadata.labels?.[SERVICE_NAME_LABEL] === name)
      .flatMap((sl) => (sl.endpoints ?? []).filter((e) => e.nodeName === node && (e.conditions?.ready ?? true)).map((e) => e.targetRef?.uid ?? e.addresses[0] ?? '')));
    out.push({ port, namespace, name, local: local.size });
  }
  return out.sort((a, b) => a.port - b.port);
}

/** What a health check answers: its status and kube-proxy's body. */
export function healthAnswer(h: HealthCheck): { status: number; body: string } {
  return {
    status: h.local > 0 ? 200 : 503,
    body: JSON.stringify({ service: { namespace: h.namespace, name: h.name }, localEndpoints: h.local, serviceProxyHealthy: true }),
  };
}

/** One HTTP server per health check port, opened and closed as the checks change; answers from the latest state. */
export class HealthServers {
  readonly #servers = new Map<number, Server>();
  #checks = new Map<number, HealthCheck>();
  readonly #log: (m: string) => void;

  constructor(log: (m: string) => void) {
    this.#log = log;
  }

  sync(checks: readonly HealthCheck[]): void {
    this.#checks = new Map(checks.map((c) => [c.port, c]));
    for (const [port, srv] of this.#servers) {
      if (this.#checks.has(port)) continue;
      srv.close();
      srv.closeAllConnections();
      this.#servers.delete(port);
    }
    for (const port of this.#checks.keys()) {
      if (this.#servers.has(port)) continue;
      const srv = createServer((_req, res) => {
        const h = this.#checks.get(port);
        const a = h ? healthAnswer(h) : { status: 503, body: '{}' };
        res.writeHead(a.status, { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' }).end(a.body);
      });
      srv.on('error', (err) => {
        this.#log(`health check port ${port}: ${err.message}`);
        this.#servers.delete(port);
      });
      srv.listen(port);
      this.#servers.set(port, srv);
    }
  }

  close(): void {
    for (const srv of this.#servers.values()) {
      srv.close();
      srv.closeAllConnections();
    }
    this.#servers.clear();
  }
}
