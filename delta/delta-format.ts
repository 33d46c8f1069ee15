/**
 * Layout of a delta body (codec 2), shared by the encoder and the streaming decoder; docs/delta-format.md
 * describes it field by field. The body is one brotli stream (RFC 7932) of sections, each rebuilding up to
 * SECTION_OUTPUT_LIMIT bytes of the target from its own controls, differences and literals.
 */
import { CodecError } from '../errors/index.js';

/** Target bytes one section rebuilds at most, which bounds the decoder's buffers. */
export const SECTION_OUTPUT_LIMIT = 1 << 20;

/** Control entries per section at most; the encoder starts a new section when it reaches this. */
export const SECTION_ENTRY_LIMIT = 8192;

/** Bytes of controls in one section at most: SECTION_ENTRY_LIMIT entries of three 8-byte varints. */
export const SECTION_CONTROLS_LIMIT = SECTION_ENTRY_LIMIT * 3 * 8;

/**
 * Bytes of difference tokens in one section at most: a run varint and a byte for every output byte, plus a
 * closing run of at most 3 bytes (runs are below 2^21) per entry.
 */
export const SECTION_DIFFERENCES_LIMIT = 2 * SECTION_OUTPUT_LIMIT + 3 * SECTION_ENTRY_LIMIT;

/**
 * Largest brotli window the decoder accepts (the encoder uses a smaller one). The decoder's ring buffer is as
 * large as the window, so a body asking for the 16 MiB maximum could exceed the device's memory budget.
 */
export const WINDOW_BITS = 20;

/** Largest control value: every length, offset and seek is a safe integer. */
const MAX_VALUE = Number.MAX_SAFE_INTEGER;

/** A varint of more than 8 bytes carries more than 56 bits, which no valid control value needs. */
const MAX_VARINT_BYTES = 8;

/** Growable byte buffer for building a body. */
export class ByteWriter {
  private bytes: Uint8Array;
  length = 0;

  constructor(initialCapacity = 4096) {
    this.bytes = new Uint8Array(initialCapacity);
  }

  private reserve(extra: number): void {
    if (this.length + extra <= this.bytes.length) return;
    let capacity = this.bytes.length * 2;
    while (capacity < this.length + extra) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }

  writeByte(value: number): void {
    this.reserve(1);
    this.bytes[this.length++] = value;
  }

  writeBytes(values: Uint8Array): void {
    this.reserve(values.length);
    this.bytes.set(values, this.length);
    this.length += values.length;
  }

  /** Writes an unsigned LEB128 varint of a safe non-negative integer. */
  writeVarint(value: number): void {
    this.reserve(MAX_VARINT_BYTES);
    while (value >= 0x80) {
      this.bytes[this.length++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    this.bytes[this.length++] = value;
  }

  /** Writes a signed safe integer as a zigzag varint: 0, -1, 1, -2 ... become 0, 1, 2, 3 ... */
  writeSignedVarint(value: number): void {
    this.writeVarint(value < 0 ? -2 * value - 1 : 2 * value);
  }

  /** Returns the bytes written so far, sharing memory with the writer. */
  view(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }

  reset(): void {
    this.length = 0;
  }
}

/** Sequential reader of varints from one section's bytes, rejecting values no valid body contains. */
export class VarintReader {
  offset: number;

  constructor(
    readonly bytes: Uint8Array,
    private readonly what: string,
    start = 0,
    readonly end = bytes.length,
  ) {
    this.offset = start;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  readVarint(field: string): number {
    // Most values fit in one byte; the loop below, with its checks and messages, reads the others.
    const offset = this.offset;
    if (offset < this.end && this.bytes[offset] < 0x80) {
      this.offset = offset + 1;
      return this.bytes[offset];
    }
    return this.readLongVarint(field);
  }

  private readLongVarint(field: string): number {
    let value = 0;
    let scale = 1;
    for (let count = 0; count < MAX_VARINT_BYTES + 2; count++) {
      if (this.offset >= this.end) {
        throw new CodecError(`delta ${this.what} ends inside the varint of ${field}: expected another byte, found the end`);
      }
      const byte = this.bytes[this.offset++];
      value += (byte & 0x7f) * scale;
      scale *= 0x80;
      if ((byte & 0x80) === 0) {
        // A 64-bit value with its top bit set reads as a negative length in a signed 64-bit encoding; such values
        // and anything else past 2^53 would lose precision here, so they are rejected before any arithmetic.
        if (count >= MAX_VARINT_BYTES || value > MAX_VALUE) {
          throw new CodecError(
            `delta ${this.what} has an out-of-range ${field}: expected at most 2^53 - 1, found a ${count + 1}-byte varint of about ${value.toExponential(3)}`,
          );
        }
        return value;
      }
    }
    throw new CodecError(`delta ${this.what} has an overlong varint for ${field}: expected at most ${MAX_VARINT_BYTES} bytes`);
  }

  readSignedVarint(field: string): number {
    const encoded = this.readVarint(field);
    return encoded % 2 === 0 ? encoded / 2 : -(encoded + 1) / 2;
  }
}

/**
 * Returns the window size in bits that a brotli stream header declares (RFC 7932, section 9.1), or
 * undefined for a large-window stream, which RFC 7932 does not define and the decoder rejects.
 */
export function brotliWindowBits(firstByte: number): number | undefined {
  if ((firstByte & 1) === 0) return 16;
  const short = (firstByte >> 1) & 7;
  if (short !== 0) return 17 + short;
  const long = (firstByte >> 4) & 7;
  if (long === 1) return undefined;
  return long === 0 ? 17 : 8 + long;
}
