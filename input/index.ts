/**
 * Files that an operator names on the command line or in a configuration, read whole, with errors that name
 * the file and what it was expected to be.
 */
import type { Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';

import { InvalidArgumentError } from '../errors/index.js';

/**
 * Reads the regular file at `path` whole. `label` names the file in errors, for example "source image". A path
 * that is not a regular file is rejected before it is read: a character device such as /dev/zero or a FIFO may
 * never end, and a block device is a whole disk. A path that cannot be examined is left to the read, whose error
 * is then reported.
 */
export async function readInputFile(path: string, label: string): Promise<Buffer> {
  const info = await stat(path).catch(() => undefined);
  if (info !== undefined && !info.isFile()) {
    throw new InvalidArgumentError(`invalid ${label} ${path}: expected a file, got ${fileKind(info)}`);
  }
  try {
    return await readFile(path);
  } catch (error) {
    throw new InvalidArgumentError(`cannot read ${label} ${path}: ${(error as Error).message}`, { cause: error });
  }
}

function fileKind(info: Stats): string {
  if (info.isDirectory()) return 'a directory';
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isBlockDevice()) return 'a block device';
  if (info.isFIFO()) return 'a FIFO';
  if (info.isSocket()) return 'a socket';
  return 'a special file';
}
