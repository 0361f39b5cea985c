import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { NET, dirs, files, PORTS } from '../config.ts';
import { caCrt, crt, ensureCert, keyFile, saKey, saPub, writeKubeconfig } from '../pki.ts';
import { inNsOk } from '../net.ts';
import { bin } from '../tools.ts';
import type { Component } from './types.ts';
import { clusterConfig } from './kovn.ts';
import type { IpFamily } from './kovn.ts';

const ns = NET.cpNs;
const API_INNER = 'https://127.0.0.1:6443';
const curlIn = (url: string, extra: readonly string[] = []): Promise<boolean> =>
  inNsOk(ns, 'curl', ['-sf', '-o', '/dev/null', '--max-time', '2', ...extra, url]);

/** Certificates and kubeconfigs of the control plane and the admin user. */
export async function controlPlaneCerts(): Promise<boolean> {
  const made = [await ensureCert('apiserver', '/CN=kube-apiserver', [
    'IP:127.0.0.1', `IP:${NET.cpIp}`, `IP:${NET.apiserverServiceIp}`, 'DNS:localhost', 'DNS:kubernetes',
    'DNS:kubernetes.default', 'DNS:kubernetes.default.svc', 'DNS:kubernetes.default.svc.cluster.local',
  ]),
  await ensureCert('admin', '/O=system:masters/CN=kovn-admin'),
  await ensureCert('apiserver-kubelet-client', '/O=system:masters/CN=kube-apiserver-kubelet-client'),
  await ensureCert('kube-controller-manager', '/CN=system:kube-controller-manager'),
  await ensureCert('kube-scheduler', '/CN=system:kube-scheduler')];
  writeKubeconfig(files.adminKubeconfig, `https://127.0.0.1:${PORTS.apiserver}`, 'admin');
  writeKubeconfig(join(dirs.pki, 'admin-cp.kubeconfig'), API_INNER, 'admin');
  writeKubeconfig(join(dirs.pki, 'kube-controller-manager.kubeconfig'), API_INNER, 'kube-controller-manager');
  writeKubeconfig(join(dirs.pki, 'kube-scheduler.kubeconfig'), API_INNER, 'kube-scheduler');
  return made.some(Boolean);
}

/** The control plane; a dual-stack box's apiserver and controller-manager get a service range per family. */
export function controlPlane(family: IpFamily = 'ipv4'): Component[] {
  const serviceRanges = clusterConfig(family).serviceNetworks.join(',');
  const kcmKc = join(dirs.pki, 'kube-controller-manager.kubeconfig');
  const schedKc = join(dirs.pki, 'kube-scheduler.kubeconfig');
  return [
    {
      name: 'etcd',
      netns: ns,
      prepare: () => void mkdirSync(dirs.etcd, { recursive: true, mode: 0o700 }),
      daemon: {
        name: 'etcd', netns: ns, cmd: bin('etcd'),
        args: ['--data-dir', dirs.etcd, '--name', 'kovn', '--listen-client-urls', 'http://127.0.0.1:2379',
          '--advertise-client-urls', 'http://127.0.0.1:2379', '--listen-peer-urls', 'http://127.0.0.1:2380',
          '--initial-advertise-peer-urls', 'http://127.0.0.1:2380', '--initial-cluster', 'kovn=http://127.0.0.1:2380',
          '--unsafe-no-fsync', '--log-level', 'warn', '--quota-backend-bytes', String(2 * 1024 ** 3)],
      },
      health: () => curlIn('http://127.0.0.1:2379/health'),
    },
    {
      name: 'kube-apiserver',
      netns: ns,
      daemon: {
        name: 'kube-apiserver', netns: ns, cmd: bin('kube-apiserver'),
        args: ['--etcd-servers', 'http://127.0.0.1:2379', '--bind-address', '0.0.0.0', '--advertise-address', NET.cpIp,
          '--secure-port', '6443', '--tls-cert-file', crt('apiserver'), '--tls-private-key-file', keyFile('apiserver'),
          '--client-ca-file', caCrt(), '--authorization-mode', 'Node,RBAC', '--enable-admission-plugins', 'NodeRestriction',
          '--kubelet-preferred-address-types', 'InternalIP,Hostname',
          '--kubelet-client-certificate', crt('apiserver-kubelet-client'), '--kubelet-client-key', keyFile('apiserver-kubelet-client'),
          '--service-cluster-ip-range', serviceRanges, '--service-account-issuer', 'https://kubernetes.default.svc',
          '--service-account-key-file', saPub(), '--service-account-signing-key-file', saKey(),
          '--allow-privileged=true', '--profiling=false', '--v=1'],
      },
      health: () => curlIn('https://127.0.0.1:6443/readyz', ['--cacert', caCrt(), '--cert', crt('admin'), '--key', keyFile('admin')]),
      startTimeoutMs: 90_000,
    },
    {
      name: 'kube-controller-manager',
      netns: ns,
      daemon: {
        name: 'kube-controller-manager', netns: ns, cmd: bin('kube-controller-manager'),
        args: ['--kubeconfig', kcmKc, '--authentication-kubeconfig', kcmKc, '--authorization-kubeconfig', kcmKc,
          '--service-account-private-key-file', saKey(), '--root-ca-file', caCrt(),
          '--cluster-signing-cert-file', caCrt(), '--cluster-signing-key-file', keyFile('ca'),
          '--use-service-account-credentials', '--controllers', '*,-cloud-node-lifecycle', '--leader-elect=false',
          '--allocate-node-cidrs=false', '--service-cluster-ip-range', serviceRanges,
          '--bind-address', '127.0.0.1', '--secure-port', '10257', '--profiling=false'],
      },
      health: () => curlIn('https://127.0.0.1:10257/healthz', ['-k']),
    },
    {
      name: 'kube-scheduler',
      netns: ns,
      daemon: {
        name: 'kube-scheduler', netns: ns, cmd: bin('kube-scheduler'),
        args: ['--kubeconfig', schedKc, '--authentication-kubeconfig', schedKc, '--authorization-kubeconfig', schedKc,
          '--leader-elect=false', '--bind-address', '127.0.0.1', '--secure-port', '10259', '--profiling=false'],
      },
      health: () => curlIn('https://127.0.0.1:10259/healthz', ['-k']),
    },
  ];
}

