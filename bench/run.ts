// `npm run bench -- NAME`: runs bench/NAME.ts, whose default export prints its figures and writes
// bench/results/NAME.json.
import { existsSync, readdirSync } from 'node:fs';

const name = process.argv[2];
const known = readdirSync(import.meta.dirname).filter((f) => f.endsWith('.ts') && f !== 'run.ts').map((f) => f.slice(0, -3));
if (!name || !known.includes(name) || !existsSync(new URL(`./${name}.ts`, import.meta.url))) {
  console.error(`usage: npm run bench -- NAME   (NAME: ${known.join(', ') || 'none yet'})`);
  process.exit(2);
}
const mod = (await import(`./${name}.ts`)) as { default?: (args: string[]) => Promise<void> };
if (typeof mod.default !== 'function') {
  console.error(`bench/${name}.ts has no default export to run`);
  process.exit(2);
}
await mod.default(process.argv.slice(3));
