/** `demo`: the whole product on one machine, from signing a patch to a device set to boot the new image. */
import type { CommandModule } from 'yargs';

import { runDemo } from '../demo/index.js';

interface DemoArgs {
  old?: string;
  new?: string;
  keep: boolean;
}

const demo: CommandModule<object, DemoArgs> = {
  command: 'demo',
  describe: 'Run the whole upgrade story on this machine: sign, serve over TFTP, trigger by SNMP SET, follow by traps',
  builder: (yargs) =>
    yargs
      .option('old', { type: 'string', describe: 'real old image to use in place of the generated one (with --new)' })
      .option('new', { type: 'string', describe: 'real new image to use in place of the generated one (with --old)' })
      .option('keep', { type: 'boolean', default: false, describe: 'keep the work folder (keys, patches, flash) for a look afterwards' }),
  handler: async (args) => {
    const started = Date.now();
    const passed = await runDemo({ oldImage: args.old, newImage: args.new, keep: args.keep, print: (line) => process.stdout.write(`${line}\n`) });
    process.stdout.write(`demo ${passed ? 'finished' : 'FAILED'} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    if (!passed) process.exitCode = 1;
  },
};

export const demoCommands: CommandModule[] = [demo as CommandModule];
