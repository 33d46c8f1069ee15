import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, statfs } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

import {
  BusyError,
  FlashWriteError,
  ImageNotFoundError,
  InsufficientFlashError,
  InvalidArgumentError,
  TargetDigestMismatchError,
  WrongPlatformError,
  formatBytes,
} from '../errors/index.js';
import { digestFile, validateIdentifier } from '../verifier/index.js';
import { asFlashWriteError, DEFAULT_FLASH_IO, syncDirectory, writeFileAtomic, type FlashIo } from './io.js';
import { FlashLayout, type StagingKind } from './layout.js';
import { acquireLock, LOCK_FILE, type FlashLock } from './lock.js';
import { NVRAM_FILE, parseNvram, serializeNvram, validateImageRecord, validateSettings, type FlashSettings, type FlashState, type ImageRecord } from './nvram.js';
import { checkImage, ensureBootable, recoverFlash, type RecoveryReport } from './recovery.js';
import { StagingWriter } from './staging.js';

export interface FlashInitOptions {
  capacityBytes: number;
  platform: string;
  imageName: string;
  version: string;
  /** File whose bytes become the first image, which is both running and set to boot. */
  fromFile: string;
  /** Trusted vendor public keys as hex. */
  trustedKeys: string[];
  threshold?: number;
  revokedKeyIds?: string[];
}

export interface FlashOpenOptions {
  /** Replaces the write call, so tests can make flash writes fail. */
  io?: FlashIo;
}

/**
 * A router's flash file system and NVRAM kept in a directory: the images, the boot variable, the running image
 * and the persisted upgrade settings. Every change is written so that a power loss at any moment leaves either
 * the old or the new state, and open() repairs what an interrupted install leaves behind (docs/flash.md).
 *
 * Changes are made under the flash lock: a method takes it for its own duration unless lock() already took it
 * for a whole operation. Reads (state(), image()) return what this store last read or wrote.
 */
export class FlashStore {
  readonly dir: string;
  readonly io: FlashIo;
  private readonly layout: FlashLayout;
  private current: FlashState;
  private recoveryReport: RecoveryReport;
  private heldLock: FlashLock | undefined;

  private constructor(layout: FlashLayout, io: FlashIo, state: FlashState, report: RecoveryReport) {
    this.dir = layout.dir;
    this.layout = layout;
    this.io = io;
    this.current = state;
    this.recoveryReport = report;
  }

  /** Creates a flash in `dir` (missing or empty) holding one image, which runs and is set to boot. */
  static async init(dir: string, options: FlashInitOptions, openOptions: FlashOpenOptions = {}): Promise<FlashStore> {
    const layout = new FlashLayout(resolve(dir));
    const io = openOptions.io ?? DEFAULT_FLASH_IO;
    const settings = initialSettings(options);
    validateIdentifier('platform', options.platform);
    validateIdentifier('image name', options.imageName);
    validateIdentifier('version', options.version);
    if (!Number.isSafeInteger(options.capacityBytes) || options.capacityBytes <= 0) {
      throw new InvalidArgumentError(`invalid flash size ${options.capacityBytes}: expected a whole number of bytes above zero`);
    }

    const source = await stat(options.fromFile).catch((error: unknown) => {
      throw new InvalidArgumentError(`cannot read image file ${options.fromFile}: ${(error as Error).message}`, { cause: error });
    });
    if (!source.isFile()) throw new InvalidArgumentError(`invalid image file ${options.fromFile}: expected a regular file`);
    if (source.size > options.capacityBytes) {
      throw new InsufficientFlashError(
        `image ${options.fromFile} does not fit the flash: needs ${formatBytes(source.size)}, the flash size is ${formatBytes(options.capacityBytes)}`,
      );
    }

    const createdDir = await mkdir(layout.dir, { recursive: true }).catch((error: unknown) => {
      throw new InvalidArgumentError(`cannot create flash directory ${layout.dir}: ${(error as Error).message}`, { cause: error });
    });
    const lock = await acquireLock(layout.lockPath, io);
    let initialized = false;
    try {
      await clearForInit(layout);
      await mkdir(layout.imagesDir, { recursive: true });
      await mkdir(layout.stagingDir, { recursive: true });
      const hostFree = await hostFreeBytes(layout.dir);
      if (source.size > hostFree) {
        throw new InsufficientFlashError(`image ${options.fromFile} does not fit: needs ${formatBytes(source.size)}, the host file system has ${formatBytes(hostFree)} free`);
      }

      const stagingPath = layout.stagingPath('image');
      const writer = await StagingWriter.create(io, stagingPath, options.capacityBytes);
      const { sha256 } = await copyInto(options.fromFile, writer);
      await writer.finish();
      await rename(stagingPath, layout.imagePath(options.imageName)).catch((error: unknown) => {
        throw asFlashWriteError(error, `installing image ${options.imageName}`);
      });
      await syncDirectory(layout.imagesDir);

      const image: ImageRecord = { name: options.imageName, platform: options.platform, version: options.version, size: writer.bytesWritten, sha256 };
      const state: FlashState = {
        platform: options.platform,
        capacityBytes: options.capacityBytes,
        runningImage: image.name,
        bootImage: image.name,
        images: [image],
        settings,
      };
      // nvram.json is written last: until it exists the directory is not a flash, and init can be run again.
      await writeFileAtomic(io, layout.nvramPath, Buffer.from(serializeNvram(state)));
      await syncDirectory(dirname(layout.dir));
      initialized = true;
    } finally {
      await lock.release();
      if (!initialized) await removeFailedInit(layout, createdDir);
    }
    return FlashStore.open(dir, openOptions);
  }

  /**
   * Opens the flash in `dir` and runs recovery (docs/flash.md): leftovers of an interrupted install are removed
   * and the boot variable is made to name an image that verifies. Recovery is skipped, and reported as skipped,
   * while another live process holds the flash lock, because the leftovers may then be its work in progress.
   */
  static async open(dir: string, options: FlashOpenOptions = {}): Promise<FlashStore> {
    const layout = new FlashLayout(resolve(dir));
    const io = options.io ?? DEFAULT_FLASH_IO;
    let state = await readNvram(layout);

    // A busy flash is another process's work in progress; a flash that cannot be written (read-only media)
    // can still be shown. Either way nothing is changed.
    let lock: FlashLock;
    try {
      lock = await acquireLock(layout.lockPath, io);
    } catch (error) {
      if (!(error instanceof BusyError || error instanceof FlashWriteError)) throw error;
      return new FlashStore(layout, io, state, { ran: false, actions: [`recovery skipped: ${error.message}`], bootFallback: undefined });
    }

    try {
      state = await readNvram(layout);
      await mkdir(layout.imagesDir, { recursive: true });
      await mkdir(layout.stagingDir, { recursive: true });
      const recovered = await recoverFlash(layout, state);
      if (serializeNvram(recovered.state) !== serializeNvram(state)) {
        await writeFileAtomic(io, layout.nvramPath, Buffer.from(serializeNvram(recovered.state)));
      }
      return new FlashStore(layout, io, recovered.state, recovered.report);
    } catch (error) {
      throw asFlashWriteError(error, `recovering flash ${layout.dir}`);
    } finally {
      await lock.release();
    }
  }

  /** Record of the changes recovery made when this store was opened. */
  get recovery(): RecoveryReport {
    return structuredClone(this.recoveryReport);
  }

  state(): FlashState {
    return structuredClone(this.current);
  }

  /** Re-reads nvram.json, for a long-lived store whose flash another process (`flash reload`) may have changed. */
  async refresh(): Promise<void> {
    this.current = await readNvram(this.layout);
  }

  /** Returns the record of an image. Throws ImageNotFoundError when there is none, InvalidArgumentError for a bad name. */
  image(name: string): ImageRecord {
    validateIdentifier('image name', name);
    const record = this.current.images.find((image) => image.name === name);
    if (!record) {
      const names = this.current.images.map((image) => image.name).join(', ');
      throw new ImageNotFoundError(`image ${name} not found on flash ${this.dir}; images on it: ${names || 'none'}`);
    }
    return { ...record };
  }

  /** Path of a recorded image, for positioned reads. */
  imagePath(name: string): string {
    return this.layout.imagePath(this.image(name).name);
  }

  /**
   * Bytes an install may still write: the flash size minus the images and staging files on it, and never more
   * than the host file system's free space.
   */
  async freeBytes(): Promise<number> {
    const used = (await directoryBytes(this.layout.imagesDir)) + (await directoryBytes(this.layout.stagingDir));
    const flashFree = Math.max(0, this.current.capacityBytes - used);
    return Math.min(flashFree, await hostFreeBytes(this.dir));
  }

  /** Returns the path where the upgrade engine downloads the patch, or writes the new image before installImage. */
  stagingPath(kind: StagingKind): string {
    return this.layout.stagingPath(kind);
  }

  /**
   * Opens stagingPath(kind) for writing through the store's write call, limited to the flash's free bytes.
   * A previous staging file of that kind is replaced and does not count against the limit.
   */
  async createStagingWriter(kind: StagingKind): Promise<StagingWriter> {
    const path = this.layout.stagingPath(kind);
    await rm(path, { force: true });
    return StagingWriter.create(this.io, path, await this.freeBytes());
  }

  /**
   * Installs a staged image under record.name: fsync the staged file, check its size and SHA-256 against the
   * record (TargetDigestMismatchError, and the staged file is removed), rename it into images/, fsync the
   * folder, then record it. The running and the boot image are never replaced (InvalidArgumentError).
   */
  async installImage(stagingPath: string, record: ImageRecord): Promise<void> {
    validateImageRecord(record);
    if (record.platform !== this.current.platform) {
      throw new WrongPlatformError(`image ${record.name} is for platform ${record.platform}, this flash is ${this.current.platform}`);
    }
    const source = resolve(stagingPath);
    if (dirname(source) !== this.layout.stagingDir) {
      throw new InvalidArgumentError(`invalid staging path ${stagingPath}: expected a file in ${this.layout.stagingDir}`);
    }

    await this.mutate(async (state) => {
      if (record.name === state.runningImage || record.name === state.bootImage) {
        const role = record.name === state.runningImage ? 'running' : 'boot';
        throw new InvalidArgumentError(`cannot install over image ${record.name}: it is the ${role} image, which an install never replaces; choose another image name`);
      }

      await syncFile(source);
      const actual = await digestFile(source).catch((error: unknown) => {
        throw new InvalidArgumentError(`cannot read staged image ${stagingPath}: ${(error as Error).message}`, { cause: error });
      });
      if (actual.size !== record.size || actual.sha256 !== record.sha256) {
        await rm(source, { force: true });
        throw new TargetDigestMismatchError(
          `target digest mismatch for image ${record.name}: expected sha256 ${record.sha256} (${formatBytes(record.size)}), the staged image has ${actual.sha256} (${formatBytes(actual.size)})`,
        );
      }

      // A spare image of the same name loses its record before its file is replaced, so a power loss between
      // the rename and the new record cannot leave the old record describing new bytes.
      const next = structuredClone(state);
      if (next.images.some((image) => image.name === record.name)) {
        next.images = next.images.filter((image) => image.name !== record.name);
        await this.persist(next);
      }

      await rename(source, this.layout.imagePath(record.name)).catch((error: unknown) => {
        throw asFlashWriteError(error, `renaming the staged image to ${record.name}`);
      });
      await syncDirectory(this.layout.imagesDir);
      await syncDirectory(this.layout.stagingDir);

      next.images.push({ ...record });
      await this.persist(next);
    });
  }

  /** Sets the image that boots next, after checking that its bytes still hash to its record. */
  async setBootImage(name: string): Promise<void> {
    validateIdentifier('image name', name);
    await this.mutate(async (state) => {
      this.image(name);
      const problem = await checkImage(this.layout, state, name);
      if (problem !== undefined) {
        throw new TargetDigestMismatchError(`cannot set image ${name} to boot: it ${problem}`);
      }

      await this.persist({ ...structuredClone(state), bootImage: name });
    });
  }

  /**
   * Stores settings; fields left out keep their value. Keys and key ids are stored in lowercase hex. The
   * security counter never decreases, because lowering it would let an older, vulnerable image back in.
   */
  async updateSettings(update: Partial<FlashSettings>): Promise<void> {
    await this.mutate(async (state) => {
      const settings: FlashSettings = { ...state.settings };
      if (update.urlPrefix !== undefined) settings.urlPrefix = update.urlPrefix;
      if (update.flashImage !== undefined) settings.flashImage = update.flashImage;
      if (update.trustedKeys !== undefined) settings.trustedKeys = update.trustedKeys.map((key) => key.toLowerCase());
      if (update.revokedKeyIds !== undefined) settings.revokedKeyIds = update.revokedKeyIds.map((keyId) => keyId.toLowerCase());
      if (update.threshold !== undefined) settings.threshold = update.threshold;
      if (update.securityCounter !== undefined) {
        if (typeof update.securityCounter !== 'bigint') {
          throw new InvalidArgumentError(`invalid security counter ${String(update.securityCounter)}: expected a bigint`);
        }
        if (update.securityCounter < state.settings.securityCounter) {
          throw new InvalidArgumentError(
            `invalid security counter ${update.securityCounter}: it can only grow, and the flash has already accepted ${state.settings.securityCounter}`,
          );
        }
        settings.securityCounter = update.securityCounter;
      }
      validateSettings(settings);

      await this.persist({ ...structuredClone(state), settings });
    });
  }

  /** Removes a spare image; the running and the boot image are rejected with InvalidArgumentError. */
  async removeImage(name: string): Promise<void> {
    validateIdentifier('image name', name);
    await this.mutate(async (state) => {
      if (name === state.runningImage || name === state.bootImage) {
        const role = name === state.runningImage ? 'running' : 'boot';
        throw new InvalidArgumentError(`cannot remove image ${name}: it is the ${role} image`);
      }
      this.image(name);

      // The record goes first: a power loss before the unlink leaves an unrecorded file, which recovery removes.
      await this.persist({ ...structuredClone(state), images: state.images.filter((image) => image.name !== name) });
      await rm(this.layout.imagePath(name), { force: true });
      await syncDirectory(this.layout.imagesDir);
    });
  }

  /** Removes every staging file. */
  async cleanStaging(): Promise<void> {
    await this.mutate(async () => {
      for (const entry of await readdir(this.layout.stagingDir)) {
        await rm(join(this.layout.stagingDir, entry), { recursive: true, force: true });
      }
      await syncDirectory(this.layout.stagingDir);
    });
  }

  /**
   * Takes the flash lock for a whole operation; changes made through this store while it is held do not take it
   * again. BusyError when a live process (or another store in this process) holds it; a lock left by a process
   * that has exited is taken over.
   */
  async lock(): Promise<{ release(): Promise<void> }> {
    if (this.heldLock) throw new BusyError(`flash ${this.dir} is busy: this store has already taken its lock; release it first`);
    const lock = await acquireLock(this.layout.lockPath, this.io);
    this.heldLock = lock;

    try {
      this.current = await readNvram(this.layout);
    } catch (error) {
      this.heldLock = undefined;
      await lock.release();
      throw error;
    }
    return {
      release: async () => {
        if (this.heldLock !== lock) return;
        this.heldLock = undefined;
        await lock.release();
      },
    };
  }

  /**
   * Simulates a reboot: the boot image becomes the running image. The boot image is hashed first, as a verifying
   * boot loader would. When it fails, the boot variable is set back to an image that verifies, the running image
   * stays, and TargetDigestMismatchError is thrown.
   */
  async reload(): Promise<void> {
    await this.mutate(async (state) => {
      const next = structuredClone(state);
      const problem = await checkImage(this.layout, next, next.bootImage);
      if (problem === undefined) {
        next.runningImage = next.bootImage;
        await this.persist(next);
        return;
      }

      const failed = next.bootImage;
      await ensureBootable(this.layout, next, []);
      await this.persist(next);
      throw new TargetDigestMismatchError(
        `reload rejected: boot image ${failed} ${problem}; the boot variable now names ${next.bootImage} and ${next.runningImage} keeps running`,
      );
    });
  }

  /** Runs one change under the flash lock, on the state as it is on disk now (another process may have changed it). */
  private async mutate<T>(change: (state: FlashState) => Promise<T>): Promise<T> {
    const temporaryLock = this.heldLock ? undefined : await acquireLock(this.layout.lockPath, this.io);
    try {
      this.current = await readNvram(this.layout);
      return await change(this.current);
    } catch (error) {
      // A file system failure without its own cause code (EIO, EROFS, ENOSPC on a rename) is a flash write error.
      throw asFlashWriteError(error, `changing flash ${this.dir}`);
    } finally {
      await temporaryLock?.release();
    }
  }

  private async persist(state: FlashState): Promise<void> {
    await writeFileAtomic(this.io, this.layout.nvramPath, Buffer.from(serializeNvram(state)));
    this.current = state;
  }
}

async function readNvram(layout: FlashLayout): Promise<FlashState> {
  let text: string;
  try {
    text = await readFile(layout.nvramPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new InvalidArgumentError(`no flash in ${layout.dir}: ${NVRAM_FILE} not found; create one with snmp-upgrade flash init`);
    }
    throw new InvalidArgumentError(`cannot read flash ${layout.nvramPath}: ${(error as Error).message}`, { cause: error });
  }
  return parseNvram(text, layout.nvramPath);
}

function initialSettings(options: FlashInitOptions): FlashSettings {
  const settings: FlashSettings = {
    urlPrefix: '',
    flashImage: '',
    trustedKeys: options.trustedKeys.map((key) => key.toLowerCase()),
    revokedKeyIds: (options.revokedKeyIds ?? []).map((keyId) => keyId.toLowerCase()),
    threshold: options.threshold ?? 1,
    securityCounter: 0n,
  };
  validateSettings(settings);
  return settings;
}

/**
 * Rejects a directory that already contains a flash or any other file. The leftovers of an init interrupted
 * before it wrote nvram.json (images/, staging/, temporary files) are removed, so init can be run again.
 */
async function clearForInit(layout: FlashLayout): Promise<void> {
  const entries = await readdir(layout.dir);
  if (entries.includes(NVRAM_FILE)) {
    throw new InvalidArgumentError(`${layout.dir} already contains a flash; use another directory, or remove it first`);
  }
  const leftovers = new Set(['images', 'staging']);
  const foreign = entries.filter((entry) => !leftovers.has(entry) && !entry.startsWith(`${NVRAM_FILE}.`) && !entry.startsWith(LOCK_FILE));
  if (foreign.length > 0) {
    throw new InvalidArgumentError(`flash directory ${layout.dir} is not empty (it contains ${foreign.slice(0, 5).join(', ')}); use an empty or new directory`);
  }

  for (const entry of entries) {
    if (entry.startsWith(LOCK_FILE)) continue;
    await rm(join(layout.dir, entry), { recursive: true, force: true });
  }
}

/**
 * Leaves the file system as it was before a failed init: the directories init created (`createdDir` is the
 * topmost, from mkdir -p) are removed, and an existing directory is emptied of what init wrote.
 */
async function removeFailedInit(layout: FlashLayout, createdDir: string | undefined): Promise<void> {
  if (createdDir !== undefined) {
    await rm(createdDir, { recursive: true, force: true });
    return;
  }
  const entries: string[] = await readdir(layout.dir).catch(() => []);
  if (entries.includes(NVRAM_FILE)) return;
  await rm(layout.imagesDir, { recursive: true, force: true });
  await rm(layout.stagingDir, { recursive: true, force: true });
}

async function copyInto(fromFile: string, writer: StagingWriter): Promise<{ sha256: string }> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(fromFile, { highWaterMark: 256 * 1024 })) {
      hash.update(chunk as Buffer);
      await writer.write(chunk as Buffer);
    }
  } catch (error) {
    await writer.abort();
    throw error;
  }
  return { sha256: hash.digest('hex') };
}

async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r+').catch((error: unknown) => {
    throw new InvalidArgumentError(`staged image ${path} not found: ${(error as Error).message}`, { cause: error });
  });
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function directoryBytes(path: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(path).catch(() => [])) {
    total += await stat(join(path, entry)).then((info) => info.size, () => 0);
  }
  return total;
}

async function hostFreeBytes(path: string): Promise<number> {
  const info = await statfs(path);
  return info.bavail * info.bsize;
}
