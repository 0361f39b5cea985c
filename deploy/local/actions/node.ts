import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DNS, IMAGE, NET, dirs, files, nodeName, nodeNs } from '../config.ts';
import { caCrt, ensureCert, writeKubeconfig } from '../pki.ts';
import { ensureAddr, ensureIpv6, ensureNs, inNsOk, ip, underlayPort } from '../net.ts';
import { IMAGES, imageTar } from '../image.ts';
import { bin } from '../tools.ts';
import { SB_TCP } from './ovn-central.ts';
import { run, runRaw, sleep, succeeds } from '../../../lib/exec.ts';
import type { Component } from './types.ts';

/** Everything about node i that other parts of the box need to find. */
export function nodePaths(i: number) {
  const name = nodeName(i);
  const d = dirs.node(name);
  return {
    name,
    ns: nodeNs(i),
    ip: NET.nodeIp(i),
    dir: d,
    ovsDir: join(d, 'ovs'),
    ovsSock: join(d, 'ovs', 'db.sock'),
    vswitchdCtl: join(d, 'ovs', 'ovs-vswitchd.ctl'),
    containerdSock: join(d, 'containerd.sock'),
    kubeletDir: join(d, 'kubelet'),
    cniBinDir: join(d, 'cni', 'bin'),
    cniConfDir: join(d, 'cni', 'net.d'),
  };
}

export type NodePaths = ReturnType<typeof nodePaths>;

/** The node agent makes it from eth0 (OVN-Kubernetes' name for eth0's bridge). */
export const EXTERNAL_BRIDGE = 'breth0';

const ovsEnv = (p: NodePaths): Record<string, string> => ({
  OVS_RUNDIR: p.ovsDir, OVS_LOGDIR: p.ovsDir, OVS_DBDIR: p.ovsDir, OVN_RUNDIR: p.ovsDir, OVN_LOGDIR: p.ovsDir, OVN_DBDIR: p.ovsDir,
});

export const vsctl = (p: NodePaths, args: readonly string[]): Promise<string> =>
  run('ovs-vsctl', [`--db=unix:${p.ovsSock}`, '--timeout=20', ...args]);

/**
 * The node's namespace, its underlay port with the node's address and default route (through the
 * outside, as a real node's would be), directories and its kubelet client certificate. The node agent
 * makes the external bridge from eth0 and moves the address onto it. Returns false when everything was
 * there already.
 */
export async function prepareNode(i: number, dual = false): Promise<boolean> {
  const p = nodePaths(i);
  for (const d of [p.ovsDir, p.kubeletDir, p.cniBinDir, p.cniConfDir, join(p.dir, 'containerd')]) mkdirSync(d, { recursive: true });
  // containerd's CRI sets up each pod's lo with the reference `loopback` plugin, which nodes ship
  // (kubernetes-cni) beside whatever network provider they run.
  if (!existsSync(join(p.cniBinDir, 'loopback'))) copyFileSync(bin('loopback'), join(p.cniBinDir, 'loopback'));
  const made = await ensureNs(p.ns);
  if (made) {
    await underlayPort({ ns: p.ns, dev: 'eth0', peer: `ul-${p.name}`, ulNs: NET.underlayNs, bridge: NET.bridge });
    await ip(['-n', p.ns, 'addr', 'add', `${p.ip}/${NET.prefixLen}`, 'dev', 'eth0']);
    await ip(['-n', p.ns, 'route', 'replace', 'default', 'via', NET.outsideIp, 'dev', 'eth0']);
    if (dual) {
      await ensureIpv6(p.ns, ['eth0']);
      await ensureAddr(p.ns, 'eth0', `${NET.nodeIp6(i)}/${NET.underlay6.prefixLen}`);
      await ip(['-n', p.ns, '-6', 'route', 'replace', 'default', 'via', NET.outsideIp6, 'dev', 'eth0']);
    }
  }
  const cert = await ensureCert(p.name, `/O=system:nodes/CN=system:node:${p.name}`);
  if (cert) writeKubeconfig(join(p.dir, 'kubeconfig'), `https://${NET.cpIp}:6443`, p.name);
  return made || cert;
}

/**
 * br-int, where pods plug in (userspace datapath), and the node's chassis settings. The external bridge
 * (breth0, with the node's address) is the node agent's. Idempotent.
 */
async function bridges(p: NodePaths): Promise<void> {
  await vsctl(p, ['--may-exist', 'add-br', 'br-int', '--', 'set', 'bridge', 'br-int', 'datapath_type=netdev',
    'fail-mode=secure', 'other_config:disable-in-band=true']);
  await vsctl(p, ['set', 'open_vswitch', '.', `external_ids:system-id=${p.name}`, `external_ids:hostname=${p.name}`,
    `external_ids:ovn-remote=${SB_TCP}`, 'external_ids:ovn-encap-type=geneve', `external_ids:ovn-encap-ip=${p.ip}`,
    'external_ids:ovn-bridge=br-int', 'external_ids:ovn-bridge-datapath-type=netdev']);
}

function containerdConfig(p: NodePaths): string {
  return `version = 2
root = "${join(p.dir, 'containerd/root')}"
state = "${join(p.dir, 'containerd/state')}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "${p.containerdSock}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${IMAGE}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    Root = "${join(p.dir, 'containerd/runc')}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${p.cniBinDir}"
    conf_dir = "${p.cniConfDir}"
`;
}

function kubeletConfig(p: NodePaths): string {
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
localStorageCapacityIsolation: false
containerRuntimeEndpoint: unix://${p.containerdSock}
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: "${caCrt()}"}
authorization: {mode: AlwaysAllow}
readOnlyPort: 0
healthzPort: 10248
healthzBindAddress: 127.0.0.1
evictionHard: {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 250
# Pods resolve through the box's CoreDNS (the kube-dns Service). No host resolv.conf: its nameservers are
# outside the box, and its search domains are not the cluster's.
clusterDNS: ["${DNS.serviceIp}"]
clusterDomain: ${DNS.domain}
resolvConf: ""
`;
}

/** The daemons of node i, in start order. */
export function nodeComponents(i: number, dual = false): Component[] {
  const p = nodePaths(i);
  const env = ovsEnv(p);
  const n = (what: string): string => `${p.name}-${what}`;
  return [
    {
      name: n('ovsdb-server'),
      netns: p.ns,
      prepare: async () => {
        const db = join(p.ovsDir, 'conf.db');
        if (!existsSync(db)) await run('ovsdb-tool', ['create', db, '/usr/share/openvswitch/vswitch.ovsschema']);
      },
      daemon: {
        name: n('ovsdb-server'), netns: p.ns, cmd: 'ovsdb-server', env,
        args: [join(p.ovsDir, 'conf.db'), `--remote=punix:${p.ovsSock}`, `--unixctl=${join(p.ovsDir, 'ovsdb-server.ctl')}`,
          `--pidfile=${join(p.ovsDir, 'ovsdb-server.pid')}`, '--no-chdir', '-vconsole:info', '-vsyslog:off', '-vfile:off'],
      },
      health: () => succeeds('ovs-vsctl', [`--db=unix:${p.ovsSock}`, '--no-wait', '--timeout=2', 'get', 'open_vswitch', '.', '_uuid']),
      after: async () => void (await vsctl(p, ['--no-wait', 'init'])),
    },
    {
      name: n('ovs-vswitchd'),
      netns: p.ns,
      daemon: {
        name: n('ovs-vswitchd'), netns: p.ns, cmd: 'ovs-vswitchd', env,
        args: [`unix:${p.ovsSock}`, `--unixctl=${p.vswitchdCtl}`, `--pidfile=${join(p.ovsDir, 'ovs-vswitchd.pid')}`,
          '--no-chdir', '-vconsole:info', '-vsyslog:off', '-vfile:off'],
      },
      health: () => succeeds('ovs-appctl', ['-t', p.vswitchdCtl, 'version'], { timeoutMs: 3000 }),
      after: () => bridges(p),
    },
    {
      name: n('ovn-controller'),
      netns: p.ns,
      daemon: {
        name: n('ovn-controller'), netns: p.ns, cmd: 'ovn-controller', env,
        args: [`unix:${p.ovsSock}`, `--pidfile=${join(p.ovsDir, 'ovn-controller.pid')}`, '--no-chdir',
          '-vconsole:info', '-vsyslog:off', '-vfile:off'],
      },
      // Healthy once its chassis is in the Southbound DB with a GENEVE encap on the node's address.
      health: async () => {
        const r = await runRaw('ovn-sbctl', [`--db=unix:${files.sbSock}`, '--bare', '--columns=ip', 'find', 'Encap',
          `chassis_name=${p.name}`, 'type=geneve']);
        return r.code === 0 && r.stdout.trim() === p.ip;
      },
    },
    {
      name: n('containerd'),
      netns: p.ns,
      prepare: () => writeFileSync(join(p.dir, 'containerd.toml'), containerdConfig(p)),
      daemon: { name: n('containerd'), netns: p.ns, cmd: 'containerd', args: ['--config', join(p.dir, 'containerd.toml')] },
      health: () => succeeds('ctr', ['--address', p.containerdSock, 'version'], { timeoutMs: 3000 }),
      after: async () => {
        const have = (await run('ctr', ['--address', p.containerdSock, '-n', 'k8s.io', 'images', 'ls', '-q'])).split('\n');
        for (const image of IMAGES.filter((i) => !have.includes(i.ref))) {
          // The tar's index names the image (ref.name annotation). No --index-name: a second image of the same
          // name pointing at the index let GC take the manifest mid-import ("content digest ... not found").
          // The retry is for anything else transient on a containerd that has just started.
          for (let attempt = 1; ; attempt++) {
            const r = await runRaw('ctr', ['--address', p.containerdSock, '-n', 'k8s.io', 'images', 'import', imageTar(image)]);
            if (r.code === 0) break;
            if (attempt === 3) throw new Error(`importing ${image.ref} into ${p.name}'s containerd failed: ${(r.stderr + r.stdout).trim()}`);
            await sleep(500);
          }
        }
      },
    },
    {
      name: n('kubelet'),
      netns: p.ns,
      prepare: () => writeFileSync(join(p.dir, 'kubelet.yaml'), kubeletConfig(p)),
      daemon: {
        name: n('kubelet'), netns: p.ns, cmd: bin('kubelet'),
        args: ['--config', join(p.dir, 'kubelet.yaml'), '--kubeconfig', join(p.dir, 'kubeconfig'), '--hostname-override', p.name,
          '--node-ip', dual ? `${p.ip},${NET.nodeIp6(i)}` : p.ip,
          // One zone per node, so trafficDistribution (PreferSameZone) has zones to prefer.
          `--node-labels=topology.kubernetes.io/zone=zone-${i}`, '--root-dir', p.kubeletDir, '--cert-dir', join(p.kubeletDir, 'pki'), '--v=1'],
      },
      health: () => inNsOk(p.ns, 'curl', ['-sf', '-o', '/dev/null', '--max-time', '2', 'http://127.0.0.1:10248/healthz']),
      startTimeoutMs: 60_000,
    },
  ];
}


/**
 * Seeds every node's userspace tunnel neighbour cache with its peers' underlay MACs: without it the
 * first GENEVE packet to a peer is dropped while OVS resolves the peer (ENVIRONMENT.md).
 */
export async function seedTunnelNeighbours(count: number): Promise<string> {
  const macs: string[] = [];
  for (let i = 1; i <= count; i++) {
    // No bridge (a bare box, no agent yet): nothing tunnels there yet.
    const out = await runRaw('ip', ['-n', nodePaths(i).ns, '-o', 'link', 'show', 'dev', EXTERNAL_BRIDGE]);
    macs.push(/link\/ether ([0-9a-f:]{17})/.exec(out.stdout)?.[1] ?? '');
  }
  if (macs.some((m) => !m)) return 'skipped: not every node has its external bridge yet';
  for (let i = 1; i <= count; i++) {
    for (let j = 1; j <= count; j++) {
      if (i === j || !macs[j - 1]) continue;
      await run('ovs-appctl', ['-t', nodePaths(i).vswitchdCtl, 'tnl/neigh/set', EXTERNAL_BRIDGE, NET.nodeIp(j), macs[j - 1] ?? '']);
    }
  }
  return `${count * (count - 1)} entries`;
}
