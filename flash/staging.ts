import { open, rm, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';

import { FlashWriteError } from '../errors/index.js';
import { asFlashWriteError, writeFully, type FlashIo } from './io.js';

/**
 * Sequential writer of a staging file that behaves like a write to a real flash. It fails with FlashWriteError
 * once the flash's free bytes are used up, as a full file system fails with ENOSPC. A failed or aborted write
 * removes the partial file, so the flash keeps no half image.
 */
export class StagingWriter {
  private written = 0;
  private closed = false;

  private constructor(
    private readonly io: FlashIo,
    private readonly handle: FileHandle,
    readonly path: string,
    readonly limitBytes: number,
  ) {}

  /** Creates (or truncates) the staging file at `path`; writes past `limitBytes` fail as a full flash would. */
  static async create(io: FlashIo, path: string, limitBytes: number): Promise<StagingWriter> {
    try {
      return new StagingWriter(io, await open(path, 'w', 0o644), path, limitBytes);
    } catch (error) {
      throw asFlashWriteError(error, `creating ${basename(path)}`);
    }
  }

  get bytesWritten(): number {
    return this.written;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.closed) throw new FlashWriteError(`flash write failed: ${basename(this.path)} is already closed`);

    if (this.written + chunk.length > this.limitBytes) {
      await this.abort();
      throw new FlashWriteError(
        `flash write failed: ${basename(this.path)} needs more than the ${this.limitBytes} bytes free on the flash (ENOSPC after ${this.written} bytes)`,
      );
    }

    try {
      await writeFully(this.io, this.handle, chunk, this.written);
    } catch (error) {
      await this.abort();
      throw asFlashWriteError(error, `writing ${basename(this.path)} after ${this.written} bytes`);
    }
    this.written += chunk.length;
  }

  /** Flushes the file to stable storage and closes it; the file stays for installImage. */
  async finish(): Promise<void> {
    try {
      await this.handle.sync();
      this.closed = true;
      await this.handle.close();
    } catch (error) {
      await this.abort();
      throw asFlashWriteError(error, `syncing ${basename(this.path)}`);
    }
  }

  /** Closes and removes the partial file. */
  async abort(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await this.handle.close().catch(() => undefined);
    }
    await rm(this.path, { force: true });
  }
}
