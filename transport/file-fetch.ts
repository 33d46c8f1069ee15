import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

import { AccessViolationError, FileNotFoundError, TransferError, TransferTruncatedError, UpgradeError, formatBytes } from '../errors/index.js';
import type { Transfer } from './staging.js';

/** Copies a file: URL (local media such as a USB stick) into the staging file. */
export async function fetchFile(transfer: Transfer): Promise<void> {
  const path = fileURLToPath(transfer.url);

  let size: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) {
      throw new FileNotFoundError(`${transfer.shownUrl} is not a regular file: expected a patch file, got a ${info.isDirectory() ? 'folder' : 'special file'}`);
    }
    size = info.size;
  } catch (error) {
    throw mapFileError(error, transfer.shownUrl);
  }
  await transfer.announceSize(size);

  // The stream is read to its end rather than for `size` bytes, so a file that grows while it is copied still
  // meets the maxBytes check in write(), and one that shrinks is caught below.
  const stream = createReadStream(path, { highWaterMark: 1024 * 1024, signal: transfer.signal });
  try {
    for await (const chunk of stream) {
      await transfer.write(chunk as Buffer);
    }
  } catch (error) {
    stream.destroy();
    throw mapFileError(error, transfer.shownUrl);
  }

  if (transfer.bytesDone < size) {
    throw new TransferTruncatedError(
      `${transfer.shownUrl} was truncated while it was read: expected ${formatBytes(size)}, got ${formatBytes(transfer.bytesDone)}`,
    );
  }
}

function mapFileError(error: unknown, shownUrl: string): unknown {
  if (error instanceof UpgradeError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new FileNotFoundError(`${shownUrl} not found: expected an existing patch file`, { cause: error });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new AccessViolationError(`${shownUrl} cannot be read: permission denied`, { cause: error });
  }
  if (code === 'EISDIR') {
    return new FileNotFoundError(`${shownUrl} is a folder: expected a patch file`, { cause: error });
  }
  if (typeof code === 'string') {
    return new TransferError(`reading ${shownUrl} failed: ${(error as Error).message}`, { cause: error });
  }
  return error;
}
