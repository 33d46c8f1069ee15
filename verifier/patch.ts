import { createHash } from 'node:crypto';
import { open, readFile, rename, rm, writeFile } from 'node:fs/promises';

import { codecById, codecNames, readFileRange, type BodyCodec, type SourceReader } from '../delta/index.js';
import {
  BadPatchFormatError,
  BodyDigestMismatchError,
  InvalidArgumentError,
  SourceMismatchError,
  TargetDigestMismatchError,
  WrongPlatformError,
  formatBytes,
} from '../errors/index.js';
import { encodeHead, encodeHeader, MAX_HEAD_BYTES, parsePatchHead, type ParsedPatch, type PatchHeader } from './format.js';
import type { SecretKey } from './keys.js';
import { patchFileName, validateIdentifier } from './names.js';
import { signHeader } from './signatures.js';

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Returns the size and SHA-256 (hex) of a file, or of a byte range of it, read in one pass. */
export async function digestFile(path: string, range?: { start: number; length: number }): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const piece of readFileRange(path, range)) {
    hash.update(piece);
    size += piece.length;
  }
  return { size, sha256: hash.digest('hex') };
}

/** Returns the SHA-256 (hex) of a file, or of a byte range of it. */
export async function sha256File(path: string, range?: { start: number; length: number }): Promise<string> {
  return (await digestFile(path, range)).sha256;
}

export interface CreatePatchOptions {
  source: Buffer;
  target: Buffer;
  platform: string;
  sourceVersion: string;
  targetVersion: string;
  securityCounter: bigint;
  codec: BodyCodec;
  keys: SecretKey[];
  createdAt?: Date;
}

/** Builds a signed patch file in memory (vendor side). Returns its bytes and the name a device will ask for. */
export async function createPatch(options: CreatePatchOptions): Promise<{ fileName: string; bytes: Buffer; header: PatchHeader }> {
  const fileName = patchFileName(options.platform, options.sourceVersion);
  validateIdentifier('version', options.targetVersion);
  if (options.keys.length === 0) throw new InvalidArgumentError('patch create needs at least one signing key, got none');
  if (options.sourceVersion === options.targetVersion) {
    throw new InvalidArgumentError(`target version ${options.targetVersion} is the source version: expected a patch to another version`);
  }
  if (options.securityCounter < 0n || options.securityCounter >= 2n ** 64n) {
    throw new InvalidArgumentError(`invalid security counter: expected 0 to 2^64-1, got ${options.securityCounter}`);
  }

  const body = await options.codec.encode(options.codec.needsSource ? options.source : undefined, options.target);
  const header: PatchHeader = {
    platform: options.platform,
    sourceVersion: options.sourceVersion,
    sourceSize: options.source.length,
    sourceSha256: sha256Hex(options.source),
    targetVersion: options.targetVersion,
    targetSize: options.target.length,
    targetSha256: sha256Hex(options.target),
    securityCounter: options.securityCounter,
    codecId: options.codec.id,
    bodySize: body.length,
    bodySha256: sha256Hex(body),
    createdAt: options.createdAt ?? new Date(),
  };
  const headerBytes = encodeHeader(header);
  const signatures = options.keys.map((key) => signHeader(headerBytes, key));
  return { fileName, bytes: Buffer.concat([encodeHead(headerBytes, signatures), body]), header };
}

/** Reads and parses a patch file's head without reading its body. */
export async function readPatchHead(path: string): Promise<ParsedPatch & { fileSize: number }> {
  const handle = await open(path, 'r').catch((error: unknown) => {
    throw unreadablePatch(path, error);
  });
  let head: Buffer;
  let size: number;
  try {
    // A folder opens like a file on Linux and fails only when read (EISDIR).
    size = (await handle.stat()).size;
    head = Buffer.alloc(Math.min(size, MAX_HEAD_BYTES));
    head = head.subarray(0, (await handle.read(head, 0, head.length, 0)).bytesRead);
  } catch (error) {
    throw unreadablePatch(path, error);
  } finally {
    await handle.close();
  }
  return { ...parsePatchHead(head, size), fileSize: size };
}

/** Adds one signature to a patch file in place (write to a temporary name, then rename). */
export async function addSignature(path: string, key: SecretKey): Promise<{ keyId: string; signatures: number }> {
  const bytes = await readFile(path).catch((error: unknown) => {
    throw unreadablePatch(path, error);
  });
  const parsed = parsePatchHead(bytes, bytes.length);
  if (parsed.signatures.some((entry) => entry.keyId === key.keyId)) {
    throw new InvalidArgumentError(`patch ${path} is already signed by key ${key.keyId}`);
  }

  const signatures = [...parsed.signatures, signHeader(parsed.headerBytes, key)];
  const rewritten = Buffer.concat([encodeHead(parsed.headerBytes, signatures), bytes.subarray(parsed.bodyOffset)]);
  const temporary = `${path}.signing-${process.pid}`;
  try {
    await writeFile(temporary, rewritten);
    await rename(temporary, path);
  } catch (error) {
    throw new InvalidArgumentError(`cannot write patch file ${path}: ${(error as Error).message}`, { cause: error });
  } finally {
    await rm(temporary, { force: true });
  }
  return { keyId: key.keyId, signatures: signatures.length };
}

function unreadablePatch(path: string, error: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`cannot read patch file ${path}: ${(error as Error).message}`, { cause: error });
}

/** Returns the codec a header names; an unknown id is a format error that lists the codecs of this build. */
export function codecOf(header: PatchHeader): BodyCodec {
  const codec = codecById(header.codecId);
  if (!codec) {
    throw new BadPatchFormatError(`unknown body codec id ${header.codecId}: expected one of ${codecNames().join(', ')}`);
  }
  return codec;
}

/** Checks that the body bytes hash to the digest the signed header records. */
export async function verifyBodyDigest(path: string, patch: ParsedPatch): Promise<void> {
  const actual = await sha256File(path, { start: patch.bodyOffset, length: patch.header.bodySize });
  if (actual !== patch.header.bodySha256) {
    throw new BodyDigestMismatchError(
      `patch body digest mismatch: header records sha256 ${patch.header.bodySha256}, body is ${actual} (${formatBytes(patch.header.bodySize)})`,
    );
  }
}

/** Checks that the patch is for this device class. */
export function checkPlatform(header: PatchHeader, platform: string): void {
  if (header.platform !== platform) {
    throw new WrongPlatformError(`wrong platform: device is ${platform}, patch is for ${header.platform}`);
  }
}

/**
 * Checks that the image the patch would be applied to is byte for byte the one it was made from. This is what
 * catches a patch saved under another version's file name: the name is never trusted, the digest is.
 */
export function checkSource(header: PatchHeader, source: { size: number; sha256: string; label: string }): void {
  if (source.size !== header.sourceSize || source.sha256 !== header.sourceSha256) {
    throw new SourceMismatchError(
      `source image mismatch: patch expects sha256 ${header.sourceSha256} (${formatBytes(header.sourceSize)}), ` +
        `${source.label} is ${source.sha256} (${formatBytes(source.size)})`,
    );
  }
}

/** Streams the decoded target image out of a patch file's body, read through one reused buffer. */
export function decodeBody(path: string, patch: ParsedPatch, source: SourceReader | undefined): AsyncIterable<Buffer> {
  const codec = codecOf(patch.header);
  const { bodyOffset, header } = patch;
  const body = readFileRange(path, { start: bodyOffset, length: header.bodySize });
  return codec.decode(body, codec.needsSource ? source : undefined, header.targetSize);
}

/** Checks a decoded image's digest against the header's target digest. */
export function checkTarget(header: PatchHeader, actual: { size: number; sha256: string }): void {
  if (actual.size !== header.targetSize || actual.sha256 !== header.targetSha256) {
    throw new TargetDigestMismatchError(
      `target image mismatch: patch records sha256 ${header.targetSha256} (${formatBytes(header.targetSize)}), ` +
        `decoding gave ${actual.sha256} (${formatBytes(actual.size)})`,
    );
  }
}

