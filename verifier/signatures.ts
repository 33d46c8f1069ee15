import * as ed from '@noble/ed25519';

import {
  BadSignatureError,
  InvalidArgumentError,
  RevokedKeyError,
  ThresholdNotMetError,
  UntrustedKeyError,
} from '../errors/index.js';
import { FORMAT_VERSION, type ParsedPatch, type PatchSignature } from './format.js';
import { checkPublicKey, parseKeyId, SIGNATURE_BYTES, type PublicKey, type SecretKey } from './keys.js';

// Domain separation: a signature over a patch header can never be replayed as a signature over anything else
// the same vendor key signs, and the format version is bound so a header cannot be reinterpreted by another.
const SIGNING_DOMAIN = Buffer.from('snmp-upgrade patch header v1\0', 'latin1');

/** The order of the Ed25519 base point, L = 2^252 + 27742317777372353535851937790883648493 (RFC 8032 section 5.1). */
const GROUP_ORDER = 2n ** 252n + 27742317777372353535851937790883648493n;

/** Public keys a device accepts, revoked key ids, and how many distinct trusted keys must have signed. */
export interface TrustSet {
  keys: PublicKey[];
  revokedKeyIds: string[];
  threshold: number;
}

/** Returns the exact bytes a signature covers: the domain, the format version, the header length and the header. */
export function signingInput(headerBytes: Buffer): Buffer {
  const lengths = Buffer.alloc(6);
  lengths.writeUInt16BE(FORMAT_VERSION, 0);
  lengths.writeUInt32BE(headerBytes.length, 2);
  return Buffer.concat([SIGNING_DOMAIN, lengths, headerBytes]);
}

export function signHeader(headerBytes: Buffer, key: SecretKey): PatchSignature {
  return { keyId: key.keyId, signature: ed.sign(signingInput(headerBytes), key.seed) };
}

/** Why one signature entry did not count towards the threshold. */
type Rejection = { keyId: string; kind: 'untrusted' | 'revoked' | 'invalid'; detail: string };

/**
 * Checks a patch's signatures against a trust set and returns the ids of the distinct trusted keys whose
 * signatures are valid. Throws when fewer than `threshold` of them signed.
 */
export function verifySignatures(patch: ParsedPatch, trust: TrustSet): string[] {
  if (!Number.isInteger(trust.threshold) || trust.threshold < 1) {
    throw new InvalidArgumentError(`invalid signature threshold: expected a whole number of at least 1, got ${trust.threshold}`);
  }
  // A threshold above the number of distinct trusted keys fails every patch, however it is signed.
  const trustedKeyCount = new Set(trust.keys.map((key) => key.keyId)).size;
  if (trust.threshold > trustedKeyCount) {
    throw new InvalidArgumentError(
      `invalid signature threshold ${trust.threshold}: expected at most the number of distinct trusted keys, ${trustedKeyCount}`,
    );
  }
  const message = signingInput(patch.headerBytes);
  const revoked = new Set(trust.revokedKeyIds.map((keyId) => parseKeyId(keyId, 'revoked key id')));
  const accepted = new Set<string>();
  const rejections: Rejection[] = [];

  for (const { keyId, signature } of patch.signatures) {
    // Revocation is checked before trust, so a key that is both listed and revoked never counts.
    if (revoked.has(keyId)) {
      rejections.push({ keyId, kind: 'revoked', detail: `key ${keyId} is revoked` });
      continue;
    }
    const key = trust.keys.find((candidate) => candidate.keyId === keyId);
    if (!key) {
      rejections.push({ keyId, kind: 'untrusted', detail: `key ${keyId} is not trusted` });
      continue;
    }
    const problem = checkSignature(signature, message, key.bytes);
    if (problem) {
      rejections.push({ keyId, kind: 'invalid', detail: `signature by key ${keyId} ${problem}` });
      continue;
    }
    // The same key signing twice counts once: the threshold counts keys, not signature entries.
    accepted.add(keyId);
  }

  if (accepted.size >= trust.threshold) return [...accepted];
  throw signatureFailure(patch, trust.threshold, accepted, rejections);
}

/** Returns why a signature is not valid under strict RFC 8032 rules, or undefined when it is valid. */
function checkSignature(signature: Uint8Array, message: Buffer, publicKey: Uint8Array): string | undefined {
  if (signature.length !== SIGNATURE_BYTES) {
    return `has ${signature.length} bytes, expected ${SIGNATURE_BYTES}`;
  }
  // Malleability: S must be reduced modulo the group order (RFC 8032 section 5.1.7, step 1); S + L would
  // otherwise verify too, giving a second valid signature for the same header.
  const s = Buffer.from(signature.subarray(32)).reverse();
  if (BigInt(`0x${s.toString('hex')}`) >= GROUP_ORDER) {
    return 'has S not below the group order';
  }
  try {
    checkPublicKey(publicKey, 'trusted public key');
  } catch (error) {
    return `cannot be checked: ${(error as Error).message}`;
  }
  // @noble/ed25519 defaults to ZIP-215 rules, which accept non-canonical encodings; zip215: false selects
  // strict RFC 8032 verification (canonical R and A, small-order A refused).
  const valid = ed.verify(signature, message, publicKey, { zip215: false });
  return valid ? undefined : 'does not verify over the header';
}

function signatureFailure(patch: ParsedPatch, threshold: number, accepted: Set<string>, rejections: Rejection[]): Error {
  // With no rejected signature there is nothing to list: every signature was valid, just too few.
  const details = rejections.length > 0 ? ` (${rejections.map((rejection) => rejection.detail).join('; ')})` : '';
  const summary = `expected valid signatures by ${threshold} trusted key(s), got ${accepted.size}`;
  const invalid = rejections.find((rejection) => rejection.kind === 'invalid');
  if (invalid) return new BadSignatureError(`bad signature: ${summary}${details}`);
  if (accepted.size > 0) return new ThresholdNotMetError(`signature threshold not met: ${summary}${details}`);
  if (rejections.some((rejection) => rejection.kind === 'revoked')) {
    return new RevokedKeyError(`patch signed only by revoked or untrusted keys: ${summary}${details}`);
  }
  if (patch.signatures.length === 0) return new UntrustedKeyError(`patch is not signed: ${summary}`);
  return new UntrustedKeyError(`patch not signed by a trusted key: ${summary}${details}`);
}
