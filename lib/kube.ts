/** Kubernetes access for kovn's daemons: typed reads, merge patches of annotations, Events. */
import { createHash } from 'node:crypto';
import { CoreV1Api, DiscoveryV1Api, KubeConfig, NetworkingV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { V1EndpointSlice, V1Namespace, V1NetworkPolicy, V1Node, V1Pod, V1Service } from '@kubernetes/client-node';

export interface Kube {
  kc: KubeConfig;
  core: CoreV1Api;
  discovery: DiscoveryV1Api;
  networking: NetworkingV1Api;
  /** Who writes: the Event source and the patch field manager. */
  component: string;
}

type RequestContext = Parameters<KubeConfig['applySecurityAuthentication']>[0];

/**
 * client-node builds a new undici Agent for every request, so every call paid a TLS handshake on both
 * ends (the apiserver's CPU under a pod burst): the first Agent is kept and reused, with its pool. (The
 * method that builds them is private; the discarded ones never connect. kovn's client certificates are
 * read once at start, so keeping the first Agent's TLS material changes nothing.)
 */
class PooledKubeConfig extends KubeConfig {
  #dispatcher: ReturnType<RequestContext['getDispatcher']>;

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    this.#dispatcher ??= context.getDispatcher();
    if (this.#dispatcher) context.setDispatcher(this.#dispatcher);
  }
}

export function connectKube(kubeconfigFile: string, component: string): Kube {
  const kc = new PooledKubeConfig();
  kc.loadFromFile(kubeconfigFile);
  return { kc, core: kc.makeApiClient(CoreV1Api), discovery: kc.makeApiClient(DiscoveryV1Api), networking: kc.makeApiClient(NetworkingV1Api), component };
}

/** The API error's HTTP status, when the error came from the API. */
export function httpStatus(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** Rethrows API errors with `statusCode`, so the one classification in lib/errors.ts reads them. */
function rethrow(err: unknown, what: string): never {
  const status = httpStatus(err);
  const body = (err as { body?: unknown }).body;
  const msg = typeof body === 'string' ? body.slice(0, 300) : err instanceof Error ? err.message : String(err);
  throw Object.assign(new Error(`${what}: ${status ?? ''} ${msg}`), { statusCode: status });
}

/** One object by name: undefined when it does not exist (404), any other API error rethrown with its status. */
async function readOrAbsent<T>(what: string, read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (err) {
    if (httpStatus(err) === 404) return undefined;
    rethrow(err, `get ${what}`);
  }
}

export const getPod = (k: Kube, namespace: string, name: string): Promise<V1Pod | undefined> =>
  readOrAbsent(`pod ${namespace}/${name}`, () => k.core.readNamespacedPod({ name, namespace }));

export const getService = (k: Kube, namespace: string, name: string): Promise<V1Service | undefined> =>
  readOrAbsent(`service ${namespace}/${name}`, () => k.core.readNamespacedService({ name, namespace }));

export const getNetworkPolicy = (k: Kube, namespace: string, name: string): Promise<V1NetworkPolicy | undefined> =>
  readOrAbsent(`networkpolicy ${namespace}/${name}`, () => k.networking.readNamespacedNetworkPolicy({ name, namespace }));

export const getNamespace = (k: Kube, name: string): Promise<V1Namespace | undefined> => readOrAbsent(`namespace ${name}`, () => k.core.readNamespace({ name }));

/** A list call with its API error rethrown with its status. */
async function listed<T>(what: string, list: () => Promise<{ items: T[] }>): Promise<T[]> {
  try {
    return (await list()).items;
  } catch (err) {
    rethrow(err, `list ${what}`);
  }
}

/** The NetworkPolicies of a namespace, or of every namespace. */
export const listNetworkPolicies = (k: Kube, namespace?: string): Promise<V1NetworkPolicy[]> => listed('networkpolicies',
  () => (namespace ? k.networking.listNamespacedNetworkPolicy({ namespace }) : k.networking.listNetworkPolicyForAllNamespaces()));

/** The pods of a namespace, or of every namespace. */
export const listPods = (k: Kube, namespace?: string): Promise<V1Pod[]> => listed('pods',
  () => (namespace ? k.core.listNamespacedPod({ namespace }) : k.core.listPodForAllNamespaces()));

export const listNamespaces = (k: Kube): Promise<V1Namespace[]> => listed('namespaces', () => k.core.listNamespace());

/** The label that ties an EndpointSlice to its Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export async function listServiceSlices(k: Kube, namespace: string, name: string): Promise<V1EndpointSlice[]> {
  try {
    return (await k.discovery.listNamespacedEndpointSlice({ namespace, labelSelector: `${SERVICE_NAME_LABEL}=${name}` })).items;
  } catch (err) {
    rethrow(err, `list endpointslices of ${namespace}/${name}`);
  }
}

/** The node's InternalIPs, from its status, sorted. */
export const internalIps = (node: V1Node | undefined): string[] =>
  (node?.status?.addresses ?? []).filter((a) => a.type === 'InternalIP').map((a) => a.address).sort();

export const getNode = (k: Kube, name: string): Promise<V1Node | undefined> => readOrAbsent(`node ${name}`, () => k.core.readNode({ name }));

const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** Sets (or, with null, removes) annotations with a merge patch; only the keys named are touched. */
export async function annotatePod(k: Kube, namespace: string, name: string, annotations: Record<string, string | null>, resourceVersion?: string): Promise<void> {
  try {
    const metadata = { annotations, ...(resourceVersion ? { resourceVersion } : {}) };
    await k.core.patchNamespacedPod({ name, namespace, body: { metadata }, fieldManager: k.component }, merge);
  } catch (err) {
    rethrow(err, `annotate pod ${namespace}/${name}`);
  }
}

/** A merge patch of a Service, or of its status subresource. */
export async function patchService(k: Kube, namespace: string, name: string, body: object, subresource?: 'status'): Promise<void> {
  try {
    if (subresource) await k.core.patchNamespacedServiceStatus({ name, namespace, body, fieldManager: k.component }, merge);
    else await k.core.patchNamespacedService({ name, namespace, body, fieldManager: k.component }, merge);
  } catch (err) {
    rethrow(err, `patch service ${namespace}/${name}${subresource ? ' status' : ''}`);
  }
}

export async function annotateNode(k: Kube, name: string, annotations: Record<string, string | null>): Promise<void> {
  try {
    await k.core.patchNode({ name, body: { metadata: { annotations } }, fieldManager: k.component }, merge);
  } catch (err) {
    rethrow(err, `annotate node ${name}`);
  }
}

/**
 * Records an Event on an object, where `kubectl describe` shows it to the object's author. The same
 * reason on the same object again is one series: the Event's name is derived from them, so a repeat
 * bumps its count and lastTimestamp and takes the latest message (as client-go's correlator aggregates)
 * instead of adding an Event.
 */
export async function recordEvent(k: Kube, obj: { kind: string; apiVersion?: string; namespace?: string; name: string; uid?: string },
  type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
  const namespace = obj.namespace || 'default';
  const now = new Date();
  const text = message.slice(0, 1000);
  // One series per object, type and reason: a message that varies between retries (a timeout's kind, an
  // API error body) updates the series instead of starting another.
  const series = createHash('sha256').update([obj.kind, obj.namespace ?? '', obj.name, obj.uid ?? '', type, reason, k.component].join('\0')).digest('hex').slice(0, 16);
  const name = `${obj.name.slice(0, 200)}.${series}`;
  try {
    await k.core.createNamespacedEvent({
      namespace,
      body: {
        metadata: { name, namespace },
        involvedObject: { kind: obj.kind, name: obj.name, ...(obj.namespace ? { namespace: obj.namespace } : {}), ...(obj.uid ? { uid: obj.uid } : {}), apiVersion: obj.apiVersion ?? 'v1' },
        reason, message: text, type,
        source: { component: k.component },
        firstTimestamp: now, lastTimestamp: now, count: 1,
        reportingComponent: k.component, reportingInstance: k.component,
      },
    });
  } catch (err) {
    if (httpStatus(err) !== 409) rethrow(err, `record event on ${obj.kind} ${obj.name}`);
    try {
      const ev = await k.core.readNamespacedEvent({ name, namespace });
      await k.core.patchNamespacedEvent({ name, namespace, body: { count: (ev.count ?? 1) + 1, lastTimestamp: now, message: text } }, merge);
    } catch (e) {
      rethrow(e, `update event series on ${obj.kind} ${obj.name}`);
    }
  }
}

/** Restarts an informer whose watch dropped, with capped backoff (its cache stays as it was meanwhile), until `stopped`. */
export function restartOnError(informer: { on(e: 'error', cb: () => void): void; start(): Promise<void> }, stopped: () => boolean): void {
  let delay = 500;
  informer.on('error', () => {
    if (stopped()) return;
    setTimeout(() => void informer.start().then(() => { delay = 500; }, () => undefined), delay);
    delay = Math.min(delay * 2, 30_000);
  });
}
