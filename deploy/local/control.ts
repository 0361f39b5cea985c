/**
 * `kovn stop NAME` and `kovn start NAME`: one component held down on purpose (its supervisor and the
 * daemon stopped, the hold remembered in `.kovn/supervise/NAME.held`), and brought back. `kovn up` brings
 * every component up, held ones too; `kovn down` forgets every hold.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirs } from './config.ts';
import { workflowBundle } from './actions/kovn.ts';
import { boxComponents } from './components.ts';
import { holdFile, stopDaemon } from './proc.ts';
import { step } from './progress.ts';
import { ensure, recorded } from './up.ts';

/** Runs `kovn stop|start NAME`; returns the exit code (2 with the list of names for an unknown one). */
export async function control(command: 'start' | 'stop', name: string | undefined): Promise<number> {
  const shape = recorded();
  if (!shape) {
    console.error(`kovn ${command}: the box is not up (run \`kovn up\`)`);
    return 1;
  }
  const { central, nodes } = boxComponents(shape);
  const names = [...central, ...nodes.flat()].map((c) => c.name);
  if (!name || !names.includes(name)) {
    console.error(`kovn ${command}: ${name ? `no component named ${JSON.stringify(name)}` : 'usage: kovn ' + command + ' NAME'}; the box has:\n  ${names.join('\n  ')}`);
    return 2;
  }
  if (command === 'stop') {
    mkdirSync(dirs.supervise, { recursive: true });
    writeFileSync(holdFile(name), `${new Date().toISOString()}\n`); // before the stop: `kovn status` never shows it restarting
    await step(`${name} stopped and held down (until \`kovn start ${name}\` or \`kovn up\`)`,
      async () => ((await stopDaemon(name)) ? '' : 'was not running'), true);
    return 0;
  }
  // kovn's daemons are configured with the box's workflow bundle (the same file `up` made).
  const bundle = shape.bare ? '' : (await workflowBundle()).file;
  const all = boxComponents(shape, bundle);
  const c = [...all.central, ...all.nodes.flat()].find((x) => x.name === name);
  if (c) await step(name, () => ensure(c), true);
  return 0;
}
