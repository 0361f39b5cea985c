// Lets `node --test ovsdb/` run the suite: Node treats a directory argument as a module to run
// (package.json "main"), so this entry imports every test file of the directory.
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('.', import.meta.url));
for (const f of readdirSync(dir).filter((n) => n.endsWith('.test.ts')).sort()) await import(`./${f}`);
