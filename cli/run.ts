import yargs, { type Arguments, type CommandModule } from 'yargs';

import { UpgradeError } from '../errors/index.js';

/** Loads the vendor's commands, `keygen` and `patch`. */
const loadVendorCommands = async (): Promise<CommandModule[]> => (await import('./vendor.js')).vendorCommands;

/**
 * Loaders of each role's commands by top-level command name. Add a new module's commands here. A command's module,
 * and everything it imports (net-snmp for the agent and the manager), loads only when that command runs.
 */
const COMMAND_LOADERS: Readonly<Record<string, () => Promise<CommandModule[]>>> = {
  keygen: loadVendorCommands,
  patch: loadVendorCommands,
  flash: async () => [(await import('./flash.js')).flashCommand],
  upgrade: async () => (await import('./upgrade.js')).deviceCommands,
  agent: async () => (await import('./agent.js')).agentCommands,
  serve: async () => [(await import('./serve.js')).serveCommand as unknown as CommandModule],
  manager: async () => (await import('./manager.js')).managerCommands,
  demo: async () => (await import('./demo.js')).demoCommands,
};

/**
 * Returns the commands the arguments can run: those of the module that defines the first argument, or every
 * command when the first argument names none (top-level help, a misspelt command, an option first).
 */
async function loadCommands(args: readonly string[]): Promise<CommandModule[]> {
  const name = args[0];
  if (name !== undefined && Object.hasOwn(COMMAND_LOADERS, name)) return COMMAND_LOADERS[name]();

  const commands: CommandModule[] = [];
  for (const load of new Set(Object.values(COMMAND_LOADERS))) commands.push(...(await load()));
  return commands;
}

/** Exit status for a failure this product reports with a cause code; 2 is kept for usage errors. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/**
 * Runs the `snmp-upgrade` program on the given arguments and returns its exit status. Failures that carry a
 * cause code are printed as one line, `snmp-upgrade: <message> (cause: <code>)`, on standard error. With
 * `--json`, each failure is also one JSON line on standard output, for scripts that parse that output.
 */
export async function runCli(args: string[]): Promise<number> {
  const json = args.includes('--json');
  const unknown = unknownOptionWithoutCommand(args);
  if (unknown !== undefined) return reportUsageError(`Unknown argument: ${unknown}`, json);

  const parser = yargs(args)
    .scriptName('snmp-upgrade')
    .command(await loadCommands(args))
    .demandCommand(1, 'a command is required; see --help')
    .check((argv, options) => checkOptionValues(argv, options, args), true)
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
    if (error instanceof UsageError) return reportUsageError(error.message, json);
    if (error instanceof UpgradeError) {
      process.stderr.write(`snmp-upgrade: ${error.message} (cause: ${error.code})\n`);
      if (json) writeJsonError(EXIT_FAILURE, error.message, error.code);
      return EXIT_FAILURE;
    }
    throw error;
  }
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}

function reportUsageError(message: string, json: boolean): number {
  process.stderr.write(`snmp-upgrade: ${message}\n`);
  if (json) writeJsonError(EXIT_USAGE, message);
  return EXIT_USAGE;
}

/** Writes a failure as the last JSON line of a command's output: its exit status, message and cause code, if any. */
function writeJsonError(exitStatus: number, message: string, cause?: string): void {
  const line = { time: new Date().toISOString(), event: 'error', exitStatus, message, ...(cause === undefined ? {} : { cause }) };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/**
 * Rejects an option given more than once unless the command declares it repeatable (`--key`, `--trust-key`).
 * yargs would hand such an option to the command as a list, which ended in a type error (`--flash a --flash b`)
 * or in a file name made of both values (`a,b`). Also rejects a number option whose value is not a number,
 * which yargs turns into NaN, naming the text given in `args`.
 */
function checkOptionValues(argv: Arguments, options: unknown, args: readonly string[]): true {
  // yargs 18 passes its table of the command's options, whose `array` lists the repeatable ones, though its types omit it.
  const repeatable = new Set((options as { array?: string[] }).array ?? []);
  for (const [name, value] of Object.entries(argv)) {
    const option = name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
    if (name === '_' || name !== option) continue;
    if (Array.isArray(value) && !repeatable.has(option)) {
      throw new UsageError(`option --${option} given more than once: expected one value, got ${value.map(String).join(', ')}`);
    }
    if (typeof value === 'number' && Number.isNaN(value)) {
      throw new UsageError(`invalid --${option}: expected a number, got ${JSON.stringify(givenText(args, option) ?? '')}`);
    }
  }
  return true;
}

/** Returns the text given for `--option` in `args`, as `--option TEXT` or `--option=TEXT`. */
function givenText(args: readonly string[], option: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${option}`) return args[i + 1];
    if (args[i].startsWith(`--${option}=`)) return args[i].slice(option.length + 3);
  }
  return undefined;
}

/** Options the program takes without a command. */
const TOP_LEVEL_OPTIONS = new Set(['-h', '--help', '--version']);

/**
 * Returns the name of an unknown option in arguments that contain no command (`--versoin`), or undefined. yargs
 * looks for a command before it checks options, so its only message would be that a command is required.
 */
function unknownOptionWithoutCommand(args: readonly string[]): string | undefined {
  if (args.some((arg) => !arg.startsWith('-'))) return undefined;
  const unknown = args.find((arg) => !TOP_LEVEL_OPTIONS.has(arg.split('=')[0]));
  return unknown?.replace(/^-+/, '').split('=')[0];
}

/** A command line yargs rejected: an unknown option, a missing one or a bad value. */
class UsageError extends Error {}
