import yargs, { type CommandModule } from 'yargs';

import { UpgradeError } from '../errors/index.js';
import { agentCommands } from './agent.js';
import { demoCommands } from './demo.js';
import { flashCommand } from './flash.js';
import { managerCommands } from './manager.js';
import { serveCommand } from './serve.js';
import { deviceCommands } from './upgrade.js';
import { vendorCommands } from './vendor.js';

// Each role's commands live in their own module; add a new module's commands here.
// NOTE: every command's implementation is imported at start, net-snmp included, so any command takes about
// 0.2 s to start on a 2-core machine against 0.07 s for Node alone. Importing a command's module in its handler
// would cut that.
const COMMANDS: CommandModule[] = [
  ...vendorCommands,
  flashCommand,
  ...deviceCommands,
  ...agentCommands,
  serveCommand as unknown as CommandModule,
  ...managerCommands,
  ...demoCommands,
];

/** Exit status for a failure this product reports with a cause code; 2 is kept for usage errors. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/**
 * Runs the `snmp-upgrade` program on the given arguments and returns its exit status. Failures that carry a
 * cause code are printed as one line, `snmp-upgrade: <message> (cause: <code>)`, on standard error.
 */
export async function runCli(args: string[]): Promise<number> {
  const parser = yargs(args)
    .scriptName('snmp-upgrade')
    .command(COMMANDS)
    .demandCommand(1, 'a command is required; see --help')
    .strict()
    .help()
    .version()
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .fail((message, error) => {
      // Throwing stops yargs before the handler runs, so a command with an unknown or missing option changes nothing.
      throw error ?? new UsageError(message);
    });

  try {
    await parser.parseAsync();
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`snmp-upgrade: ${error.message}\n`);
      return EXIT_USAGE;
    }
    if (error instanceof UpgradeError) {
      process.stderr.write(`snmp-upgrade: ${error.message} (cause: ${error.code})\n`);
      return EXIT_FAILURE;
    }
    throw error;
  }
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}

/** A command line yargs rejected: an unknown option, a missing one or a bad value. */
class UsageError extends Error {}
