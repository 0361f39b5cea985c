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
  status [--json]       health of every component and where to reach the box`;

const Flags = z.object({
  nodes: z.coerce.number().int().min(1).max(16).default(2),
  json: z.boolean().default(false),
  'ip-family': z.enum(['ipv4', 'dual']).default('ipv4'),
  bare: z.boolean().default(false),
});

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
