/**
 * Puts kovn's CNI plugin where the container runtime looks: a root-owned copy of the plugin binary
 * (cni/shim, built by deploy/local/tools.ts; in an image, shipped beside the agent) in the CNI bin dir,
 * and `10-kovn.conflist` in the conf dir. The conflist goes last: its presence is what turns the node
 * Ready, so the agent calls this only once its CNI server is serving.
 */
import { chmod, chown, copyFile, mkdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { describeIssues } from './zod-issues.ts';

/** File names the runtime sees. */
export const PLUGIN_NAME = 'kovn';
export const CONFLIST_NAME = '10-kovn.conflist';
/** Where installs before the Go plugin kept a Node interpreter and the plugin's JavaScript: removed. */
export const OLD_PLUGIN_DIR = `${PLUGIN_NAME}.d`;

const absPath = z.string().startsWith('/', 'not an absolute path');

export const InstallCniOptions = z.object({
  /** The runtime's CNI bin dir (containerd `bin_dir`). */
  binDir: absPath,
  /** The runtime's CNI conf dir (containerd `conf_dir`). */
  confDir: absPath,
  /** The agent's CNI socket, written into the config for the plugin. */
  agentSocket: absPath,
  /** The plugin binary to install (the box's build of cni/shim). */
  pluginBinary: absPath,
  /** Pod interface MTU written into the config; the agent's default when absent. */
  mtu: z.number().int().min(576).max(65535).optional(),
  /** Where the plugin logs one line per call. */
  logFile: absPath.optional(),
});
export type InstallCniOptions = z.input<typeof InstallCniOptions>;

/** What an install wrote, and whether each file changed (a second identical install changes nothing). */
export interface InstallCniResult {
  binary: string;
  conflist: string;
  binaryChanged: boolean;
  conflistChanged: boolean;
}

/**
 * Copies the plugin into the bin dir (root-owned, writable by root only: the runtime runs it as root,
 * so it never runs a file from a checkout someone else may write), then writes the conflist, each
 * atomically and only when it differs.
 */
export async function installCni(options: InstallCniOptions): Promise<InstallCniResult> {
  const r = InstallCniOptions.safeParse(options);
  if (!r.success) throw new Error(`installCni: ${describeIssues(r.error)}`);
  const o = r.data;
  const binary = join(o.binDir, PLUGIN_NAME);
  const conflist = join(o.confDir, CONFLIST_NAME);
  await mkdir(o.binDir, { recursive: true });
  const binaryChanged = await copyIfChanged(o.pluginBinary, binary, 0o755);
  await rm(join(o.binDir, OLD_PLUGIN_DIR), { recursive: true, force: true });
  const conflistChanged = await writeAtomic(conflist, conflistJson(o), 0o644);
  return { binary, conflist, binaryChanged, conflistChanged };
}

/** What an uninstall removed. */
export interface UninstallCniResult {
  removed: string[];
}

/** Removes the conflist first (no new pods come to kovn), then the plugin. Missing files are fine. */
export async function uninstallCni(options: { binDir: string; confDir: string }): Promise<UninstallCniResult> {
  const removed: string[] = [];
  for (const path of [join(options.confDir, CONFLIST_NAME), join(options.binDir, PLUGIN_NAME), join(options.binDir, OLD_PLUGIN_DIR)]) {
    const existed = await stat(path).then(() => true, () => false);
    await rm(path, { force: true, recursive: true });
    if (existed) removed.push(path);
  }
  return { removed };
}

/** The network config list: one kovn plugin. 1.0.0 for containerd 1.6; newer runtimes may pick 1.1.0. */
export function conflistJson(o: { agentSocket: string; mtu?: number | undefined; logFile?: string | undefined }): string {
  const plugin = { type: PLUGIN_NAME, agentSocket: o.agentSocket, ...(o.mtu ? { mtu: o.mtu } : {}), ...(o.logFile ? { logFile: o.logFile } : {}) };
  return `${JSON.stringify({ cniVersion: '1.0.0', cniVersions: ['1.0.0', '1.1.0'], name: 'kovn', plugins: [plugin] }, null, 2)}\n`;
}

/** Copies a file beside its target and renames it in, unless size and mtime already match. */
async function copyIfChanged(src: string, dst: string, mode: number): Promise<boolean> {
  const [a, b] = await Promise.all([stat(src), stat(dst).catch(() => undefined)]);
  // utimes() takes the time through a double of seconds: the copy's mtime can differ by a fraction of a ms.
  if (b && b.size === a.size && Math.abs(b.mtimeMs - a.mtimeMs) < 1.5 && b.uid === 0 && (b.mode & 0o777) === mode) return false;
  const tmp = join(dst, '..', `.${PLUGIN_NAME}.${process.pid}.${Date.now()}.tmp`);
  try {
    await copyFile(src, tmp);
    await chown(tmp, 0, 0);
    await chmod(tmp, mode);
    await utimes(tmp, a.atime, a.mtime);
    await rename(tmp, dst);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return true;
}

/** Write to a temp file beside `path` and rename over it, so readers never see half a file. */
async function writeAtomic(path: string, content: string, mode: number): Promise<boolean> {
  const current = await readFile(path, 'utf8').catch(() => undefined);
  if (current === content) {
    await chmod(path, mode);
    await chown(path, 0, 0);
    return false;
  }
  await mkdir(join(path, '..'), { recursive: true });
  // A dot name: the runtime ignores it while it is being written (it loads *.conf, *.conflist, *.json).
  const tmp = join(path, '..', `.${PLUGIN_NAME}.${process.pid}.${Date.now()}.tmp`);
  try {
    await writeFile(tmp, content, { mode });
    await chmod(tmp, mode); // writeFile's mode is masked by the umask
    await chown(tmp, 0, 0); // root's: the runtime runs it as root
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return true;
}
