import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE, COREDNS_IMAGE, IMAGE } from './config.ts';
import { bin } from './tools.ts';
import { run } from '../../lib/exec.ts';

/**
 * An image the box builds itself (no registry is reachable): a single layer made from files on this
 * machine, imported into each node's containerd and run with `imagePullPolicy: Never`.
 */
export interface ImageSpec {
  ref: string;
  /** What decides the image's content besides `ref` and `config` (hashed into its cache name). */
  inputs: () => string[];
  /** Fills the root filesystem. */
  fill: (rootfs: string) => void;
  config: { Entrypoint?: string[]; Cmd?: string[]; Env: string[]; WorkingDir: string };
}

/** busybox applets the pod image links, enough for probes and tests (sh, httpd, nc, wget, ping, ip...). */
const APPLETS = ['sh', 'sleep', 'echo', 'cat', 'ls', 'httpd', 'nc', 'wget', 'ping', 'ping6', 'ip', 'hostname',
  'ifconfig', 'route', 'true', 'false', 'env', 'ps', 'kill', 'mkdir', 'touch', 'date', 'grep', 'awk', 'sed',
  'netstat', 'arp', 'nslookup', 'traceroute', 'head', 'tail', 'wc', 'seq', 'timeout', 'id', 'uname', 'top'];

const BUSYBOX = '/bin/busybox';

const baseDirs = (rootfs: string): void => {
  for (const d of ['etc', 'tmp', 'proc', 'sys', 'dev', 'root']) mkdirSync(join(rootfs, d), { recursive: true });
  writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
};

/** The pod image (also the sandbox image), from Debian's busybox-static. */
export const TOOLBOX: ImageSpec = {
  ref: IMAGE,
  inputs: () => [createHash('sha256').update(readFileSync(BUSYBOX)).digest('hex'), APPLETS.join(',')],
  fill: (rootfs) => {
    baseDirs(rootfs);
    mkdirSync(join(rootfs, 'bin'), { recursive: true });
    mkdirSync(join(rootfs, 'var/www'), { recursive: true });
    copyFileSync(BUSYBOX, join(rootfs, 'bin/busybox'));
    for (const a of APPLETS) symlinkSync('busybox', join(rootfs, 'bin', a));
    writeFileSync(join(rootfs, 'var/www/index.html'), 'kovn toolbox\n');
  },
  config: { Cmd: ['/bin/sleep', 'infinity'], Env: ['PATH=/bin'], WorkingDir: '/' },
};

/** The cluster DNS image: the CoreDNS binary built from tools/go/coredns (its cache dir is keyed by its sources). */
export const COREDNS: ImageSpec = {
  ref: COREDNS_IMAGE,
  inputs: () => [bin('coredns')],
  fill: (rootfs) => {
    baseDirs(rootfs);
    copyFileSync(bin('coredns'), join(rootfs, 'coredns'));
  },
  config: { Entrypoint: ['/coredns'], Env: [], WorkingDir: '/' },
};

export const IMAGES: readonly ImageSpec[] = [TOOLBOX, COREDNS];

/** Path of an image's OCI layout tar in the cache, keyed by everything that decides its content. */
export function imageTar(spec: ImageSpec): string {
  const h = createHash('sha256').update(spec.ref).update(JSON.stringify(spec.config));
  for (const i of spec.inputs()) h.update(i);
  const name = spec.ref.replace(/^.*\//, '').replace(/[^a-z0-9.-]/g, '-');
  return join(CACHE, 'images', `${name}-${h.digest('hex').slice(0, 12)}.tar`);
}

/** Builds an image as an OCI image layout tar (one reproducible layer), unless the cache has it. */
export async function buildImage(spec: ImageSpec): Promise<string> {
  const out = imageTar(spec);
  if (existsSync(out)) return out;
  const work = `${out}.d-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  const rootfs = join(work, 'rootfs');
  const blobs = join(work, 'oci/blobs/sha256');
  mkdirSync(rootfs, { recursive: true });
  mkdirSync(blobs, { recursive: true });
  spec.fill(rootfs);
  // A stable layer: fixed owner and mtime, so the same inputs give the same digest.
  const tar = (dir: string, dest: string): Promise<string> =>
    run('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', dir, '-cf', dest, '.']);
  await tar(rootfs, join(work, 'layer.tar'));

  const blob = (data: Buffer | string): { digest: string; size: number } => {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    const hex = createHash('sha256').update(buf).digest('hex');
    writeFileSync(join(blobs, hex), buf);
    return { digest: `sha256:${hex}`, size: buf.length };
  };
  const layer = blob(readFileSync(join(work, 'layer.tar')));
  const config = blob(JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: spec.config,
    rootfs: { type: 'layers', diff_ids: [layer.digest] },
  }));
  const manifest = blob(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
  }));
  writeFileSync(join(work, 'oci/index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      ...manifest,
      annotations: { 'org.opencontainers.image.ref.name': spec.ref },
    }],
  }));
  writeFileSync(join(work, 'oci/oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await tar(join(work, 'oci'), `${out}.tmp`);
  renameSync(`${out}.tmp`, out);
  rmSync(work, { recursive: true, force: true });
  return out;
}
