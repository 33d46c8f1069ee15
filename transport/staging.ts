import { open, rm, type FileHandle } from 'node:fs/promises';

import {
  AbortedError,
  FileTooLargeError,
  TransferError,
  TransferTimeoutError,
  UpgradeError,
  formatBytes,
} from '../errors/index.js';
import { redactUrl } from './url.js';
import type { FetchOptions } from './types.js';

// Blocks arrive in pieces of 512 to 65,464 bytes. Gathering them before each write keeps the number of file system
// calls per megabyte small, because those calls, not the copying, limit throughput on loopback.
const WRITE_BUFFER_BYTES = 256 * 1024;

/**
 * One fetch in progress: the deadline and abort signal, the staging file and the size checks. A protocol client
 * calls announceSize() once it has learned the size and write() for each piece of body in order, and throws on failure.
 * fetchToFile() in index.ts then removes the staging file.
 */
export class Transfer {
  readonly url: string;
  readonly shownUrl: string;
  readonly options: FetchOptions;

  /** Fires when the caller aborts or the overall deadline passes; its reason is the error to report. */
  readonly signal: AbortSignal;

  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private readonly onCallerAbort: () => void;
  private file: FileHandle | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private written = 0;
  private sizeAnnounced = false;
  private announcedSize: number | undefined;

  constructor(url: string, private readonly path: string, options: FetchOptions) {
    this.url = url;
    this.shownUrl = redactUrl(url);
    this.options = options;
    this.signal = this.controller.signal;

    this.timer = setTimeout(() => {
      this.controller.abort(
        new TransferTimeoutError(
          `transfer of ${this.shownUrl} timed out after ${options.timeoutMs} ms: expected the whole file, got ${formatBytes(this.bytesDone)}`,
        ),
      );
    }, options.timeoutMs);

    this.onCallerAbort = () => {
      this.controller.abort(new AbortedError(`transfer of ${this.shownUrl} aborted after ${formatBytes(this.bytesDone)}`));
    };
    if (options.signal?.aborted) this.onCallerAbort();
    else options.signal?.addEventListener('abort', this.onCallerAbort, { once: true });
  }

  /** Bytes received so far, written or still buffered. */
  get bytesDone(): number {
    return this.written + this.pendingBytes;
  }

  /** The size the server announced, once announceSize() ran. */
  get totalBytes(): number | undefined {
    return this.announcedSize;
  }

  /** Throws the abort or deadline error if either has happened. */
  throwIfStopped(): void {
    if (this.signal.aborted) throw this.signal.reason;
  }

  /** Resolves after `ms`, or rejects as soon as the transfer is aborted or its deadline passes. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.signal.aborted) {
        reject(this.signal.reason);
        return;
      }
      const onAbort = () => {
        clearTimeout(timer);
        reject(this.signal.reason);
      };
      const timer = setTimeout(() => {
        this.signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      this.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Records the size the server announced (undefined when it announced none). Refuses a size over maxBytes
   * before any body byte is fetched, then lets the caller check flash space through onSize. Later calls
   * (a restarted HTTP download) only check the size again.
   */
  async announceSize(totalBytes: number | undefined): Promise<void> {
    if (totalBytes !== undefined && totalBytes > this.options.maxBytes) {
      throw new FileTooLargeError(
        `${this.shownUrl} is too large: expected at most ${formatBytes(this.options.maxBytes)}, the server announced ${formatBytes(totalBytes)}`,
      );
    }
    if (this.sizeAnnounced) return;

    this.sizeAnnounced = true;
    this.announcedSize = totalBytes;
    await this.options.onSize?.(totalBytes);
    this.throwIfStopped();
  }

  /**
   * Appends a piece of body to the staging file, refusing to go past maxBytes. Returns a promise only when it
   * has to wait (the size callback or a write to disk), so per-block callers can skip an await most of the time.
   */
  write(chunk: Buffer): Promise<void> | undefined {
    if (!this.sizeAnnounced) return this.announceSize(undefined).then(() => this.write(chunk));

    this.assertRoomFor(chunk.length);

    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.options.onProgress?.(this.bytesDone, this.announcedSize);
    if (this.pendingBytes >= WRITE_BUFFER_BYTES) return this.flush();
    return undefined;
  }

  /** Throws FileTooLargeError when `bytes` more would take the file past maxBytes. */
  assertRoomFor(bytes: number): void {
    if (this.bytesDone + bytes > this.options.maxBytes) {
      throw new FileTooLargeError(
        `${this.shownUrl} is too large: expected at most ${formatBytes(this.options.maxBytes)}, received more`,
      );
    }
  }

  /** Empties the staging file, for a download that has to start over from the first byte. */
  async restart(): Promise<void> {
    this.pending = [];
    this.pendingBytes = 0;
    this.written = 0;
    const file = await this.openFile();
    await file.truncate(0);
  }

  /**
   * Writes what is buffered and closes the staging file; returns the number of bytes in it. There is no fsync:
   * the staging file is checked against its signed digest before use and fetched again after a crash, and making
   * the image durable is the flash store's job.
   */
  async finish(): Promise<number> {
    await this.flush();
    const file = await this.openFile();
    await file.close();
    this.file = undefined;
    return this.written;
  }

  /** Closes and removes the staging file after a failure; never throws. */
  async discard(): Promise<void> {
    this.pending = [];
    this.pendingBytes = 0;
    await this.file?.close().catch(() => undefined);
    this.file = undefined;
    await rm(this.path, { force: true }).catch(() => undefined);
  }

  /** Stops the deadline timer and lets go of the caller's signal. */
  dispose(): void {
    clearTimeout(this.timer);
    this.options.signal?.removeEventListener('abort', this.onCallerAbort);
  }

  /** Opens (creating or emptying) the staging file; the first call creates it even for an empty body. */
  async openFile(): Promise<FileHandle> {
    this.file ??= await open(this.path, 'w');
    return this.file;
  }

  private async flush(): Promise<void> {
    const file = await this.openFile();
    if (this.pendingBytes === 0) return;

    const data = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    let offset = 0;
    while (offset < data.length) {
      const { bytesWritten } = await file.write(data, offset, data.length - offset, this.written + offset);
      offset += bytesWritten;
    }
    this.written += data.length;
  }

  /**
   * Turns whatever a protocol client threw into the error to report. The abort or deadline error wins if one of
   * them fired, because a socket closed by the abort throws something less useful. UpgradeErrors stay as they
   * are, and anything else becomes a TransferError naming the URL.
   */
  failure(error: unknown): UpgradeError {
    if (this.signal.aborted && this.signal.reason instanceof UpgradeError) return this.signal.reason;
    if (error instanceof UpgradeError) return error;
    const message = error instanceof Error ? error.message : String(error);
    return new TransferError(`transfer of ${this.shownUrl} failed: ${message}`, { cause: error });
  }
}
