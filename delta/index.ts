/**
 * Patch body codecs. A codec turns a (source image, target image) pair into a patch body on the vendor side,
 * and turns a patch body plus the source image back into the target image on the device, streaming.
 * The codec id is the value stored in the patch header's codec field.
 */
import { deltaCodec } from './delta.js';
import { fullCodec } from './full.js';

/** Positioned reads from the source image on flash; the device never loads the whole image into memory. */
export interface SourceReader {
  readonly size: number;
  /**
   * Reads exactly `length` bytes at `position`; a read outside [0, size) is a codec error raised by the caller.
   * The result may share memory with a read cache and stays valid only until the next read, so callers copy
   * from it at once and never modify it.
   */
  read(position: number, length: number): Promise<Buffer>;
  /**
   * Reads `length` bytes at `position` into `buffer` at `offset` without allocating, and returns the number of
   * bytes read (fewer only at the end of the image). Synchronous, so a decoder that reads many spans needs no
   * promise per read. Optional: codecs fall back to `read` without it.
   */
  readInto?(buffer: Uint8Array, offset: number, length: number, position: number): number;
}

export interface BodyCodec {
  readonly id: number;
  readonly name: string;
  /** True when decoding reads the source image (a delta); false when the body holds the whole target. */
  readonly needsSource: boolean;
  /** Encodes the target image; deterministic: the same inputs give the same bytes. */
  encode(source: Buffer | undefined, target: Buffer): Promise<Buffer>;
  /**
   * Decodes a patch body read sequentially from `body`, yielding the target image in order. Yields exactly
   * `targetSize` bytes or throws a CodecError (a body that ends early, leaves data over, or would write past
   * `targetSize`). Memory use is bounded whatever the image size. A yielded buffer may be reused for later
   * output once the consumer asks for the next one, so a consumer that keeps output copies it. A codec is
   * done with a body chunk when it asks for the next, so the caller may reuse the chunk's buffer.
   */
  decode(body: AsyncIterable<Uint8Array>, source: SourceReader | undefined, targetSize: number): AsyncIterable<Buffer>;
}

const CODECS: readonly BodyCodec[] = [fullCodec, deltaCodec];

/** Returns the codec stored under `id` in a patch header, or undefined for an unknown id. */
export function codecById(id: number): BodyCodec | undefined {
  return CODECS.find((codec) => codec.id === id);
}

/** Returns the codec with the given name (`full`, `delta`), or undefined. */
export function codecByName(name: string): BodyCodec | undefined {
  return CODECS.find((codec) => codec.name === name);
}

/** Names of every codec this build knows, for help text and error messages. */
export function codecNames(): string[] {
  return CODECS.map((codec) => codec.name);
}

export { openSourceFile, readFileRange } from './source-file.js';
