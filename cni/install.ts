/**
 * Puts kovn's CNI plugin where the container runtime looks: a root-owned copy of the plugin and an
 * executable wrapper in the CNI bin dir, and `10-kovn.conflist` in the conf dir. The conflist goes last: its presence is what turns the node
 * Ready, so the agent calls this only once its CNI server is serving.
 */
import { chmod, chown, copyFile, mkdir, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stripTypeScriptTypes } from 'node:module';
import { z } from 'zod';
import { describeIssues } from './zod-issues.ts';

/** File names the runtime sees. */
export const PLUGIN_NAME = 'kovn';
export const CONFLIST_NAME = '10-kovn.conflist';
/** The plugin's entry point, by absolute path: containerd runs plugins with its own environment. */
export const PLUGIN_SCRIPT = fileURLToPath(new URL('./plugin.ts', import.meta.url));

const absPath = z.string().startsWith('/', 'not an absolute path');

export const InstallCniOptions = z.object({
  /** The runtime's CNI bin dir (containerd `bin_dir`). */
  binDir: absPath,
  /** The runtime's CNI conf dir (containerd `conf_dir`). */
  confDir: absPath,
  /** The agent's CNI socket, written into the config for the plugin. */
  agentSocket: absPath,
  /** The Node 24 binary that runs the plugin. */
  nodeBin: absPath,
  /** Pod interface MTU written into the config; the agent's default when absent. */
  mtu: z.number().int().min(576).max(65535).optional(),
  /** Where the plugin logs one line per call. */
  logFile: absPath.optional(),
  /**
   * Node's compile cache (NODE_COMPILE_CACHE) for the plugin: halves its start-up. Kept in the plugin's
   * own root-only directory in the bin dir (`kovn.d/compile-cache`), never beside a checkout or in a
   * world-writable place such as /tmp.
   */
  compileCache: z.boolean().default(false),
  /** The plugin script; this checkout's cni/plugin.ts unless given. */
  pluginScript: absPath.default(PLUGIN_SCRIPT),
});
export type InstallCniOptions = z.input<typeof InstallCniOptions>;

/** What an install wrote, and whether each file changed (a second identical install changes nothing). */
export interface InstallCniResult {
  binary: string;
  conflist: string;
  binaryChanged: boolean;
  conflistChanged: boolean;
}

/** Where the plugin's own copy lives, beside its wrapper in the runtime's bin dir. */
export const PLUGIN_DIR = `${PLUGIN_NAME}.d`;

/** The plugin script and every module it imports (relative imports only: the plugin needs no package). */
async function pluginSources(entry: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const visit = async (file: string): Promise<void> => {
    if (files.has(file)) return;
    const text = await readFile(file, 'utf8');
    files.set(file, text);
    for (const m of text.matchAll(/(?:from|import\()\s*'(\.\/[^']+\.ts)'/g)) await visit(join(dirname(file), m[1] ?? ''));
  };
  await visit(entry);
  return files;
}

const asJs = (f: string): string => f.replace(/\.ts$/, '.js');

/**
 * The plugin as plain JavaScript: types stripped once here rather than on every run (Node's type
 * stripping costs the plugin ~80 ms of CPU per call, and it runs for every ADD and DEL).
 */
const toJs = (ts: string): string =>
  stripTypeScriptTypes(ts, { mode: 'strip' }).replace(/((?:from|import\()\s*')(\.\/[^']+)\.ts'/g, "$1$2.js'");

/**
 * Copies the plugin into `<binDir>/kovn.d/`, root-owned and writable by root only, so what the runtime
 * runs as root never comes from a checkout that someone else may write. Returns whether anything changed.
 */
async function installPluginCopy(binDir: string, entry: string): Promise<{ script: string; changed: boolean }> {
  const dir = join(binDir, PLUGIN_DIR);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await chown(dir, 0, 0);
  await chmod(dir, 0o755);
  let changed = await writeAtomic(join(dir, 'package.json'), '{"type":"module"}\n', 0o644);
  const sources = await pluginSources(entry);
  const root = dirname(entry);
  for (const [file, text] of sources) {
    const rel = relative(root, file);
    if (rel.startsWith('..')) throw new Error(`CNI plugin module ${file} is outside ${root}`);
    changed = (await writeAtomic(join(dir, asJs(rel)), toJs(text), 0o644)) || changed;
  }
  return { script: join(dir, asJs(basename(entry))), changed };
}

/** Writes the plugin's copy and wrapper, then the conflist, each atomically and only when its content differs. */
export async function installCni(options: InstallCniOptions): Promise<InstallCniResult> {
  const r = InstallCniOptions.safeParse(options);
  if (!r.success) throw new Error(`installCni: ${describeIssues(r.error)}`);
  const o = r.data;
  const binary = join(o.binDir, PLUGIN_NAME);
  const conflist = join(o.confDir, CONFLIST_NAME);
  const copy = await installPluginCopy(o.binDir, o.pluginScript);
  // The interpreter too: the runtime runs it as root, so it is a root-owned copy, not the checkout's.
  const node = join(o.binDir, PLUGIN_DIR, 'node');
  const nodeChanged = await copyIfChanged(o.nodeBin, node, 0o755);
  let cache: string | undefined;
  if (o.compileCache) {
    cache = join(o.binDir, PLUGIN_DIR, 'compile-cache');
    await mkdir(cache, { recursive: true, mode: 0o700 });
    await chown(cache, 0, 0);
    await chmod(cache, 0o700);
  }
  const binaryChanged = (await writeAtomic(binary, wrapperScript(node, copy.script, cache), 0o755)) || copy.changed || nodeChanged;
  // Sources an older install copied as TypeScript: gone once the wrapper no longer runs them.
  const dir = join(o.binDir, PLUGIN_DIR);
  for (const f of await readdir(dir)) if (f.endsWith('.ts')) await rm(join(dir, f), { force: true });
  const conflistChanged = await writeAtomic(conflist, conflistJson(o), 0o644);
  return { binary, conflist, binaryChanged, conflistChanged };
}

/** What an uninstall removed. */
export interface UninstallCniResult {
  removed: string[];
}

/** Removes the conflist first (no new pods come to kovn), then the wrapper. Missing files are fine. */
export async function uninstallCni(options: { binDir: string; confDir: string }): Promise<UninstallCniResult> {
  const removed: string[] = [];
  for (const path of [join(options.confDir, CONFLIST_NAME), join(options.binDir, PLUGIN_NAME), join(options.binDir, PLUGIN_DIR)]) {
    const existed = await stat(path).then(() => true, () => false);
    await rm(path, { force: true, recursive: true });
    if (existed) removed.push(path);
  }
  return { removed };
}

/** The `#!/bin/sh` wrapper: interpreter and script by absolute path, arguments passed on. */
export function wrapperScript(nodeBin: string, pluginScript: string, compileCacheDir?: string): string {
  return [
    '#!/bin/sh',
    '# kovn CNI plugin, written by the kovn node agent (cni/install.ts). Do not edit.',
    ...(compileCacheDir ? [`NODE_COMPILE_CACHE=${shellQuote(compileCacheDir)}`, 'export NODE_COMPILE_CACHE'] : []),
    `exec ${shellQuote(nodeBin)} ${shellQuote(pluginScript)} "$@"`,
    '',
  ].join('\n');
}

/** The network config list: one kovn plugin. 1.0.0 for containerd 1.6; newer runtimes may pick 1.1.0. */
export function conflistJson(o: { agentSocket: string; mtu?: number | undefined; logFile?: string | undefined }): string {
  const plugin = { type: PLUGIN_NAME, agentSocket: o.agentSocket, ...(o.mtu ? { mtu: o.mtu } : {}), ...(o.logFile ? { logFile: o.logFile } : {}) };
  return `${JSON.stringify({ cniVersion: '1.0.0', cniVersions: ['1.0.0', '1.1.0'], name: 'kovn', plugins: [plugin] }, null, 2)}\n`;
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

/** Copies a (large) file beside its target and renames it in, unless size and mtime already match. */
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
