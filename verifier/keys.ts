import { createHash } from 'node:crypto';
import { open, rm, writeFile, type FileHandle } from 'node:fs/promises';

import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';

import { InvalidArgumentError } from '../errors/index.js';

// noble's synchronous API needs a SHA-512 implementation; @noble/hashes is the one it is tested with.
ed.hashes.sha512 = sha512;

export const PUBLIC_KEY_BYTES = 32;
export const SECRET_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;
export const KEY_ID_BYTES = 8;

const PUBLIC_KEY_LABEL = 'snmp-upgrade-ed25519-public';
const SECRET_KEY_LABEL = 'snmp-upgrade-ed25519-secret';

// Domain separation: a key id is never confused with any other SHA-256 this product computes.
const KEY_ID_DOMAIN = Buffer.from('snmp-upgrade key id v1\0', 'latin1');

export interface PublicKey {
  /** 16 hex digits: the first 8 bytes of a domain-separated SHA-256 of the key. */
  keyId: string;
  bytes: Uint8Array;
}

export interface SecretKey {
  keyId: string;
  /** The 32-byte Ed25519 seed of RFC 8032 section 5.1.5. */
  seed: Uint8Array;
  publicKey: Uint8Array;
}

/** Returns the key id of a 32-byte public key. */
export function keyIdOf(publicKey: Uint8Array): string {
  return createHash('sha256').update(KEY_ID_DOMAIN).update(publicKey).digest().subarray(0, KEY_ID_BYTES).toString('hex');
}

/**
 * Returns a key id as this product writes it (16 lowercase hex digits), accepting upper case too. Anything else
 * is an InvalidArgumentError naming `origin`, because an id that can never match would silently revoke nothing.
 */
export function parseKeyId(text: string, origin: string): string {
  if (!/^[0-9a-f]{16}$/i.test(text)) {
    throw new InvalidArgumentError(`invalid ${origin} ${JSON.stringify(text.slice(0, 80))}: expected a key id of 16 hex digits, as keygen prints`);
  }
  return text.toLowerCase();
}

/** Makes a new key pair from the operating system's random source. */
export function generateKeyPair(): SecretKey {
  const seed = ed.utils.randomSecretKey();
  return secretKeyFromSeed(seed);
}

export function secretKeyFromSeed(seed: Uint8Array): SecretKey {
  if (seed.length !== SECRET_KEY_BYTES) {
    throw new InvalidArgumentError(`invalid Ed25519 secret key: expected ${SECRET_KEY_BYTES} bytes, got ${seed.length}`);
  }
  const publicKey = ed.getPublicKey(seed);
  return { keyId: keyIdOf(publicKey), seed, publicKey };
}

/**
 * Parses a public key given as 64 hex digits. The length is checked here so that a key of 31 or 33 bytes is
 * reported as such instead of failing later inside the signature check.
 */
export function parsePublicKeyHex(hex: string, origin = 'public key'): PublicKey {
  const bytes = decodeHex(hex, PUBLIC_KEY_BYTES, origin);
  checkPublicKey(bytes, origin);
  return { keyId: keyIdOf(bytes), bytes };
}

/**
 * Checks a public key's encoding the way strict RFC 8032 verification will: 32 bytes, a canonical point
 * encoding, and not of small order (such a key lets one signature verify for many messages).
 */
export function checkPublicKey(bytes: Uint8Array, origin: string): void {
  if (bytes.length !== PUBLIC_KEY_BYTES) {
    throw new InvalidArgumentError(`invalid ${origin}: expected ${PUBLIC_KEY_BYTES} bytes, got ${bytes.length}`);
  }
  let point: ed.Point;
  try {
    point = ed.Point.fromBytes(bytes, false);
  } catch (error) {
    throw new InvalidArgumentError(`invalid ${origin}: not a canonical Ed25519 point encoding`, { cause: error });
  }
  if (point.isSmallOrder()) {
    throw new InvalidArgumentError(`invalid ${origin}: a small-order point cannot be a signing key`);
  }
}

/** Formats a public key file: one line, a label and the key in hex. */
export function formatPublicKeyFile(publicKey: Uint8Array): string {
  return `${PUBLIC_KEY_LABEL} ${Buffer.from(publicKey).toString('hex')}\n`;
}

export function formatSecretKeyFile(seed: Uint8Array): string {
  return `${SECRET_KEY_LABEL} ${Buffer.from(seed).toString('hex')}\n`;
}

export function parsePublicKeyFile(text: string, path: string): PublicKey {
  const hex = parseKeyLine(text, PUBLIC_KEY_LABEL, path);
  return parsePublicKeyHex(hex, `public key in ${path}`);
}

export function parseSecretKeyFile(text: string, path: string): SecretKey {
  const hex = parseKeyLine(text, SECRET_KEY_LABEL, path);
  return secretKeyFromSeed(decodeHex(hex, SECRET_KEY_BYTES, `secret key in ${path}`));
}

export async function readPublicKeyFile(path: string): Promise<PublicKey> {
  return parsePublicKeyFile(await readKeyText(path), path);
}

export async function readSecretKeyFile(path: string): Promise<SecretKey> {
  return parseSecretKeyFile(await readKeyText(path), path);
}

/** Writes BASE.key (mode 0600, never overwritten) and BASE.pub. */
export async function writeKeyPair(base: string, key: SecretKey): Promise<{ secretPath: string; publicPath: string }> {
  const secretPath = `${base}.key`;
  const publicPath = `${base}.pub`;
  // 'wx' fails rather than replace an existing secret key, which would orphan every device that trusts it.
  await writeFile(secretPath, formatSecretKeyFile(key.seed), { mode: 0o600, flag: 'wx' }).catch((error: unknown) => {
    throw keyWriteError(secretPath, error);
  });
  try {
    await writeFile(publicPath, formatPublicKeyFile(key.publicKey), { flag: 'wx' });
  } catch (error) {
    // A secret key without its public half is of no use, and would block the next keygen with the same name.
    await rm(secretPath, { force: true });
    throw keyWriteError(publicPath, error);
  }
  return { secretPath, publicPath };
}

function keyWriteError(path: string, error: unknown): InvalidArgumentError {
  if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
    return new InvalidArgumentError(`key file ${path} already exists; choose another --out`, { cause: error });
  }
  return new InvalidArgumentError(`cannot write key file ${path}: ${(error as Error).message}`, { cause: error });
}

/** Largest key file read; a key file is one short line, and a device such as /dev/zero given by mistake never ends. */
const KEY_FILE_LIMIT = 4096;

async function readKeyText(path: string): Promise<string> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, 'r');
    const buffer = Buffer.alloc(KEY_FILE_LIMIT + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > KEY_FILE_LIMIT) {
      throw new InvalidArgumentError(`invalid key file ${path}: expected one line of at most ${KEY_FILE_LIMIT} bytes, got more`);
    }
    return buffer.toString('utf8', 0, length);
  } catch (error) {
    if (error instanceof InvalidArgumentError) throw error;
    throw new InvalidArgumentError(`cannot read key file ${path}: ${(error as Error).message}`, { cause: error });
  } finally {
    await handle?.close();
  }
}

function parseKeyLine(text: string, label: string, path: string): string {
  const fields = text.trim().split(/\s+/);
  if (fields.length !== 2 || fields[0] !== label) {
    // JSON quoting escapes control characters, so a binary file given as a key cannot garble the terminal.
    const found = fields[0] ? JSON.stringify(fields[0].slice(0, 40)) : 'an empty file';
    throw new InvalidArgumentError(`invalid key file ${path}: expected "${label} <hex>", found ${found}`);
  }
  return fields[1]!;
}

function decodeHex(hex: string, expectedBytes: number, origin: string): Uint8Array {
  if (!/^[0-9a-fA-F]*$/.test(hex) || hex.length % 2 !== 0) {
    throw new InvalidArgumentError(`invalid ${origin}: expected ${expectedBytes * 2} hex digits, got ${JSON.stringify(hex.slice(0, 80))}`);
  }
  const bytes = new Uint8Array(Buffer.from(hex, 'hex'));
  if (bytes.length !== expectedBytes) {
    throw new InvalidArgumentError(`invalid ${origin}: expected ${expectedBytes} bytes, got ${bytes.length}`);
  }
  return bytes;
}
