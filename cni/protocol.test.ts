/**
 * Pure parts of the protocol: environment rules per command, CNI_ARGS, result rendering per version.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CniResult, isCniError, parseCniEnv, resultForVersion } from './protocol.ts';
import { compareVersions } from './versions.ts';

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return isCniError(err) ? `${err.code} ${err.msg}` : String(err);
  }
};

describe('parseCniEnv', () => {
  const base = { CNI_CONTAINERID: 'abc', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0' };
  const table: [string, Record<string, string>, string][] = [
    ['ADD with all parameters', { CNI_COMMAND: 'ADD', ...base }, 'ok'],
    ['ADD without netns', { CNI_COMMAND: 'ADD', ...base, CNI_NETNS: '' }, '4 invalid environment variables [CNI_NETNS]'],
    ['ADD with a relative netns', { CNI_COMMAND: 'ADD', ...base, CNI_NETNS: 'netns' }, '4 invalid environment variables [CNI_NETNS]'],
    ['CHECK without ifname or container', { CNI_COMMAND: 'CHECK', CNI_NETNS: '/n' }, '4 invalid environment variables [CNI_CONTAINERID,CNI_IFNAME]'],
    ['DEL without netns', { CNI_COMMAND: 'DEL', ...base, CNI_NETNS: '' }, 'ok'],
    ['STATUS with nothing', { CNI_COMMAND: 'STATUS' }, 'ok'],
    ['GC with nothing', { CNI_COMMAND: 'GC' }, 'ok'],
    ['a lower-case command', { CNI_COMMAND: 'add', ...base }, '4 invalid environment variables [CNI_COMMAND]'],
    ['an interface name with a colon', { CNI_COMMAND: 'ADD', ...base, CNI_IFNAME: 'eth0:1' }, '4 invalid environment variables [CNI_IFNAME]'],
    ['a CNI_ARGS pair without "="', { CNI_COMMAND: 'ADD', ...base, CNI_ARGS: 'K8S_POD_NAME' }, '4 invalid environment variables [CNI_ARGS]'],
    ['a pod name that is no DNS name', { CNI_COMMAND: 'ADD', ...base, CNI_ARGS: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=../Web_1' }, '4 invalid environment variables [CNI_ARGS]'],
    ['a namespace that is no DNS label', { CNI_COMMAND: 'ADD', ...base, CNI_ARGS: 'K8S_POD_NAMESPACE=a.b;K8S_POD_NAME=web' }, '4 invalid environment variables [CNI_ARGS]'],
  ];
  for (const [name, env, want] of table) it(name, () => assert.equal(codeOf(() => parseCniEnv(env)), want));

  it('parses CNI_ARGS and splits CNI_PATH; unused parameters are null', () => {
    const e = parseCniEnv({ CNI_COMMAND: 'DEL', ...base, CNI_NETNS: '', CNI_PATH: '/opt/cni/bin:/usr/lib/cni',
      CNI_ARGS: 'IgnoreUnknown=true;K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns-1;K8S_POD_UID=u1;K8S_POD_INFRA_CONTAINER_ID=abc;OTHER=x' });
    assert.deepEqual(e, {
      command: 'DEL', containerId: 'abc', netns: null, ifname: 'eth0', path: ['/opt/cni/bin', '/usr/lib/cni'],
      args: { IgnoreUnknown: true, K8S_POD_NAMESPACE: 'kube-system', K8S_POD_NAME: 'coredns-1', K8S_POD_UID: 'u1', K8S_POD_INFRA_CONTAINER_ID: 'abc' },
    });
    assert.deepEqual(parseCniEnv({ CNI_COMMAND: 'STATUS', ...base }).containerId, null);
  });
});

describe('resultForVersion', () => {
  const result = CniResult.parse({
    interfaces: [{ name: 'eth0', mac: '0a:58:00:00:00:01', mtu: 1400, sandbox: '/n', pciID: '0000:00:01.0' }],
    ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 0 }, { address: 'fd00::2/64', interface: 0 }],
    routes: [{ dst: '0.0.0.0/0', gw: '10.0.0.1', mtu: 1400, priority: 10 }],
  });
  it('1.1.0 keeps everything', () => {
    assert.deepEqual(resultForVersion(result, '1.1.0'), { cniVersion: '1.1.0', ...result });
  });
  it('1.0.0 drops the 1.1 fields', () => {
    const r = resultForVersion(result, '1.0.0');
    assert.deepEqual(r.interfaces, [{ name: 'eth0', mac: '0a:58:00:00:00:01', sandbox: '/n' }]);
    assert.deepEqual(r.routes, [{ dst: '0.0.0.0/0', gw: '10.0.0.1' }]);
    assert.ok(r.ips.every((i) => i.version === undefined));
  });
  it('0.4.0 and 0.3.x add the IP version', () => {
    assert.deepEqual(resultForVersion(result, '0.3.0').ips.map((i) => i.version), ['4', '6']);
  });
  it('an IP pointing past the interfaces is invalid, at its path', () => {
    const r = CniResult.safeParse({ interfaces: [], ips: [{ address: '10.0.0.2/24', interface: 0 }] });
    assert.equal(r.success, false);
    assert.deepEqual(r.error?.issues[0]?.path, ['ips', 0, 'interface']);
  });
  it('compareVersions orders numerically', () => {
    assert.deepEqual([compareVersions('0.10.0', '0.4.0'), compareVersions('1.0.0', '1.0.0'), compareVersions('0.3.1', '1.1.0')], [1, 0, -1]);
  });
});
