/** Device command: `upgrade IMAGE URL-PREFIX --flash DIR`. */
import type { CommandModule } from 'yargs';

import { FlashStore } from '../flash/index.js';
import { failCauseNumber } from '../errors/index.js';
import { checkTftpOptions, redactUrl } from '../transport/index.js';
import { runUpgrade, type UpgradeOutcome, type UpgradeStatus } from '../upgrade/index.js';
import { checkSeconds } from './values.js';

interface UpgradeArgs {
  image: string;
  'url-prefix': string;
  flash: string;
  json: boolean;
  check: boolean;
  'make-room': boolean;
  timeout: number;
  blksize?: number;
  windowsize?: number;
  'ca-file'?: string;
}

const upgrade: CommandModule<object, UpgradeArgs> = {
  command: 'upgrade <image> <url-prefix>',
  describe: 'Upgrade IMAGE on flash with the patch for its platform and version, fetched from URL-PREFIX',
  builder: (yargs) =>
    yargs
      .positional('image', { type: 'string', demandOption: true, describe: 'image on flash to upgrade from' })
      .positional('url-prefix', { type: 'string', demandOption: true, describe: 'file:, tftp:, http: or https: URL the patch name is appended to' })
      .option('flash', { type: 'string', demandOption: true, describe: 'flash folder' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON line per event and a final result line' })
      .option('check', { type: 'boolean', default: false, describe: 'dry run: fetch, verify and check space, install nothing' })
      .option('make-room', { type: 'boolean', default: false, describe: 'delete spare images (neither running nor set to boot) if needed for room' })
      .option('timeout', { type: 'number', default: 600, describe: 'deadline for fetching the patch, in seconds' })
      .option('blksize', { type: 'number', describe: 'TFTP block size to request, in bytes (default 1468)' })
      .option('windowsize', { type: 'number', describe: 'TFTP window size to request, in blocks (default 1)' })
      .option('ca-file', { type: 'string', describe: 'PEM file of certificate authorities trusted for https:' }),
  handler: async (args) => {
    checkSeconds('--timeout', args.timeout);
    checkTftpOptions({ blksize: args.blksize, windowsize: args.windowsize });
    const store = await FlashStore.open(args.flash);
    const lock = await store.lock();
    const controller = new AbortController();
    const stopOnSignal = () => controller.abort();
    process.once('SIGINT', stopOnSignal);
    process.once('SIGTERM', stopOnSignal);

    let display = lineDisplay();
    if (args.json) display = jsonDisplay();
    else if (process.stderr.isTTY) display = barDisplay();
    let outcome: UpgradeOutcome;
    try {
      outcome = await runUpgrade(
        store,
        { action: args.check ? 'check' : 'upgrade', image: args.image, urlPrefix: args['url-prefix'], signal: controller.signal, makeRoom: args['make-room'] },
        {
          fetchTimeoutMs: args.timeout * 1000,
          tftp: { blksize: args.blksize, windowsize: args.windowsize },
          http: { caFile: args['ca-file'] },
          onStatus: display.status,
        },
      );
    } finally {
      process.off('SIGINT', stopOnSignal);
      process.off('SIGTERM', stopOnSignal);
      await lock.release();
    }

    display.result(outcome, redactUrl(args['url-prefix']));
    if (outcome.result === 'failed' || outcome.result === 'aborted') process.exitCode = 1;
  },
};

export const deviceCommands: CommandModule[] = [upgrade as CommandModule];

interface Display {
  status(status: UpgradeStatus): void;
  result(outcome: UpgradeOutcome, urlPrefix: string): void;
}

function jsonDisplay(): Display {
  return {
    status: (status) => process.stdout.write(`${JSON.stringify({ event: 'status', ...status })}\n`),
    result: (outcome, urlPrefix) => {
      const failCauseCode = failCauseNumber(outcome.failCause ?? 'none');
      process.stdout.write(`${JSON.stringify({ event: 'result', urlPrefix, ...outcome, failCauseCode })}\n`);
    },
  };
}

/** Names what a phase's byte count measures: the patch while it downloads, the new image after that. */
function byteCountSubject(status: UpgradeStatus): string {
  return status.phase === 'fetching' ? 'patch' : 'new image';
}

/** Prints one line per phase, for logs and pipes. */
function lineDisplay(): Display {
  let phase = '';
  return {
    status: (status) => {
      if (status.phase === phase) return;
      phase = status.phase;
      const size = status.bytesTotal > 0 ? ` (${byteCountSubject(status)} of ${status.bytesTotal.toLocaleString('en-US')} bytes)` : '';
      process.stderr.write(`${status.phase}${size}\n`);
    },
    result: printResult,
  };
}

/** Draws a progress bar redrawn in place, for a terminal. */
function barDisplay(): Display {
  const width = 30;
  return {
    status: (status) => {
      const filled = Math.round((status.percent / 100) * width);
      const bytes =
        status.bytesTotal > 0
          ? ` ${status.bytesDone.toLocaleString('en-US')}/${status.bytesTotal.toLocaleString('en-US')} bytes of ${byteCountSubject(status)}`
          : '';
      process.stderr.write(`\r\x1b[2K${status.phase.padEnd(22)} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${String(status.percent).padStart(3)}%${bytes}`);
    },
    result: (outcome, urlPrefix) => {
      process.stderr.write('\n');
      printResult(outcome, urlPrefix);
    },
  };
}

function printResult(outcome: UpgradeOutcome, urlPrefix: string): void {
  const versions = `${outcome.sourceVersion || '?'} -> ${outcome.targetVersion || '?'}`;
  switch (outcome.result) {
    case 'installed':
      process.stdout.write(`installed ${outcome.bootImage} (${versions}) from ${patchUrl(urlPrefix, outcome.patchName)}; it boots at the next reload\n`);
      break;
    case 'alreadyAtTarget':
      process.stdout.write(`already at target: ${outcome.bootImage} (${outcome.targetVersion}) is set to boot; nothing written\n`);
      break;
    case 'checked':
      process.stdout.write(`check passed: ${outcome.patchName} (${versions}) is signed, matches the image and fits on flash; nothing written\n`);
      break;
    default:
      process.stderr.write(`snmp-upgrade: upgrade ${outcome.result}: ${outcome.failReason} (cause: ${outcome.failCause})\n`);
  }
}

/** Joins a prefix and a patch name for display, with one slash between them, as the device joins them to fetch. */
function patchUrl(urlPrefix: string, patchName: string | undefined): string {
  return `${urlPrefix}${urlPrefix.endsWith('/') ? '' : '/'}${patchName ?? ''}`;
}
