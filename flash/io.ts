import { constants, copyFile, link, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

import { FlashWriteError, UpgradeError } from '../errors/index.js';

/**
 * The one call through which every byte reaches the flash directory. Tests replace it to make a write fail
 * part-way (ENOSPC after N bytes, EIO), which a real file system does only when it is actually full or failing.
 */
export interface FlashIo {
  /** Writes `data` at `position` of an open file and returns how many bytes were written (possibly fewer). */
  write(handle: FileHandle, data: Uint8Array, position: number): Promise<number>;
  /**
   * Makes `newPath` a hard link to `existingPath`; node:fs's link when not given. The flash lock uses it, and on a
   * file system without hard links (FAT fails with EPERM) creates its file exclusively instead.
   */
  link?(existingPath: string, newPath: string): Promise<void>;
}

export const DEFAULT_FLASH_IO: FlashIo = {
  async write(handle, data, position) {
    const { bytesWritten } = await handle.write(data, 0, data.length, position);
    return bytesWritten;
  },
};

/** Error codes of link(2) on a file system that has no hard links. */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * Gives `newPath` the content of the finished file `existingPath` unless `newPath` exists, and returns false
 * when it does. A hard link checks and names in one step, so a reader never sees part of the file. On a file
 * system without hard links, an exclusive copy does the same check, but the file is written after it is created.
 */
export async function linkExclusively(
  existingPath: string,
  newPath: string,
  linkFile: (existingPath: string, newPath: string) => Promise<void> = link,
): Promise<boolean> {
  try {
    await linkFile(existingPath, newPath);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code === undefined || !NO_HARD_LINKS.has(code)) throw error;
  }
  try {
    await copyFile(existingPath, newPath, constants.COPYFILE_EXCL);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/** Suffix of the temporary files of write-temp-then-rename; recovery removes any it finds. */
export const TEMP_SUFFIX = '.tmp';

/** Writes all of `data` at `position`, repeating after short writes. */
export async function writeFully(io: FlashIo, handle: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const written = await io.write(handle, data.subarray(done), position + done);
    if (written <= 0) {
      throw new FlashWriteError(`flash write failed: the file system accepted 0 of ${data.length - done} bytes at offset ${position + done}`);
    }
    done += written;
  }
}

/**
 * Makes a directory entry change (create, rename, unlink) durable. Without it a rename can be lost at power
 * loss even though the renamed file's data were synced.
 */
export async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Replaces `path` with `data` so that after a power loss the file has either the old or the new content:
 * write a temporary file beside it, fsync it, rename it over `path`, fsync the folder.
 */
export async function writeFileAtomic(io: FlashIo, path: string, data: Uint8Array): Promise<void> {
  const tempPath = `${path}.${process.pid}${TEMP_SUFFIX}`;
  try {
    const handle = await open(tempPath, 'w', 0o644);
    try {
      await writeFully(io, handle, data, 0);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tempPath, path);
    await syncDirectory(dirname(path));
  } catch (error) {
    await rm(tempPath, { force: true });
    throw asFlashWriteError(error, `writing ${basename(path)}`);
  }
}

/** Turns a file system failure into FlashWriteError naming the step; other UpgradeErrors pass unchanged. */
export function asFlashWriteError(error: unknown, step: string): UpgradeError {
  if (error instanceof UpgradeError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  const detail = error instanceof Error ? error.message : String(error);
  return new FlashWriteError(`flash write failed while ${step}: ${code ? `${code}, ` : ''}${detail}`, { cause: error });
}

