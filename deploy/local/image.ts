import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE, IMAGE } from './config.ts';
import { run } from '../../lib/exec.ts';

/** busybox applets the pod image links, enough for probes and tests (sh, httpd, nc, wget, ping, ip...). */
const APPLETS = ['sh', 'sleep', 'echo', 'cat', 'ls', 'httpd', 'nc', 'wget', 'ping', 'ping6', 'ip', 'hostname',
  'ifconfig', 'route', 'true', 'false', 'env', 'ps', 'kill', 'mkdir', 'touch', 'date', 'grep', 'awk', 'sed',
  'netstat', 'arp', 'nslookup', 'traceroute', 'head', 'tail', 'wc', 'seq', 'timeout', 'id', 'uname', 'top'];

const BUSYBOX = '/bin/busybox';

/** Path of the OCI layout tar of kovn.local/toolbox:1, keyed by the busybox binary it wraps. */
export function imageTar(): string {
  const h = createHash('sha256').update(readFileSync(BUSYBOX)).update(IMAGE).update(APPLETS.join(',')).digest('hex');
  return join(CACHE, 'images', `toolbox-${h.slice(0, 12)}.tar`);
}

/**
 * Builds the pod image (also the sandbox image) as an OCI image layout tar from Debian's busybox-static:
 * no registry is reachable, so the image is made here and imported into each node's containerd.
 */
export async function buildImage(): Promise<string> {
  const out = imageTar();
  if (existsSync(out)) return out;
  const work = `${out}.d-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  const rootfs = join(work, 'rootfs');
  const blobs = join(work, 'oci/blobs/sha256');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  mkdirSync(blobs, { recursive: true });
  for (const d of ['etc', 'tmp', 'proc', 'sys', 'dev', 'var/www', 'root']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync(BUSYBOX, join(rootfs, 'bin/busybox'));
  for (const a of APPLETS) symlinkSync('busybox', join(rootfs, 'bin', a));
  writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  writeFileSync(join(rootfs, 'var/www/index.html'), 'kovn toolbox\n');
  // A stable layer: fixed owner and mtime, so the same busybox gives the same digest.
  await run('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', rootfs, '-cf', join(work, 'layer.tar'), '.']);

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
    config: { Cmd: ['/bin/sleep', 'infinity'], Env: ['PATH=/bin'], WorkingDir: '/' },
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
      annotations: { 'org.opencontainers.image.ref.name': IMAGE },
    }],
  }));
  writeFileSync(join(work, 'oci/oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await run('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', join(work, 'oci'), '-cf', `${out}.tmp`, '.']);
  renameSync(`${out}.tmp`, out);
  rmSync(work, { recursive: true, force: true });
  return out;
}

export function imageSize(): number {
  return statSync(imageTar()).size;
}
