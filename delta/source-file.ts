import { readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

import type { SourceReader } from './index.js';

/** Size of one cached block of the source image. */
const BLOCK_SIZE = 1 << 16;

/** Blocks kept at once: 16 blocks of 64 KiB, 1 MiB in all, whatever the image size. */
const CACHED_BLOCKS = 16;

/**
 * Opens a source image for positioned reads. `read` goes through a small cache of recently read blocks,
 * which saves system calls when small reads fall near each other. The blocks are allocated once and reused,
 * so the cache never grows. `readInto` reads straight into the caller's buffer. Reads must
 * not overlap in time, because a read may reuse the block that an earlier, unfinished one returns.
 *
 * NOTE: `readInto` reads synchronously (at most 256 KiB per call from the delta decoder), which blocks the event
 * loop for that read. From the page cache that is tens of microseconds, where a hop through libuv's thread pool
 * cost up to 250 microseconds per read on a busy 2-core machine; on slow flash it could be milliseconds.
 */
export async function openSourceFile(path: string): Promise<SourceReader & { close(): Promise<void> }> {
  const handle = await open(path, 'r');
  const { size } = await handle.stat();
  const cache = new BlockCache(handle, size);
  return {
    size,
    read: (position: number, length: number) => cache.read(position, length),
    readInto: (buffer: Uint8Array, offset: number, length: number, position: number) =>
      readFullySync(handle.fd, buffer, offset, Math.max(0, Math.min(length, size - position)), position),
    close: () => handle.close(),
  };
}

/** Size of the one buffer that readFileRange reads through. */
const READ_BUFFER_SIZE = 256 * 1024;

/**
 * Yields a file, or a byte range of it, in pieces that share one buffer, so each piece is valid only until the
 * next is requested: a patch body for a codec (see BodyCodec.decode), or an image being hashed. A read stream
 * gives each piece a new buffer until the garbage collector frees it. Hashing a 34 MB image that way peaked 19
 * to 28 MiB above Node's baseline, and through one buffer 0.8 MiB.
 */
export async function* readFileRange(path: string, range?: { start: number; length: number }): AsyncIterable<Buffer> {
  const buffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);
  const start = range?.start ?? 0;
  const end = range ? start + range.length : Number.POSITIVE_INFINITY;
  const handle = await open(path, 'r');
  try {
    for (let position = start; position < end; ) {
      const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, end - position), position);
      if (bytesRead === 0) return;
      yield buffer.subarray(0, bytesRead);
      position += bytesRead;
    }
  } finally {
    await handle.close();
  }
}

/**
 * Least-recently-used cache of aligned blocks. A read within at most two blocks returns a view of a cached
 * block or one reused join buffer; a longer read is not cached and gets a buffer of its own.
 */
class BlockCache {
  /** Block index to block contents, in order of last use (oldest first, as a Map keeps insertion order). */
  private readonly blocks = new Map<number, Buffer>();
  /** Two blocks' worth, for reads that straddle a block boundary. */
  private readonly joined = Buffer.allocUnsafe(2 * BLOCK_SIZE);

  constructor(
    private readonly handle: FileHandle,
    private readonly size: number,
  ) {}

  async read(position: number, length: number): Promise<Buffer> {
    const end = Math.min(position + length, this.size);
    if (position >= end) return Buffer.alloc(0);
    if (end - position > BLOCK_SIZE) {
      const result = Buffer.allocUnsafe(end - position);
      const filled = await readFully(this.handle, result, 0, result.length, position);
      return result.subarray(0, filled);
    }

    const firstBlock = Math.floor(position / BLOCK_SIZE);
    const lastBlock = Math.floor((end - 1) / BLOCK_SIZE);
    const first = await this.block(firstBlock);
    const start = position - firstBlock * BLOCK_SIZE;
    if (firstBlock === lastBlock) return first.subarray(start, start + end - position);

    // Both blocks are in the cache now: the second lookup evicts neither, because the first was just used.
    const filled = first.copy(this.joined, 0, start);
    const second = await this.block(lastBlock);
    const more = second.copy(this.joined, filled, 0, end - lastBlock * BLOCK_SIZE);
    return this.joined.subarray(0, filled + more);
  }

  private async block(index: number): Promise<Buffer> {
    const cached = this.blocks.get(index);
    if (cached !== undefined) {
      this.blocks.delete(index);
      this.blocks.set(index, cached);
      return cached;
    }

    let buffer: Buffer;
    if (this.blocks.size >= CACHED_BLOCKS) {
      const [oldest, reused] = this.blocks.entries().next().value as [number, Buffer];
      this.blocks.delete(oldest);
      buffer = reused.buffer.byteLength === BLOCK_SIZE ? Buffer.from(reused.buffer, reused.byteOffset, BLOCK_SIZE) : Buffer.allocUnsafe(BLOCK_SIZE);
    } else {
      buffer = Buffer.allocUnsafe(BLOCK_SIZE);
    }
    const start = index * BLOCK_SIZE;
    const filled = await readFully(this.handle, buffer, 0, Math.min(BLOCK_SIZE, this.size - start), start);
    const block = buffer.subarray(0, filled);
    this.blocks.set(index, block);
    return block;
  }
}

function readFullySync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number {
  let filled = 0;
  while (filled < length) {
    const bytesRead = readSync(fd, buffer, offset + filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled;
}

async function readFully(handle: FileHandle, buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, offset + filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled;
}
