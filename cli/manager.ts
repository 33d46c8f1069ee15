/**
 * Management station commands: `manager upgrade` (bulk upgrades from an inventory), `manager status` (one
 * table of the fleet) and `manager traps` (prints notifications). docs/manager.md describes them.
 */
import type { Argv, CommandModule } from 'yargs';

import { parseHostPort } from '../agent/index.js';
import { InvalidArgumentError } from '../errors/index.js';
import {
  ProgressView,
  formatDuration,
  formatTable,
  loadInventory,
  readFleetStatus,
  runUpgrades,
  startTrapListener,
  type DeviceReport,
  type ReceivedTrap,
  type RunEvent,
  type RunSummary,
  type UsmCredentials,
} from '../manager/index.js';
import { validateUrlPrefix } from '../transport/index.js';
import { validateIdentifier } from '../verifier/index.js';
import { checkSeconds } from './values.js';

interface UpgradeArgs {
  inventory: string;
  url?: string;
  image?: string;
  'target-version'?: string;
  concurrency: number;
  traps?: string;
  canary: number;
  'max-failures'?: number;
  'dry-run': boolean;
  poll?: number;
  'phase-timeout'?: number;
  timeout: number;
  retries: number;
  json: boolean;
}

/** How often the terminal view is redrawn at most, in milliseconds. */
const REDRAW_MS = 100;

const upgradeCommand: CommandModule<object, UpgradeArgs> = {
  command: 'upgrade',
  describe: 'Upgrade every device of an inventory over SNMP, a few at a time, and print a table of the results',
  builder: (yargs) =>
    yargs
      .option('inventory', { type: 'string', demandOption: true, describe: 'CSV (header row: host,port,community,...) or JSON device list' })
      .option('url', { type: 'string', describe: 'URL prefix of the patch folder, for devices without a url column' })
      .option('image', { type: 'string', describe: 'Image on flash to upgrade from (default: the running image)' })
      .option('target-version', { type: 'string', describe: 'Skip devices that already run or boot this version, without a SET' })
      .option('concurrency', { type: 'number', default: 10, describe: 'Devices upgraded at the same time' })
      .option('traps', { type: 'string', describe: 'Listen for the devices\' notifications on HOST:PORT while the run lasts' })
      .option('canary', { type: 'number', default: 0, describe: 'Upgrade the first N devices alone first; stop if any fails' })
      .option('max-failures', { type: 'number', describe: 'Start no new device once more than N devices have failed' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'Use the check action: fetch, verify and space check, nothing written' })
      .option('poll', { type: 'number', describe: 'Seconds between status polls of a device (default 5 with --traps, 1 without)' })
      .option('phase-timeout', { type: 'number', describe: 'Seconds a device may stay in one phase (default: 10 min fetching and applying, less for the rest)' })
      .option('timeout', { type: 'number', default: 2, describe: 'Seconds to wait for one SNMP response' })
      .option('retries', { type: 'number', default: 2, describe: 'Further attempts of a step that got no answer' })
      .option('json', { type: 'boolean', default: false, describe: 'Print one JSON line per event and a summary line' }) as unknown as Argv<UpgradeArgs>,
  handler: async (args) => {
    if (args.url !== undefined) validateUrlPrefix(args.url);
    if (args.image !== undefined) validateIdentifier('image name', args.image);
    if (args['target-version'] !== undefined) validateIdentifier('version', args['target-version']);
    const devices = await loadInventory(args.inventory);
    const traps = args.traps === undefined ? undefined : parseHostPort(args.traps, '--traps address');
    checkSeconds('--poll', args.poll);
    checkSeconds('--phase-timeout', args['phase-timeout']);
    checkSeconds('--timeout', args.timeout);
    if (!Number.isInteger(args.retries) || args.retries < 0) {
      throw new InvalidArgumentError(`invalid --retries: expected an integer of at least 0, got ${args.retries}`);
    }

    const phaseTimeoutMs = args['phase-timeout'] === undefined ? undefined : args['phase-timeout'] * 1000;
    let display = lineDisplay();
    if (args.json) display = jsonDisplay();
    else if (process.stderr.isTTY) display = terminalDisplay();
    let summary: RunSummary;
    try {
      summary = await runUpgrades(devices, {
        urlPrefix: args.url,
        image: args.image,
        targetVersion: args['target-version'],
        concurrency: args.concurrency,
        canary: args.canary,
        maxFailures: args['max-failures'],
        dryRun: args['dry-run'],
        traps,
        timing: {
          requestTimeoutMs: args.timeout * 1000,
          retries: args.retries,
          ...(args.poll === undefined ? {} : { pollIntervalMs: args.poll * 1000 }),
          ...(phaseTimeoutMs === undefined
            ? {}
            : { phaseDeadlinesMs: { fetching: phaseTimeoutMs, verifying: phaseTimeoutMs, checkingSpace: phaseTimeoutMs, applying: phaseTimeoutMs, installing: phaseTimeoutMs } }),
        },
        onEvent: display.event,
      });
    } finally {
      display.stop();
    }
    display.summary(summary);
    if (summary.failed > 0 || summary.notStarted > 0) process.exitCode = 1;
  },
};

interface StatusArgs {
  inventory: string;
  concurrency: number;
  timeout: number;
  json: boolean;
}

const statusCommand: CommandModule<object, StatusArgs> = {
  command: 'status',
  describe: "Read every device's platform, running and boot versions and upgrade state into one table",
  builder: (yargs) =>
    yargs
      .option('inventory', { type: 'string', demandOption: true, describe: 'CSV (header row: host,port,community,...) or JSON device list' })
      .option('concurrency', { type: 'number', default: 32, describe: 'Devices read at the same time' })
      .option('timeout', { type: 'number', default: 2, describe: 'Seconds to wait for one SNMP response' })
      .option('json', { type: 'boolean', default: false, describe: 'Print one JSON line per device' }) as unknown as Argv<StatusArgs>,
  handler: async (args) => {
    const devices = await loadInventory(args.inventory);
    if (!Number.isInteger(args.concurrency) || args.concurrency < 1) {
      throw new InvalidArgumentError(`invalid --concurrency: expected an integer of at least 1, got ${args.concurrency}`);
    }
    checkSeconds('--timeout', args.timeout);
    const rows = await readFleetStatus(devices, { concurrency: args.concurrency, timeoutMs: args.timeout * 1000 });

    if (args.json) {
      for (const row of rows) process.stdout.write(`${JSON.stringify(row)}\n`);
    } else {
      const table = rows.map((row) => [row.device, row.platform || '-', row.runningVersion || '-', row.bootVersion || '-', row.state, row.cause === 'none' ? '-' : row.cause, row.reason]);
      process.stdout.write(formatTable(['DEVICE', 'PLATFORM', 'RUNNING', 'BOOT', 'STATE', 'CAUSE', 'DETAIL'], table));
    }
    if (rows.some((row) => row.state === 'noResponse' || row.state === 'notUpgradeAgent')) process.exitCode = 1;
  },
};

interface TrapsArgs {
  listen: string;
  inventory?: string;
  count?: number;
  json: boolean;
}

const trapsCommand: CommandModule<object, TrapsArgs> = {
  command: 'traps',
  describe: 'Listen for SNMP notifications and print them readably, UPGRADE-MIB ones decoded',
  builder: (yargs) =>
    yargs
      .option('listen', { type: 'string', demandOption: true, describe: 'UDP address and port to listen on, HOST:PORT or [IPV6]:PORT' })
      .option('inventory', { type: 'string', describe: 'Inventory whose SNMPv3 users are accepted for authenticated notifications' })
      .option('count', { type: 'number', describe: 'Exit after this many notifications (default: run until interrupted)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print one JSON line per notification' }) as unknown as Argv<TrapsArgs>,
  handler: async (args) => {
    const address = parseHostPort(args.listen, '--listen address');
    if (args.count !== undefined && (!Number.isInteger(args.count) || args.count < 1)) {
      throw new InvalidArgumentError(`invalid --count: expected an integer of at least 1, got ${args.count}`);
    }
    const users = args.inventory
      ? (await loadInventory(args.inventory)).map((device) => device.credentials).filter((credentials): credentials is UsmCredentials => credentials.version === '3')
      : [];

    let received = 0;
    let reachedCount: () => void = () => undefined;
    const counted = new Promise<void>((resolve) => (reachedCount = resolve));
    const listener = await startTrapListener({
      ...address,
      users,
      onTrap: (trap) => {
        process.stdout.write(args.json ? `${JSON.stringify({ event: 'notification', ...trap })}\n` : `${formatTrap(trap)}\n`);
        received++;
        if (args.count !== undefined && received >= args.count) reachedCount();
      },
      onError: (message, sender) => process.stderr.write(`snmp-upgrade: dropped a notification${sender ? ` from ${sender}` : ''}: ${message}\n`),
    });
    process.stderr.write(`listening for notifications on ${listener.address.address}:${listener.address.port}\n`);

    await Promise.race([
      counted,
      new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      }),
    ]);
    await listener.close();
  },
};

const managerCommand: CommandModule = {
  command: 'manager',
  describe: 'Management station: bulk upgrades over SNMP, fleet status and notification monitoring',
  builder: (yargs) =>
    yargs
      .command([upgradeCommand, statusCommand, trapsCommand] as unknown as CommandModule[])
      .demandCommand(1, 'a manager command is required: upgrade, status or traps'),
  handler: () => undefined,
};

export const managerCommands: CommandModule[] = [managerCommand];

/** One readable line per notification: time, sender, version and kind, name, then the decoded objects. */
export function formatTrap(trap: ReceivedTrap): string {
  const head = `${trap.time.toISOString()} ${trap.sender} v${trap.version} ${trap.kind} ${trap.name}`;
  if (trap.upgrade) {
    const facts = trap.upgrade;
    const versions = facts.sourceVersion || facts.targetVersion ? ` ${facts.sourceVersion || '?'} -> ${facts.targetVersion || '?'}` : '';
    const cause = facts.failCause === 'none' ? '' : ` cause=${facts.failCause} reason=${JSON.stringify(facts.failReason)}`;
    return `${head} patch=${facts.patchName || '-'}${versions} status=${facts.phase}${cause}`;
  }
  return `${head}${trap.varbinds.map((varbind) => ` ${varbind.oid}=${JSON.stringify(varbind.value)}`).join('')}`;
}

interface Display {
  event: (event: RunEvent) => void;
  stop: () => void;
  summary: (summary: RunSummary) => void;
}

function jsonDisplay(): Display {
  return {
    event: (event) => {
      // The summary line that ends the output carries these counts and every device's report.
      if (event.event === 'runFinished') return;
      process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
    },
    stop: () => undefined,
    summary: (summary) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), event: 'summary', ...summary })}\n`),
  };
}

/** Redraws the progress view in place on standard error, then prints the table on standard output. */
function terminalDisplay(): Display {
  const view = new ProgressView();
  let drawnLines = 0;
  let timer: NodeJS.Timeout | undefined;
  const draw = () => {
    timer = undefined;
    const lines = view.render();
    const erase = drawnLines > 0 ? `\x1b[${drawnLines}F\x1b[J` : '';
    process.stderr.write(`${erase}${lines.join('\n')}\n`);
    drawnLines = lines.length;
  };
  return {
    event: (event) => {
      view.update(event);
      if (event.event === 'rolloutStopped') {
        draw();
        drawnLines = 0;
        process.stderr.write(`${describeStop(event)}\n`);
      }
      timer ??= setTimeout(draw, REDRAW_MS);
    },
    stop: () => {
      if (timer) clearTimeout(timer);
      draw();
    },
    summary: printTable,
  };
}

/** Prints one line per finished device on standard error, for logs and pipes, then the table. */
function lineDisplay(): Display {
  return {
    event: (event) => {
      if (event.event === 'deviceDone') process.stderr.write(`${describeReport(event)}\n`);
      if (event.event === 'rolloutStopped') process.stderr.write(`${describeStop(event)}\n`);
    },
    stop: () => undefined,
    summary: printTable,
  };
}

function describeReport(report: DeviceReport): string {
  const versions = report.from || report.to ? ` ${report.from || '?'} -> ${report.to || '?'}` : '';
  const cause = report.cause === 'none' ? '' : ` (${report.cause}: ${report.reason})`;
  return `${report.device} ${report.result}${versions}${cause} in ${formatDuration(report.durationMs)}`;
}

function describeStop(event: Extract<RunEvent, { event: 'rolloutStopped' }>): string {
  const why = event.cause === 'canaryFailed' ? 'a canary device failed' : `${event.failed} devices failed, more than --max-failures`;
  return `rollout stopped: ${why}; ${event.notStarted} devices not started`;
}

function printTable(summary: RunSummary): void {
  // An unknown value shows as "-", so that every row has the same columns.
  const rows = summary.devices.map((report) => [
    report.device,
    report.from || '-',
    report.to || '-',
    report.result,
    report.cause === 'none' ? '-' : report.cause,
    report.result === 'notStarted' ? '-' : formatDuration(report.durationMs),
    report.cause === 'none' ? '' : report.reason,
  ]);
  process.stdout.write(formatTable(['DEVICE', 'FROM', 'TO', 'RESULT', 'CAUSE', 'DURATION', 'DETAIL'], rows));
  const parts = (['upgraded', 'skipped', 'checked', 'failed', 'notStarted'] as const).filter((key) => summary[key] > 0).map((key) => `${summary[key]} ${key}`);
  process.stdout.write(`${summary.total} ${summary.total === 1 ? 'device' : 'devices'}: ${parts.join(', ')} in ${formatDuration(summary.durationMs)}\n`);
}
