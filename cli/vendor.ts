/** Vendor commands: keygen and patch create, sign, inspect, verify. */
import { access, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import type { CommandModule } from 'yargs';

import { codecById, codecByName, codecNames } from '../delta/index.js';
import { BusyError, InvalidArgumentError, UpgradeError } from '../errors/index.js';
import { acquireFileLock, linkExclusively, type FileLock } from '../flash/index.js';
import { readInputFile } from '../input/index.js';
import {
  addSignature,
  createPatch,
  generateKeyPair,
  parseKeyId,
  patchFileName,
  readPatchHead,
  readPublicKeyFile,
  readSecretKeyFile,
  verifyPatchFile,
  writeKeyPair,
  type PatchHeader,
} from '../verifier/index.js';

const keygen: CommandModule<object, { out: string }> = {
  command: 'keygen',
  describe: 'Make an Ed25519 vendor signing key: BASE.key (secret, mode 0600) and BASE.pub',
  builder: (yargs) => yargs.option('out', { type: 'string', demandOption: true, describe: 'path and base name of the two key files' }),
  handler: async ({ out }) => {
    if (basename(out) === '' || out.endsWith('/')) {
      throw new InvalidArgumentError(`invalid --out ${JSON.stringify(out)}: expected a path ending in a base name, such as keys/vendor`);
    }
    const key = generateKeyPair();
    const { secretPath, publicPath } = await writeKeyPair(out, key);
    process.stdout.write(`key id ${key.keyId}\nsecret key: ${secretPath}\npublic key: ${publicPath}\n`);
  },
};

interface CreateArgs {
  old: string;
  new: string;
  platform: string;
  from: string;
  to: string;
  counter: string;
  key: string[];
  out: string;
  codec?: string;
  force: boolean;
}

const create: CommandModule<object, CreateArgs> = {
  command: 'create',
  describe: 'Create a signed patch from OLD to NEW, named for the platform and source version',
  builder: (yargs) =>
    yargs
      .option('old', { type: 'string', demandOption: true, describe: 'source image (the image devices run now)' })
      .option('new', { type: 'string', demandOption: true, describe: 'target image' })
      .option('platform', { type: 'string', demandOption: true, describe: 'platform (device class) id' })
      .option('from', { type: 'string', demandOption: true, describe: 'source version' })
      .option('to', { type: 'string', demandOption: true, describe: 'target version' })
      .option('counter', { type: 'string', demandOption: true, describe: 'security counter, 0 to 2^64-1; devices refuse a lower one' })
      .option('key', { type: 'string', array: true, demandOption: true, describe: 'secret key file to sign with (repeatable)' })
      .option('out', { type: 'string', demandOption: true, describe: 'folder to write the patch into' })
      .option('codec', { type: 'string', describe: `body codec: ${codecNames().join(', ')} (default: delta)` })
      .option('force', { type: 'boolean', default: false, describe: 'replace a patch file of the same name in the folder' }),
  handler: async (args) => {
    const codecName = args.codec ?? 'delta';
    const codec = codecByName(codecName);
    if (!codec) throw new InvalidArgumentError(`unknown codec ${JSON.stringify(codecName)}: expected one of ${codecNames().join(', ')}`);

    // A patch already in the folder may carry other vendors' signatures, so it is replaced only on request. This
    // early check saves the encode; linkExclusively checks again as the file goes in.
    const path = join(args.out, patchFileName(args.platform, args.from));
    const folder = await stat(args.out).catch(() => undefined);
    if (folder !== undefined && !folder.isDirectory()) {
      throw new InvalidArgumentError(`invalid --out ${args.out}: expected a folder for the patch, got a file`);
    }
    if (!args.force && (await exists(path))) throw patchExists(path);

    const keys = await Promise.all(args.key.map((keyPath) => readSecretKeyFile(keyPath)));
    const keyIds = keys.map((key) => key.keyId);
    const repeated = keyIds.find((keyId, index) => keyIds.indexOf(keyId) !== index);
    if (repeated !== undefined) {
      throw new InvalidArgumentError(`signing key ${repeated} given twice: expected each key once, as a device counts it once`);
    }
    const [source, target] = await Promise.all([readInputFile(args.old, 'source image'), readInputFile(args.new, 'target image')]);
    const patch = await createPatch({
      source,
      target,
      platform: args.platform,
      sourceVersion: args.from,
      targetVersion: args.to,
      securityCounter: parseCounter(args.counter),
      codec,
      keys,
    });

    await mkdir(args.out, { recursive: true }).catch((error: unknown) => {
      throw new InvalidArgumentError(`cannot create folder ${args.out}: ${(error as Error).message}`, { cause: error });
    });
    const temporary = `${path}.creating-${process.pid}`;
    const lock = await lockPatchFile(path);
    try {
      await writeFile(temporary, patch.bytes);
      // Without --force, a patch that a second create wrote while this one encoded stays. Where linkExclusively
      // has to copy, a crash during the copy can leave part of a patch behind, which devices reject by its digests.
      if (args.force) {
        const replaced = await readPatchHead(path).catch(() => undefined);
        await rename(temporary, path);
        if (replaced !== undefined) warnOfDroppedSigners(path, replaced.signatures.map((entry) => entry.keyId), keyIds);
      } else if (!(await linkExclusively(temporary, path))) {
        throw patchExists(path);
      }
    } catch (error) {
      if (error instanceof UpgradeError) throw error;
      throw new InvalidArgumentError(`cannot write patch file ${path}: ${(error as Error).message}`, { cause: error });
    } finally {
      await rm(temporary, { force: true });
      await lock.release();
    }
    process.stdout.write(`${path}\n`);
  },
};

const sign: CommandModule<object, { file: string; key: string }> = {
  command: 'sign <file>',
  describe: 'Add a signature to a patch file (several vendors may sign one patch)',
  builder: (yargs) =>
    yargs
      .positional('file', { type: 'string', demandOption: true, describe: 'patch file' })
      .option('key', { type: 'string', demandOption: true, describe: 'secret key file' }),
  handler: async ({ file, key }) => {
    const secretKey = await readSecretKeyFile(key);
    // Reading the header first names a missing or damaged patch before a lock file is made beside it.
    await readPatchHead(file);
    const lock = await lockPatchFile(file);
    let result;
    try {
      result = await addSignature(file, secretKey);
    } finally {
      await lock.release();
    }
    process.stdout.write(`signed ${file} with key ${result.keyId}; it now carries ${result.signatures} signature(s)\n`);
  },
};

const inspect: CommandModule<object, { file: string; json: boolean }> = {
  command: 'inspect <file>',
  describe: 'Show a patch file header and signer key ids, without checking signatures',
  builder: (yargs) =>
    yargs
      .positional('file', { type: 'string', demandOption: true, describe: 'patch file' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON object' }),
  handler: async ({ file, json }) => {
    const patch = await readPatchHead(file);
    const description = describeHeader(patch.header);
    const signers = patch.signatures.map((entry) => entry.keyId);
    if (json) {
      process.stdout.write(`${JSON.stringify({ ...description, signers, fileSize: patch.fileSize })}\n`);
      return;
    }
    const lines = Object.entries(description).map(([name, value]) => `${name.padEnd(16)} ${value}`);
    lines.push(`${'signers'.padEnd(16)} ${signers.length ? signers.join(', ') : '(none)'}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  },
};

interface VerifyArgs {
  file: string;
  'trust-key': string[];
  threshold: number;
  'revoked-key-id': string[];
  source?: string;
}

const verify: CommandModule<object, VerifyArgs> = {
  command: 'verify <file>',
  describe: 'Check a patch file as a device would; exit 0 only when it passes',
  builder: (yargs) =>
    yargs
      .positional('file', { type: 'string', demandOption: true, describe: 'patch file' })
      .option('trust-key', { type: 'string', array: true, demandOption: true, describe: 'trusted public key file (repeatable)' })
      .option('threshold', { type: 'number', default: 1, describe: 'distinct trusted keys that must have signed' })
      .option('revoked-key-id', { type: 'string', array: true, default: [], describe: 'key id to refuse (repeatable)' })
      .option('source', { type: 'string', describe: 'source image: also check its digest and the digest of the applied result' }),
  handler: async (args) => {
    const revokedKeyIds = args['revoked-key-id'].map((keyId) => parseKeyId(keyId, '--revoked-key-id'));
    const keys = await Promise.all(args['trust-key'].map((path) => readPublicKeyFile(path)));
    const report = await verifyPatchFile(
      args.file,
      { keys, revokedKeyIds, threshold: args.threshold },
      { sourcePath: args.source },
    );
    const { header } = report.patch;
    const applied = report.targetSha256 ? `; applied to ${args.source} it gives sha256 ${report.targetSha256}` : '';
    process.stdout.write(
      `OK: ${header.platform} ${header.sourceVersion} -> ${header.targetVersion}, signed by ${report.acceptedKeyIds.join(', ')}${applied}\n`,
    );
  },
};

const patch: CommandModule = {
  command: 'patch',
  describe: 'Create, sign, inspect and verify patch files (vendor)',
  builder: (yargs) =>
    yargs.command([create, sign, inspect, verify] as CommandModule[]).demandCommand(1, 'a patch command is required: create, sign, inspect or verify'),
  handler: () => undefined,
};

export const vendorCommands: CommandModule[] = [keygen as CommandModule, patch];

function describeHeader(header: PatchHeader): Record<string, string | number> {
  return {
    platform: header.platform,
    sourceVersion: header.sourceVersion,
    sourceSize: header.sourceSize,
    sourceSha256: header.sourceSha256,
    targetVersion: header.targetVersion,
    targetSize: header.targetSize,
    targetSha256: header.targetSha256,
    securityCounter: header.securityCounter.toString(),
    codec: codecById(header.codecId)?.name ?? `unknown (${header.codecId})`,
    bodySize: header.bodySize,
    bodySha256: header.bodySha256,
    createdAt: header.createdAt.toISOString(),
    expectedFileName: patchFileName(header.platform, header.sourceVersion),
  };
}

function parseCounter(text: string): bigint {
  if (!/^[0-9]{1,20}$/.test(text) || BigInt(text) >= 2n ** 64n) {
    throw new InvalidArgumentError(`invalid --counter ${JSON.stringify(text)}: expected a whole number from 0 to 2^64-1`);
  }
  return BigInt(text);
}

function patchExists(path: string): InvalidArgumentError {
  return new InvalidArgumentError(`patch file ${path} already exists: expected a folder without it, or --force to replace it`);
}

/** Names the signers of a replaced patch that the new one lacks: their vendors have to sign it again. */
function warnOfDroppedSigners(path: string, oldSigners: string[], newSigners: string[]): void {
  const dropped = oldSigners.filter((keyId) => !newSigners.includes(keyId));
  if (dropped.length === 0) return;
  process.stderr.write(
    `snmp-upgrade: note: replaced ${path}, whose signatures by ${dropped.join(', ')} are gone; those keys sign the new patch with patch sign\n`,
  );
}

/** How long a vendor command waits for another one that writes the same patch file. */
const PATCH_LOCK_WAIT_MS = 10_000;

/**
 * Takes the lock file beside a patch file, PATCH.lock, waiting up to PATCH_LOCK_WAIT_MS for another holder. Two
 * signers of one patch each read it, add a signature and rename the result over it, so without the lock the
 * second rename would drop the first signature.
 */
async function lockPatchFile(path: string): Promise<FileLock> {
  const deadline = Date.now() + PATCH_LOCK_WAIT_MS;
  for (;;) {
    try {
      return await acquireFileLock(`${path}.lock`, `patch ${path}`);
    } catch (error) {
      if (!(error instanceof BusyError) || Date.now() >= deadline) throw error;
      await delay(100);
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
