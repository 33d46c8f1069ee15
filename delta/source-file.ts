import { open, type FileHandle } from 'node:fs/promises';

import type { SourceReader } from './index.js';

/** Size of one cached block of the source image. */
const BLOCK_SIZE = 1 << 16;

/** Blocks kept at once: 16 blocks of 64 KiB, 1 MiB in all, whatever the image size. */
const CACHED_BLOCKS = 16;

/**
 * Opens a source image for positioned reads through a small cache of recently read blocks. A delta reads
 * the source mostly forwards in pieces of a few hundred bytes to a few KiB, so whole blocks save most system
 * calls; reads longer than two blocks go straight to the file and are not cached.
 */
export async function openSourceFile(path: string): Promise<SourceReader & { close(): Promise<void> }> {
  const handle = await open(path, 'r');
  const { size } = await handle.stat();
  const cache = new BlockCache(handle, size);
  return {
    size,
    read: (position: number, length: number) => cache.read(position, length),
    close: () => handle.close(),
  };
}

/** Least-recently-used cache of aligned blocks. Returns fewer bytes than asked only at the end of the file. */
class BlockCache {
  /** Block index to block contents, in order of last use (oldest first, as a Map keeps insertion order). */
  private readonly blocks = new Map<number, Buffer>();

  constructor(
    private readonly handle: FileHandle,
    private readonly size: number,
  ) {}

  async read(position: number, length: number): Promise<Buffer> {
    const end = Math.min(position + length, this.size);
    if (position >= end) return Buffer.alloc(0);
    if (end - position > 2 * BLOCK_SIZE) return this.readFile(position, end - position);

    const firstBlock = Math.floor(position / BLOCK_SIZE);
    const lastBlock = Math.floor((end - 1) / BLOCK_SIZE);
    if (firstBlock === lastBlock) {
      const block = await this.block(firstBlock);
      const start = position - firstBlock * BLOCK_SIZE;
      return block.subarray(start, start + end - position);
    }

    const result = Buffer.allocUnsafe(end - position);
    let filled = 0;
    for (let index = firstBlock; index <= lastBlock; index++) {
      const block = await this.block(index);
      const start = Math.max(position - index * BLOCK_SIZE, 0);
      const stop = Math.min(end - index * BLOCK_SIZE, block.length);
      if (start >= stop) break;
      filled += block.copy(result, filled, start, stop);
    }
    return filled === result.length ? result : result.subarray(0, filled);
  }

  private async block(index: number): Promise<Buffer> {
    const cached = this.blocks.get(index);
    if (cached !== undefined) {
      this.blocks.delete(index);
      this.blocks.set(index, cached);
      return cached;
    }

    const start = index * BLOCK_SIZE;
    const block = await this.readFile(start, Math.min(BLOCK_SIZE, this.size - start));
    if (this.blocks.size >= CACHED_BLOCKS) {
      const oldest = this.blocks.keys().next().value as number;
      this.blocks.delete(oldest);
    }
    this.blocks.set(index, block);
    return block;
  }

  private async readFile(position: number, length: number): Promise<Buffer> {
    const buffer = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await this.handle.read(buffer, filled, length - filled, position + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return filled === length ? buffer : buffer.subarray(0, filled);
  }
}
