import type { CommandModule } from 'yargs';

import { formatBytes } from '../errors/index.js';
import { describeImages, FlashStore, parseSize, type FlashState } from '../flash/index.js';
import { keyIdOf, readPublicKeyFile } from '../verifier/index.js';

interface InitArguments {
  flash: string;
  size: string;
  platform: string;
  image: string;
  version: string;
  from: string;
  'trust-key': string[];
  threshold: number | undefined;
}

const initCommand: CommandModule<object, InitArguments> = {
  command: 'init',
  describe: 'Create a flash in an empty directory, holding one image that runs and is set to boot',
  builder: (yargs) =>
    yargs
      // `--version` here is the image version; the program's own version flag stays available on the top level.
      .version(false)
      .option('flash', { type: 'string', demandOption: true, describe: 'Directory that holds the flash (created if missing, must be empty)' })
      .option('size', { type: 'string', nargs: 1, demandOption: true, describe: 'Flash size in bytes, or with a K, M or G suffix (binary multiples): 16M' })
      .option('platform', { type: 'string', demandOption: true, describe: 'Platform name of the device, as patches name it' })
      .option('image', { type: 'string', demandOption: true, describe: 'Name of the first image on the flash' })
      .option('version', { type: 'string', demandOption: true, describe: 'Version of the first image' })
      .option('from', { type: 'string', demandOption: true, describe: 'File whose bytes become the first image' })
      .option('trust-key', { type: 'string', array: true, demandOption: true, describe: 'Vendor public key file (.pub) to trust; repeat for more keys' })
      .option('threshold', { type: 'number', describe: 'Number of distinct trusted keys that must sign a patch (default 1)' }),
  handler: async (args) => {
    const capacityBytes = parseSize(args.size);
    const trustedKeys: string[] = [];
    for (const path of args['trust-key']) {
      const key = await readPublicKeyFile(path);
      trustedKeys.push(Buffer.from(key.bytes).toString('hex'));
    }

    const store = await FlashStore.init(args.flash, {
      capacityBytes,
      platform: args.platform,
      imageName: args.image,
      version: args.version,
      fromFile: args.from,
      trustedKeys,
      threshold: args.threshold,
    });

    const state = store.state();
    const image = store.image(state.runningImage);
    process.stdout.write(
      `created flash ${store.dir}: platform ${state.platform}, image ${image.name} version ${image.version} ` +
        `(${formatBytes(image.size)}, sha256 ${image.sha256}) running and set to boot, ` +
        `${formatBytes(await store.freeBytes())} free of ${formatBytes(state.capacityBytes)}\n`,
    );
  },
};

interface ShowArguments {
  flash: string;
  json: boolean;
}

const showCommand: CommandModule<object, ShowArguments> = {
  command: 'show',
  describe: 'Show the platform, the running and boot images, every image with its SHA-256, free space and settings',
  builder: (yargs) =>
    yargs
      .option('flash', { type: 'string', demandOption: true, describe: 'Directory that holds the flash' })
      .option('json', { type: 'boolean', default: false, describe: 'Print one JSON object instead of text' }),
  handler: async (args) => {
    const store = await FlashStore.open(args.flash);
    reportRecovery(store);
    const state = store.state();
    const freeBytes = await store.freeBytes();

    if (args.json) {
      process.stdout.write(`${JSON.stringify(showJson(state, freeBytes, store.recovery.actions), null, 2)}\n`);
      return;
    }
    process.stdout.write(showText(state, freeBytes));
  },
};

interface ReloadArguments {
  flash: string;
}

const reloadCommand: CommandModule<object, ReloadArguments> = {
  command: 'reload',
  describe: 'Simulate a reboot: the boot image, once its digest is checked, becomes the running image',
  builder: (yargs) =>
    yargs.option('flash', { type: 'string', demandOption: true, describe: 'Directory that holds the flash' }),
  handler: async (args) => {
    const store = await FlashStore.open(args.flash);
    reportRecovery(store);
    const before = store.state().runningImage;
    await store.reload();

    const running = store.image(store.state().runningImage);
    const change = before === running.name ? 'still running' : `was ${before}, now running`;
    process.stdout.write(`reloaded flash ${store.dir}: ${change} image ${running.name} version ${running.version}\n`);
  },
};

export const flashCommand: CommandModule = {
  command: 'flash',
  describe: 'Device side: create, show and reload a flash kept in a directory',
  builder: (yargs) =>
    yargs
      .command(initCommand)
      .command(showCommand)
      .command(reloadCommand)
      .demandCommand(1, 'a flash command is required: init, show or reload'),
  handler: () => undefined,
};

/** Recovery changes what is on the device, so each change is reported even when the command itself succeeds. */
function reportRecovery(store: FlashStore): void {
  const report = store.recovery;
  if (!report.ran) return;
  for (const action of report.actions) process.stderr.write(`snmp-upgrade: recovery: ${action}\n`);
}

function showJson(state: FlashState, freeBytes: number, recoveryActions: string[]) {
  const { runningVersion, bootVersion, bootSha256 } = describeImages(state);
  return {
    platform: state.platform,
    runningImage: state.runningImage,
    runningVersion,
    bootImage: state.bootImage,
    bootVersion,
    bootSha256,
    capacityBytes: state.capacityBytes,
    freeBytes,
    securityCounter: state.settings.securityCounter.toString(),
    images: state.images,
    trustedKeyIds: state.settings.trustedKeys.map(keyIdOfHex),
    revokedKeyIds: state.settings.revokedKeyIds,
    threshold: state.settings.threshold,
    urlPrefix: state.settings.urlPrefix,
    flashImage: state.settings.flashImage,
    recoveryActions,
  };
}

function showText(state: FlashState, freeBytes: number): string {
  const versionOf = (name: string) => state.images.find((image) => image.name === name)?.version ?? 'unknown';
  const lines = [
    `platform          ${state.platform}`,
    `running image     ${state.runningImage} (version ${versionOf(state.runningImage)})`,
    `boot image        ${state.bootImage} (version ${versionOf(state.bootImage)})`,
    `capacity          ${formatBytes(state.capacityBytes)}`,
    `free              ${formatBytes(freeBytes)}`,
    `security counter  ${state.settings.securityCounter}`,
    `trusted key ids   ${state.settings.trustedKeys.map(keyIdOfHex).join(', ')} (threshold ${state.settings.threshold})`,
    `revoked key ids   ${state.settings.revokedKeyIds.join(', ') || 'none'}`,
    `URL prefix        ${state.settings.urlPrefix || '(not set)'}`,
    `flash image       ${state.settings.flashImage || '(the running image)'}`,
    'images:',
  ];
  for (const image of state.images) {
    const roles = [image.name === state.runningImage ? 'running' : '', image.name === state.bootImage ? 'boot' : ''].filter(Boolean);
    const marker = roles.length > 0 ? ` [${roles.join(', ')}]` : '';
    lines.push(`  ${image.name}  version ${image.version}  ${formatBytes(image.size)}  sha256 ${image.sha256}${marker}`);
  }
  return `${lines.join('\n')}\n`;
}

function keyIdOfHex(hex: string): string {
  return keyIdOf(Buffer.from(hex, 'hex'));
}
