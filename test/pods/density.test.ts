// 50 pods created at once on 2 nodes: all Ready, all addresses distinct, each reaches a pod on the other node.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { kubectlJson } from '../../deploy/local/kubectl.ts';
import { createPods, ping, useBox, waitReady } from './helpers.ts';
import type { PodJson } from './helpers.ts';

const N = 50;

describe('50 pods at once on 2 nodes', { timeout: 20 * 60_000 }, () => {
  useBox(['--nodes', '2']);

  test('all Ready with distinct addresses; each reaches a pod on the other node', { timeout: 15 * 60_000 }, async () => {
    const pods = Array.from({ length: N }, (_, i) => ({ name: `dense-${i}`, node: i % 2 === 0 ? 'node-1' : 'node-2' }));
    await createPods(pods);
    await waitReady(pods.map((p) => p.name), '600s');
    const list = await kubectlJson<{ items: PodJson[] }>(['get', 'pods', '-l', '!nothing']);
    const mine = list.items.filter((p) => p.metadata.name.startsWith('dense-'));
    assert.equal(mine.length, N);
    const ips = mine.map((p) => p.status.podIP ?? '');
    assert.equal(new Set(ips).size, N, 'all addresses distinct');
    const on = (node: string): PodJson[] => mine.filter((p) => p.spec.nodeName === node);
    const peer1 = on('node-2')[0]?.status.podIP ?? '';
    const peer2 = on('node-1')[0]?.status.podIP ?? '';
    const failures: string[] = [];
    for (const p of mine) {
      const target = p.spec.nodeName === 'node-1' ? peer1 : peer2;
      if (!(await ping(p.metadata.name, target))) failures.push(`${p.metadata.name} -> ${target}`);
    }
    assert.deepEqual(failures, []);
  });
});
