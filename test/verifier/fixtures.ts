import { codecByName } from '../../delta/index.js';
import { createPatch, generateKeyPair, type PublicKey, type SecretKey, type TrustSet } from '../../verifier/index.js';

export const fullCodec = codecByName('full')!;

export function publicOf(key: SecretKey): PublicKey {
  return { keyId: key.keyId, bytes: key.publicKey };
}

export function trustOf(keys: SecretKey[], options: Partial<Omit<TrustSet, 'keys'>> = {}): TrustSet {
  return { keys: keys.map(publicOf), revokedKeyIds: options.revokedKeyIds ?? [], threshold: options.threshold ?? 1 };
}

/** A small, deterministic image pair with a shared prefix, as consecutive releases have. */
export function imagePair(size = 4096): { source: Buffer; target: Buffer } {
  const source = Buffer.alloc(size);
  for (let index = 0; index < size; index++) source[index] = (index * 31 + (index >> 7)) & 0xff;
  const target = Buffer.from(source);
  for (let index = 0; index < size; index += 97) target[index] = (target[index]! + 1) & 0xff;
  return { source, target };
}

export async function makePatch(keys: SecretKey[] = [generateKeyPair()], overrides: { platform?: string; counter?: bigint } = {}) {
  const { source, target } = imagePair();
  const patch = await createPatch({
    source,
    target,
    platform: overrides.platform ?? 'rtr-9000',
    sourceVersion: '1.0.0',
    targetVersion: '1.1.0',
    securityCounter: overrides.counter ?? 7n,
    codec: fullCodec,
    keys,
    createdAt: new Date('2026-01-02T03:04:05Z'),
  });
  return { ...patch, source, target, keys };
}
