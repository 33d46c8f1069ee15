import { constants, createBrotliDecompress, type BrotliDecompress } from 'node:zlib';

import { CodecError, formatBytes } from '../errors/index.js';

/**
 * The native brotli decoder inside a zlib stream object, which Node's own synchronous zlib functions drive
 * (lib/zlib.js, processChunkSync). `writeSync` decompresses input into an output range and leaves the bytes of
 * both still unused in the stream's write state; `onerror` receives brotli's error message.
 */
interface NativeBrotli {
  writeSync(operation: number, input: Uint8Array, inputOffset: number, inputLength: number, output: Uint8Array, outputOffset: number, outputLength: number): void;
  onerror: (message: string) => void;
}

const NO_INPUT = new Uint8Array(0);

/**
 * Reads a brotli stream (RFC 7932) out of a patch body that arrives as an async iterable of compressed chunks.
 * Brotli runs on this thread, straight into the caller's buffer, so a read neither waits for libuv's thread
 * pool nor allocates a buffer per piece of output. Node's streaming decompressor does both. Its 64 KiB output
 * buffers waited for the garbage collector: 2.4 to 2.5 MiB of the peak when applying the 34 MB turbo pair.
 * Each of them also cost a round trip between the pool and this thread (docs/benchmarks.md has the runs).
 *
 * The body's chunks are read one at a time, and a chunk is done with before the next is requested, so the body
 * may reuse one buffer for all of them (see BodyCodec.decode).
 *
 * NOTE: Node has no public API for incremental synchronous decompression, so this drives the decoder that a
 * zlib stream object holds, through the same fields Node's brotliDecompressSync uses. They are not documented;
 * the constructor checks that they are there and fails with a clear error on a Node.js that lacks them.
 */
export class BrotliReader {
  private readonly stream: BrotliDecompress;
  private readonly native: NativeBrotli;
  /** Unused output bytes, then unused input bytes, after each writeSync. */
  private readonly writeState: Uint32Array;
  private readonly chunks: AsyncIterator<Uint8Array>;
  private input: Uint8Array = NO_INPUT;
  private inputOffset = 0;
  private bodyDone = false;
  private streamDone = false;
  private failure: string | undefined;
  private readonly lookahead = Buffer.alloc(1);
  private hasLookahead = false;

  /**
   * `what` names the body in errors (`delta body`). `checkFirstByte`, if given, is called with the stream's
   * first byte before anything is decompressed, and may throw.
   */
  constructor(
    body: AsyncIterable<Uint8Array>,
    private readonly what: string,
    private checkFirstByte?: (byte: number) => void,
  ) {
    this.stream = createBrotliDecompress();
    const inner = this.stream as unknown as { _handle?: NativeBrotli; _writeState?: Uint32Array };
    if (typeof inner._handle?.writeSync !== 'function' || !(inner._writeState instanceof Uint32Array)) {
      this.stream.destroy();
      throw new Error(
        `cannot decode patches: Node.js ${process.version} does not expose the native decoder of its zlib streams (_handle.writeSync), which Node.js 20 does; run snmp-upgrade on Node.js 20`,
      );
    }
    this.native = inner._handle;
    this.writeState = inner._writeState;
    // Node's own handler would destroy the stream and emit an error event without a listener; `read` throws
    // the error instead.
    this.native.onerror = (message) => {
      this.failure = message;
    };
    this.chunks = body[Symbol.asyncIterator]();
  }

  /**
   * Fills `target` from `offset` with up to `length` decompressed bytes; returns how many it wrote, fewer only
   * where the stream ends. A damaged stream is a CodecError, and an error reading the body passes unchanged.
   */
  async read(target: Uint8Array, offset: number, length: number): Promise<number> {
    let done = 0;
    if (length > 0 && this.hasLookahead) {
      target[offset] = this.lookahead[0];
      this.hasLookahead = false;
      done = 1;
    }
    while (done < length && !this.streamDone) {
      if (this.inputOffset === this.input.length && !this.bodyDone) {
        await this.nextChunk();
        continue;
      }
      const inputLength = this.input.length - this.inputOffset;
      // With the body read to its end, FINISH makes brotli report a stream that stops short as an error.
      const finishing = inputLength === 0;
      const operation = finishing ? constants.BROTLI_OPERATION_FINISH : constants.BROTLI_OPERATION_PROCESS;
      this.native.writeSync(operation, this.input, this.inputOffset, inputLength, target, offset + done, length - done);
      if (this.failure !== undefined) {
        throw new CodecError(`${this.what} is not a valid brotli stream: ${this.failure}`);
      }
      const outputLeft = this.writeState[0];
      const inputLeft = this.writeState[1];
      done = length - outputLeft;
      this.inputOffset += inputLength - inputLeft;
      // Room left in the output means brotli wants more input. If input was left too, or the call had to
      // finish, the stream has ended instead.
      if (outputLeft > 0 && (inputLeft > 0 || finishing)) this.streamDone = true;
    }
    return done;
  }

  /** Tells whether any decompressed byte is left. */
  async hasMore(): Promise<boolean> {
    if (!this.hasLookahead) this.hasLookahead = (await this.read(this.lookahead, 0, 1)) === 1;
    return this.hasLookahead;
  }

  /**
   * Reads the rest of the body and throws a CodecError if any bytes follow the end of the brotli stream. Call it
   * only once `hasMore` has returned false.
   */
  async expectEnd(): Promise<void> {
    let unused = this.input.length - this.inputOffset;
    while (!this.bodyDone) {
      await this.nextChunk();
      unused += this.input.length;
    }
    this.input = NO_INPUT;
    this.inputOffset = 0;
    if (unused > 0) {
      throw new CodecError(`${this.what} has ${formatBytes(unused)} after the end of its brotli stream, expected none`);
    }
  }

  /** Frees the decoder and, when the body was not read to its end, closes it. */
  async close(): Promise<void> {
    this.stream.destroy();
    if (!this.bodyDone) {
      this.bodyDone = true;
      await this.chunks.return?.();
    }
  }

  private async nextChunk(): Promise<void> {
    const next = await this.chunks.next();
    if (next.done) {
      this.bodyDone = true;
      this.input = NO_INPUT;
    } else {
      if (this.checkFirstByte !== undefined && next.value.length > 0) {
        this.checkFirstByte(next.value[0]);
        this.checkFirstByte = undefined;
      }
      this.input = next.value;
    }
    this.inputOffset = 0;
  }
}
