#!/usr/bin/env node
// kovn's command line: the cluster in a box (install, up, down, status) and, later, history and replay.
import { parseArgs } from 'node:util';
import { z } from 'zod';

const usage = `usage: kovn <command> [flags]
  install               install Debian packages, Go-built tools and the pod image (idempotent)
  up [--nodes N] [--ip-family ipv4|dual] [--bare]
                        bring the cluster in a box up with kovn in it (default 2 nodes, IPv4);
                        --bare: without kovn, as before a network provider is installed; idempotent
  down                  stop everything up started and remove what it made
  status [--json]       health of every component (restarts included) and where to reach the box
  stop NAME             stop one component and hold it down: its supervisor restarts it no more
                        until \`kovn start NAME\` (or \`kovn up\`, which brings everything up)
  start NAME            bring a component back under its supervisor and wait until it is healthy
  history <kind> <ns>/<name> [--json]
                        an object's change runs: trigger, outcome, duration, rows changed, node actions
                        (kind: any kind kovn reconciles, e.g. pod or node; cluster-scoped ones are
                        named without namespace: \`kovn history node node-1\`)
  replay <workflow-id>  re-run a failed change (e.g. \`kovn replay Pod/default/web\`) and wait for it
  trace <ns>/<pod> <destination> [PORT/PROTO] [--json]
                        the verdict for a packet from a pod to NS/POD, service/NS/NAME, node/NAME or an
                        address (PORT/PROTO: 80/tcp by default, 53/udp, 9/sctp or icmp): the ACL that
                        decides it, the policy and rule that own it, the run that wrote it`;

const Flags = z.object({
  nodes: z.coerce.number().int().min(1).max(16).default(2),
  json: z.boolean().default(false),
  'ip-family': z.enum(['ipv4', 'dual']).default('ipv4'),
  bare: z.boolean().default(false),
});

/** Where the box's (or the user's) Temporal frontend is. */
function temporalAddress(): string {
  return process.env.KOVN_TEMPORAL_ADDRESS ?? `127.0.0.1:${process.env.KOVN_TEMPORAL_PORT ?? 7233}`;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { nodes: { type: 'string' }, json: { type: 'boolean' }, 'ip-family': { type: 'string' }, bare: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  const [command] = positionals;
  if (values.help || !command) {
    console.log(usage);
    return command || values.help ? 0 : 2;
  }
  const parsed = Flags.safeParse(values);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) console.error(`kovn: --${issue.path.join('.')}: ${issue.message}`);
    return 2;
  }
  const flags = parsed.data;
  switch (command) {
    case 'install': {
      const { install } = await import('../deploy/local/install.ts');
      await install();
      return 0;
    }
    case 'up': {
      const { up } = await import('../deploy/local/up.ts');
      await up({ nodes: flags.nodes, bare: flags.bare, ipFamily: flags['ip-family'] });
      return 0;
    }
    case 'down': {
      const { down } = await import('../deploy/local/down.ts');
      await down();
      return 0;
    }
    case 'status': {
      const { status, printStatus } = await import('../deploy/local/status.ts');
      const s = await status();
      if (flags.json) console.log(JSON.stringify(s, null, 2));
      else printStatus(s);
      return s.healthy ? 0 : 1;
    }
    case 'stop':
    case 'start': {
      const { control } = await import('../deploy/local/control.ts');
      return control(command, positionals[1]);
    }
    case 'history': {
      const [, kindArg, ref] = positionals;
      const { KINDS, KIND_NAMES, kindFromCli } = await import('../lib/kinds.ts');
      const kind = kindFromCli(String(kindArg ?? ''));
      if (!kind || !ref) {
        console.error(`kovn history: usage: kovn history KIND [NAMESPACE/]NAME (KIND: ${KIND_NAMES.map((k) => k.toLowerCase()).join(', ')}; e.g. kovn history pod default/web, kovn history node node-1)`);
        return 2;
      }
      const clusterScoped = KINDS[kind].scope === 'Cluster';
      const [namespace, name] = clusterScoped ? ['', ref] : ref.includes('/') ? ref.split('/', 2) : ['default', ref];
      const { connectTemporal, formatHistory, history } = await import('../lib/history.ts');
      const t = await connectTemporal(temporalAddress(), 'kovn');
      try {
        const runs = await history(t.client, kind, namespace ?? '', name ?? '');
        console.log(flags.json ? JSON.stringify(runs, null, 2) : formatHistory(runs));
      } finally {
        await t.close();
      }
      return 0;
    }
    case 'replay': {
      const id = positionals[1];
      if (!id) {
        console.error('kovn replay: usage: kovn replay WORKFLOW-ID (as `kovn history` shows it)');
        return 2;
      }
      const { connectTemporal, formatHistory, replay } = await import('../lib/history.ts');
      const t = await connectTemporal(temporalAddress(), 'kovn');
      try {
        const run = await replay(t.client, id, `kovn replay by ${process.env.USER ?? 'operator'}`);
        console.log(flags.json ? JSON.stringify(run, null, 2) : formatHistory([run]));
        return run.status === 'COMPLETED' ? 0 : 1;
      } finally {
        await t.close();
      }
    }
    case 'trace': {
      const [, source, dest, what = '80/tcp'] = positionals;
      const m = /^(?:(\d{1,5})\/(tcp|udp|sctp)|icmp)$/.exec(what);
      if (!source || !dest || !m) {
        console.error('kovn trace: usage: kovn trace NS/POD DESTINATION [PORT/PROTO] (DESTINATION: NS/POD, service/NS/NAME, node/NAME or an address; PORT/PROTO: 80/tcp, 53/udp, 9/sctp or icmp)');
        return 2;
      }
      const { files } = await import('../deploy/local/config.ts');
      const { connectKube } = await import('../lib/kube.ts');
      const { connectTemporal } = await import('../lib/history.ts');
      const { formatTrace, trace } = await import('../lib/trace.ts');
      // Without Temporal the verdict still stands; only the run that wrote the ACL is missing.
      const t = await connectTemporal(temporalAddress(), 'kovn').catch(() => undefined);
      try {
        const r = await trace(connectKube(files.adminKubeconfig, 'kovn-trace'), { nb: `unix:${files.nbSock}`, sb: `unix:${files.sbSock}` },
          { source, destination: dest, port: Number(m[1] ?? 0), protocol: (m[2] ?? 'icmp') as 'tcp' | 'udp' | 'sctp' | 'icmp' }, t?.client);
        console.log(flags.json ? JSON.stringify(r, null, 2) : formatTrace(r));
        return 0;
      } finally {
        await t?.close();
      }
    }
    default:
      console.error(`kovn: unknown command ${JSON.stringify(command)}\n${usage}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`kovn: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
