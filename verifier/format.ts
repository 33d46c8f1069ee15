/**
 * The patch file's binary layout (docs/patch-format.md has it as tables):
 *
 *   prefix      magic (8) | format version u16 | header length u32
 *   header      the signed fields, `header length` bytes
 *   signatures  count u16 | count x (key id 8 | signature length u16 | signature)
 *   body        exactly `body size` bytes, nothing after
 *
 * All integers are big-endian. Every length and count is checked against its bound and against what the file
 * holds before anything is allocated from it.
 */
import { BadPatchFormatError } from '../errors/index.js';
import { KEY_ID_BYTES } from './keys.js';
import { MAX_IDENTIFIER_LENGTH, validateIdentifier } from './names.js';

/** PNG-style magic: the high byte and the CR LF / LF pair catch 7-bit and text-mode transfers that mangle the file. */
export const PATCH_MAGIC = Buffer.from([0x89, 0x53, 0x55, 0x50, 0x0d, 0x0a, 0x1a, 0x0a]);
export const FORMAT_VERSION = 1;

export const PREFIX_BYTES = 8 + 2 + 4;
export const MAX_HEADER_BYTES = 64 * 1024;
export const MAX_SIGNATURES = 32;
/** Signatures are 64 bytes; a longer length field is refused as malformed rather than read. */
export const MAX_SIGNATURE_FIELD_BYTES = 1024;
export const DIGEST_BYTES = 32;
/** Largest size that a JavaScript number holds exactly; every size field is checked against it. */
export const MAX_SAFE_SIZE = 2 ** 53 - 1;

/** The most the header, prefix and signature block can occupy; a device reads at most this much up front. */
export const MAX_HEAD_BYTES = PREFIX_BYTES + MAX_HEADER_BYTES + 2 + MAX_SIGNATURES * (KEY_ID_BYTES + 2 + MAX_SIGNATURE_FIELD_BYTES);

export interface PatchHeader {
  platform: string;
  sourceVersion: string;
  sourceSize: number;
  sourceSha256: string;
  targetVersion: string;
  targetSize: number;
  targetSha256: string;
  /** Monotonic anti-rollback counter: a device refuses a patch whose counter is below the one it stored. */
  securityCounter: bigint;
  codecId: number;
  bodySize: number;
  bodySha256: string;
  createdAt: Date;
}

export interface PatchSignature {
  keyId: string;
  signature: Uint8Array;
}

/** A parsed patch head: everything before the body, with the exact header bytes that signatures cover. */
export interface ParsedPatch {
  header: PatchHeader;
  headerBytes: Buffer;
  signatures: PatchSignature[];
  bodyOffset: number;
}

/** Encodes the signed header fields. */
export function encodeHeader(header: PatchHeader): Buffer {
  validateIdentifier('platform', header.platform);
  validateIdentifier('version', header.sourceVersion);
  validateIdentifier('version', header.targetVersion);

  const writer = new Writer();
  writer.string(header.platform);
  writer.string(header.sourceVersion);
  writer.u64(BigInt(header.sourceSize));
  writer.digest(header.sourceSha256);
  writer.string(header.targetVersion);
  writer.u64(BigInt(header.targetSize));
  writer.digest(header.targetSha256);
  writer.u64(header.securityCounter);
  writer.u16(header.codecId);
  writer.u64(BigInt(header.bodySize));
  writer.digest(header.bodySha256);
  writer.u64(BigInt(Math.floor(header.createdAt.getTime() / 1000)));
  return writer.finish();
}

/** Encodes a whole patch file head (prefix, header, signatures); the body follows it. */
export function encodeHead(headerBytes: Buffer, signatures: PatchSignature[]): Buffer {
  if (signatures.length > MAX_SIGNATURES) {
    throw new BadPatchFormatError(`too many signatures: expected at most ${MAX_SIGNATURES}, got ${signatures.length}`);
  }
  const writer = new Writer();
  writer.bytes(PATCH_MAGIC);
  writer.u16(FORMAT_VERSION);
  writer.u32(headerBytes.length);
  writer.bytes(headerBytes);
  writer.u16(signatures.length);
  for (const { keyId, signature } of signatures) {
    writer.bytes(Buffer.from(keyId, 'hex'));
    writer.u16(signature.length);
    writer.bytes(signature);
  }
  return writer.finish();
}

/**
 * Parses the head of a patch file. `head` holds the file's first bytes (at least up to the body, or all of a
 * shorter file); `fileSize` is the whole file's size, so a body shorter or longer than declared is caught here.
 */
export function parsePatchHead(head: Buffer, fileSize: number): ParsedPatch {
  const reader = new Reader(head, 'patch file');

  const magic = reader.bytes(PATCH_MAGIC.length, 'magic');
  if (!magic.equals(PATCH_MAGIC)) {
    throw new BadPatchFormatError(`not a patch file: expected magic ${PATCH_MAGIC.toString('hex')}, got ${magic.toString('hex')}`);
  }
  const formatVersion = reader.u16('format version');
  if (formatVersion !== FORMAT_VERSION) {
    throw new BadPatchFormatError(`unsupported patch format version: expected ${FORMAT_VERSION}, got ${formatVersion}`);
  }
  const headerLength = reader.u32('header length');
  if (headerLength > MAX_HEADER_BYTES) {
    throw new BadPatchFormatError(`header length out of range: expected at most ${MAX_HEADER_BYTES} bytes, got ${headerLength}`);
  }
  const headerBytes = reader.bytes(headerLength, 'header');
  const header = decodeHeader(headerBytes);

  const count = reader.u16('signature count');
  if (count > MAX_SIGNATURES) {
    throw new BadPatchFormatError(`signature count out of range: expected at most ${MAX_SIGNATURES}, got ${count}`);
  }
  const signatures: PatchSignature[] = [];
  for (let index = 0; index < count; index++) {
    const keyId = reader.bytes(KEY_ID_BYTES, `key id of signature ${index + 1}`).toString('hex');
    const length = reader.u16(`length of signature ${index + 1}`);
    if (length > MAX_SIGNATURE_FIELD_BYTES) {
      throw new BadPatchFormatError(`signature ${index + 1} length out of range: expected at most ${MAX_SIGNATURE_FIELD_BYTES} bytes, got ${length}`);
    }
    signatures.push({ keyId, signature: new Uint8Array(reader.bytes(length, `signature ${index + 1}`)) });
  }

  const bodyOffset = reader.offset;
  const bodyInFile = fileSize - bodyOffset;
  if (bodyInFile < header.bodySize) {
    throw new BadPatchFormatError(`patch body truncated: header declares ${header.bodySize} bytes, the file holds ${bodyInFile}`);
  }
  if (bodyInFile > header.bodySize) {
    throw new BadPatchFormatError(`trailing bytes after the patch body: header declares ${header.bodySize} bytes, the file holds ${bodyInFile}`);
  }
  return { header, headerBytes, signatures, bodyOffset };
}

function decodeHeader(headerBytes: Buffer): PatchHeader {
  const reader = new Reader(headerBytes, 'header');
  const platform = reader.identifier('platform');
  const sourceVersion = reader.identifier('version', 'source version');
  const sourceSize = reader.size('source size');
  const sourceSha256 = reader.digest('source SHA-256');
  const targetVersion = reader.identifier('version', 'target version');
  const targetSize = reader.size('target size');
  const targetSha256 = reader.digest('target SHA-256');
  const securityCounter = reader.u64('security counter');
  const codecId = reader.u16('codec id');
  const bodySize = reader.size('body size');
  const bodySha256 = reader.digest('body SHA-256');
  const createdSeconds = reader.u64('creation time');
  if (reader.offset !== headerBytes.length) {
    throw new BadPatchFormatError(`header has ${headerBytes.length - reader.offset} unexpected bytes after its last field`);
  }
  return {
    platform,
    sourceVersion,
    sourceSize,
    sourceSha256,
    targetVersion,
    targetSize,
    targetSha256,
    securityCounter,
    codecId,
    bodySize,
    bodySha256,
    createdAt: new Date(Number(createdSeconds) * 1000),
  };
}

class Writer {
  private readonly parts: Buffer[] = [];

  u16(value: number): void {
    const part = Buffer.alloc(2);
    part.writeUInt16BE(value);
    this.parts.push(part);
  }

  u32(value: number): void {
    const part = Buffer.alloc(4);
    part.writeUInt32BE(value);
    this.parts.push(part);
  }

  u64(value: bigint): void {
    const part = Buffer.alloc(8);
    part.writeBigUInt64BE(value);
    this.parts.push(part);
  }

  string(value: string): void {
    const bytes = Buffer.from(value, 'utf8');
    this.parts.push(Buffer.from([bytes.length]), bytes);
  }

  digest(hex: string): void {
    const bytes = Buffer.from(hex, 'hex');
    if (bytes.length !== DIGEST_BYTES) throw new RangeError(`a SHA-256 digest is ${DIGEST_BYTES} bytes, got ${bytes.length}`);
    this.parts.push(bytes);
  }

  bytes(value: Uint8Array): void {
    this.parts.push(Buffer.from(value));
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** Bounds-checked reads: every field is checked against what remains before it is read. */
class Reader {
  offset = 0;

  constructor(
    private readonly buffer: Buffer,
    private readonly what: string,
  ) {}

  private need(count: number, field: string): void {
    const remaining = this.buffer.length - this.offset;
    if (count > remaining) {
      throw new BadPatchFormatError(
        `${this.what} truncated in ${field} at offset ${this.offset}: expected ${count} more bytes, got ${remaining}`,
      );
    }
  }

  bytes(count: number, field: string): Buffer {
    this.need(count, field);
    const value = this.buffer.subarray(this.offset, this.offset + count);
    this.offset += count;
    return value;
  }

  u16(field: string): number {
    return this.bytes(2, field).readUInt16BE();
  }

  u32(field: string): number {
    return this.bytes(4, field).readUInt32BE();
  }

  u64(field: string): bigint {
    return this.bytes(8, field).readBigUInt64BE();
  }

  size(field: string): number {
    const value = this.u64(field);
    if (value > BigInt(MAX_SAFE_SIZE)) {
      throw new BadPatchFormatError(`${field} out of range: expected at most 2^53-1 bytes, got ${value}`);
    }
    return Number(value);
  }

  digest(field: string): string {
    return this.bytes(DIGEST_BYTES, field).toString('hex');
  }

  identifier(kind: 'platform' | 'version', field: string = kind): string {
    const length = this.bytes(1, `${field} length`)[0]!;
    if (length > MAX_IDENTIFIER_LENGTH) {
      throw new BadPatchFormatError(`${field} length out of range: expected at most ${MAX_IDENTIFIER_LENGTH}, got ${length}`);
    }
    const value = this.bytes(length, field).toString('utf8');
    try {
      validateIdentifier(kind, value);
    } catch (error) {
      throw new BadPatchFormatError(`${field} in the header is invalid: ${(error as Error).message}`, { cause: error });
    }
    return value;
  }
}
