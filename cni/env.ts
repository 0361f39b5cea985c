/**
 * The CNI environment: CNI_COMMAND and the attachment parameters, with the requirements of each command
 * (SPEC.md section 2), and CNI_ARGS with the keys Kubernetes runtimes pass.
 */
import { z } from 'zod';
import { DNS_LABEL, DNS_SUBDOMAIN, POD_UID } from '../lib/names.ts';
import { CNI_ERR_INVALID_ENV, CniError } from './errors.ts';
import { describeIssues, issuePaths } from './zod-issues.ts';

export const CNI_COMMANDS = ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION'] as const;
export type CniCommand = (typeof CNI_COMMANDS)[number];

/** The spec's rule for container IDs and network names. */
export const CNI_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

const containerId = z.string().regex(CNI_NAME_RE, 'invalid characters in container ID');
/** Linux interface names: 1-15 bytes, not "." or "..", no "/", ":" or whitespace. */
export const ifname = z.string().min(1).max(15, 'longer than 15 characters')
  .refine((n) => n !== '.' && n !== '..' && !/[/:\s]/.test(n), 'not a valid interface name');
const netns = z.string().startsWith('/', 'not an absolute path');

/** Which attachment parameters each command needs (DEL may come after the namespace is gone). */
const REQUIRED: Record<CniCommand, { containerId: boolean; netns: boolean; ifname: boolean }> = {
  ADD: { containerId: true, netns: true, ifname: true },
  CHECK: { containerId: true, netns: true, ifname: true },
  DEL: { containerId: true, netns: false, ifname: true },
  STATUS: { containerId: false, netns: false, ifname: false },
  GC: { containerId: false, netns: false, ifname: false },
  VERSION: { containerId: false, netns: false, ifname: false },
};

/** An empty variable counts as unset, as the spec's runtimes treat it. */
const unsetIfEmpty = (v: unknown): unknown => (v === '' ? undefined : v);
const required = <T extends z.ZodType<string, string>>(s: T, command: string) =>
  z.preprocess(unsetIfEmpty, z.string({ error: `required for ${command}` }).pipe(s));
const optional = <T extends z.ZodType>(s: T) => z.preprocess(unsetIfEmpty, s.optional());

/** CNI_ARGS keys kovn reads; any other key is an error unless IgnoreUnknown is set (as in libcni). */
const KNOWN_ARGS = new Set(['K8S_POD_NAMESPACE', 'K8S_POD_NAME', 'K8S_POD_UID', 'K8S_POD_INFRA_CONTAINER_ID', 'IgnoreUnknown']);

const ARG_FORMATS: Record<string, { re: RegExp; what: string }> = {
  K8S_POD_NAMESPACE: { re: DNS_LABEL, what: 'a namespace name (DNS-1123 label)' },
  K8S_POD_NAME: { re: DNS_SUBDOMAIN, what: 'a pod name (DNS-1123 subdomain)' },
  K8S_POD_UID: { re: POD_UID, what: 'a pod UID' },
};

export interface CniArgs {
  K8S_POD_NAMESPACE?: string;
  K8S_POD_NAME?: string;
  K8S_POD_UID?: string;
  K8S_POD_INFRA_CONTAINER_ID?: string;
  IgnoreUnknown?: boolean;
}

/** Parses "K=V;K=V" (the spec's CNI_ARGS form); reports the bad pair or key. */
export const CniArgsString = z.string().transform((text, ctx): CniArgs => {
  const pairs: [string, string][] = [];
  for (const part of text.split(';')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) {
      ctx.addIssue({ code: 'custom', message: `"${part}" is not KEY=VALUE` });
      return z.NEVER;
    }
    pairs.push([part.slice(0, eq), part.slice(eq + 1)]);
  }
  const ignoreUnknown = pairs.some(([k, v]) => k === 'IgnoreUnknown' && /^(1|true)$/i.test(v));
  const out: CniArgs & Record<string, string | boolean> = {};
  for (const [k, v] of pairs) {
    if (!KNOWN_ARGS.has(k)) {
      if (!ignoreUnknown) ctx.addIssue({ code: 'custom', path: [k], message: 'unknown argument (set IgnoreUnknown=1 to allow)' });
      continue;
    }
    out[k] = k === 'IgnoreUnknown' ? ignoreUnknown : v;
  }
  // Names become OVN port names, interface ids and API paths: only what Kubernetes itself allows.
  for (const [k, check] of Object.entries(ARG_FORMATS)) {
    const v = out[k];
    if (typeof v === 'string' && v !== '' && !check.re.test(v)) ctx.addIssue({ code: 'custom', path: [k], message: `${JSON.stringify(v.slice(0, 80))} is not ${check.what}` });
  }
  return out;
});

/** The validated environment of one plugin call. Parameters a command does not need are null. */
export interface CniEnv {
  command: CniCommand;
  containerId: string | null;
  netns: string | null;
  ifname: string | null;
  args: CniArgs;
  /** CNI_PATH split on ":" (kovn delegates to no plugin; kept for completeness). */
  path: string[];
}

const Command = z.preprocess(unsetIfEmpty, z.enum(CNI_COMMANDS, {
  error: (iss) => (iss.input === undefined ? 'required' : `unknown command ${JSON.stringify(iss.input)}`),
}));

/** Validates the environment; a CniError with code 4 naming the bad variables otherwise. */
export function parseCniEnv(env: Record<string, string | undefined>): CniEnv {
  const cmd = Command.safeParse(env.CNI_COMMAND);
  if (!cmd.success) throw invalidEnv(cmd.error, 'CNI_COMMAND');
  const command = cmd.data;
  const need = REQUIRED[command];
  const schema = z.object({
    CNI_CONTAINERID: need.containerId ? required(containerId, command) : optional(z.string()),
    CNI_NETNS: need.netns ? required(netns, command) : optional(z.string()),
    CNI_IFNAME: need.ifname ? required(ifname, command) : optional(z.string()),
    CNI_ARGS: optional(command === 'VERSION' ? z.string() : CniArgsString),
    CNI_PATH: optional(z.string()),
  });
  const r = schema.safeParse(env);
  if (!r.success) throw invalidEnv(r.error);
  const attach = command === 'ADD' || command === 'DEL' || command === 'CHECK';
  return {
    command,
    containerId: attach ? r.data.CNI_CONTAINERID ?? null : null,
    netns: attach ? r.data.CNI_NETNS ?? null : null,
    ifname: attach ? r.data.CNI_IFNAME ?? null : null,
    args: typeof r.data.CNI_ARGS === 'object' ? r.data.CNI_ARGS : {},
    path: (r.data.CNI_PATH ?? '').split(':').filter((p) => p !== ''),
  };
}

function invalidEnv(error: z.ZodError, prefix = ''): CniError {
  // The spec wants the names of the invalid variables in the message itself.
  const names = issuePaths(error, prefix).map((p) => p.split(/[.[]/)[0]);
  return new CniError(CNI_ERR_INVALID_ENV, `invalid environment variables [${[...new Set(names)].join(',')}]`, describeIssues(error, prefix));
}
