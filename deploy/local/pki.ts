import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { dirs } from './config.ts';
import { run } from '../../lib/exec.ts';

const key = (n: string): string => join(dirs.pki, `${n}.key`);
export const crt = (n: string): string => join(dirs.pki, `${n}.crt`);
export const keyFile = key;
export const caCrt = (): string => crt('ca');

/** The cluster CA and the service-account key pair; kept across `up`s so certificates stay valid. */
export async function ensureCa(): Promise<boolean> {
  mkdirSync(dirs.pki, { recursive: true, mode: 0o700 });
  const made = !existsSync(crt('ca'));
  if (made) {
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key('ca'), '-out', crt('ca'),
      '-subj', '/CN=kovn-box-ca', '-days', '365', '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature']);
  }
  if (!existsSync(key('sa'))) {
    await run('openssl', ['genrsa', '-out', key('sa'), '2048']);
    await run('openssl', ['rsa', '-in', key('sa'), '-pubout', '-out', join(dirs.pki, 'sa.pub')]);
  }
  return made;
}

export const saPub = (): string => join(dirs.pki, 'sa.pub');
export const saKey = (): string => key('sa');

/**
 * A certificate signed by the cluster CA. With `sans` it is a serving (and client) certificate,
 * without it a client certificate; the subject carries the Kubernetes identity (O=group, CN=user).
 */
export async function ensureCert(name: string, subject: string, sans: readonly string[] = []): Promise<boolean> {
  if (existsSync(crt(name)) && existsSync(key(name))) return false;
  const csr = join(dirs.pki, `${name}.csr`);
  const ext = join(dirs.pki, `${name}.ext`);
  await run('openssl', ['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', key(name), '-out', csr, '-subj', subject]);
  writeFileSync(ext, sans.length > 0
    ? `subjectAltName=${sans.join(',')}\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n`
    : 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n');
  // A random serial per certificate: nodes are signed in parallel, and a shared ca.srl file races.
  const serial = `0x${randomBytes(16).toString('hex')}`;
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', crt('ca'), '-CAkey', key('ca'), '-set_serial', serial,
    '-days', '365', '-extfile', ext, '-out', crt(name)]);
  rmSync(csr);
  rmSync(ext);
  return true;
}

/** A kubeconfig that authenticates with a client certificate of the cluster CA. */
export function writeKubeconfig(file: string, server: string, certName: string): void {
  writeFileSync(file, `apiVersion: v1
kind: Config
clusters:
- name: kovn
  cluster: {server: "${server}", certificate-authority: "${crt('ca')}"}
users:
- name: ${certName}
  user: {client-certificate: "${crt(certName)}", client-key: "${key(certName)}"}
contexts:
- name: kovn
  context: {cluster: kovn, user: ${certName}}
current-context: kovn
`, { mode: 0o600 });
}
