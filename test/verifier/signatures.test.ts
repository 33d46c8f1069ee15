import { expect } from 'chai';

import { BadSignatureError, InvalidArgumentError, RevokedKeyError, ThresholdNotMetError, UntrustedKeyError } from '../../errors/index.js';
import {
  encodeHead,
  generateKeyPair,
  parsePatchHead,
  parsePublicKeyHex,
  verifySignatures,
  type ParsedPatch,
  type TrustSet,
} from '../../verifier/index.js';
import { makePatch, trustOf } from './fixtures.js';

const GROUP_ORDER = 2n ** 252n + 27742317777372353535851937790883648493n;

function withSignature(patch: ParsedPatch, signature: Uint8Array, keyId = patch.signatures[0]!.keyId): ParsedPatch {
  return { ...patch, signatures: [{ keyId, signature }] };
}

function expectFailure(patch: ParsedPatch, trust: TrustSet, errorClass: new (...args: never[]) => Error, pattern: RegExp): void {
  expect(() => verifySignatures(patch, trust)).to.throw(errorClass, pattern);
}

describe('patch signatures', () => {
  it('accepts a patch signed by a trusted key', async () => {
    const { bytes, keys } = await makePatch();
    const patch = parsePatchHead(bytes, bytes.length);
    expect(verifySignatures(patch, trustOf(keys))).to.deep.equal([keys[0]!.keyId]);
  });

  it('rejects a bit flipped in any header byte', async () => {
    const { bytes, keys } = await makePatch();
    const { bodyOffset, headerBytes } = parsePatchHead(bytes, bytes.length);
    for (let offset = 14; offset < 14 + headerBytes.length; offset++) {
      const changed = Buffer.from(bytes);
      changed[offset]! ^= 0x04;
      let patch: ParsedPatch;
      try {
        patch = parsePatchHead(changed, changed.length);
      } catch (error) {
        // Some flips break the structure first (a length, an identifier): that is a format error.
        expect((error as { code?: string }).code, `offset ${offset}`).to.equal('badPatchFormat');
        continue;
      }
      expect(() => verifySignatures(patch, trustOf(keys)), `offset ${offset}`).to.throw(BadSignatureError);
    }
    expect(bodyOffset).to.be.greaterThan(14 + headerBytes.length);
  });

  it('rejects a bit flipped in the signature', async () => {
    const { bytes, keys } = await makePatch();
    const patch = parsePatchHead(bytes, bytes.length);
    for (let index = 0; index < 64; index++) {
      const signature = new Uint8Array(patch.signatures[0]!.signature);
      signature[index]! ^= 0x01;
      expectFailure(withSignature(patch, signature), trustOf(keys), BadSignatureError, /bad signature/);
    }
  });

  for (const length of [0, 63, 65, 128]) {
    it(`rejects a signature of ${length} bytes`, async () => {
      const { bytes, keys } = await makePatch();
      const patch = parsePatchHead(bytes, bytes.length);
      const signature = new Uint8Array(length).fill(7);
      expectFailure(withSignature(patch, signature), trustOf(keys), BadSignatureError, new RegExp(`has ${length} bytes, expected 64`));
    });
  }

  it('rejects a signature encoded through the file with 65 bytes', async () => {
    const { bytes, keys } = await makePatch();
    const patch = parsePatchHead(bytes, bytes.length);
    const signature = new Uint8Array([...patch.signatures[0]!.signature, 0]);
    const head = encodeHead(patch.headerBytes, [{ keyId: keys[0]!.keyId, signature }]);
    const file = Buffer.concat([head, bytes.subarray(patch.bodyOffset)]);
    expectFailure(parsePatchHead(file, file.length), trustOf(keys), BadSignatureError, /has 65 bytes, expected 64/);
  });

  for (const length of [31, 33]) {
    it(`rejects a public key of ${length} bytes`, async () => {
      expect(() => parsePublicKeyHex('ab'.repeat(length))).to.throw(InvalidArgumentError, new RegExp(`expected 32 bytes, got ${length}`));
      const { bytes, keys } = await makePatch();
      const trust: TrustSet = { keys: [{ keyId: keys[0]!.keyId, bytes: new Uint8Array(length) }], revokedKeyIds: [], threshold: 1 };
      expectFailure(parsePatchHead(bytes, bytes.length), trust, BadSignatureError, new RegExp(`expected 32 bytes, got ${length}`));
    });
  }

  it('rejects S with the group order added', async () => {
    const { bytes, keys } = await makePatch();
    const patch = parsePatchHead(bytes, bytes.length);
    const signature = new Uint8Array(patch.signatures[0]!.signature);
    const s = BigInt(`0x${Buffer.from(signature.subarray(32)).reverse().toString('hex')}`) + GROUP_ORDER;
    const encoded = Buffer.from(s.toString(16).padStart(64, '0'), 'hex').reverse();
    signature.set(encoded, 32);
    expectFailure(withSignature(patch, signature), trustOf(keys), BadSignatureError, /S not below the group order/);
  });

  it('rejects a small-order public key with an all-zero S', async () => {
    // The identity point (y = 1) is of small order; with R = identity and S = 0 the cofactored equation holds
    // for every message, so only the strict rules refuse it.
    const identity = new Uint8Array(32);
    identity[0] = 1;
    const signature = new Uint8Array(64);
    signature.set(identity, 0);
    const { bytes } = await makePatch();
    const patch = parsePatchHead(bytes, bytes.length);
    const keyId = 'aaaaaaaaaaaaaaaa';
    const trust: TrustSet = { keys: [{ keyId, bytes: identity }], revokedKeyIds: [], threshold: 1 };
    expectFailure(withSignature(patch, signature, keyId), trust, BadSignatureError, /small-order point/);
    expect(() => parsePublicKeyHex(Buffer.from(identity).toString('hex'))).to.throw(InvalidArgumentError, /small-order/);
  });

  it('rejects a signature by an untrusted key', async () => {
    const { bytes } = await makePatch();
    const patch = parsePatchHead(bytes, bytes.length);
    expectFailure(patch, trustOf([generateKeyPair()]), UntrustedKeyError, /not signed by a trusted key: expected valid signatures by 1 trusted key\(s\), got 0/);
  });

  it('rejects a patch with no signature', async () => {
    const { bytes, keys } = await makePatch();
    const patch = { ...parsePatchHead(bytes, bytes.length), signatures: [] };
    expectFailure(patch, trustOf(keys), UntrustedKeyError, /not signed/);
  });

  it('rejects a signature by a revoked key', async () => {
    const { bytes, keys } = await makePatch();
    const patch = parsePatchHead(bytes, bytes.length);
    expectFailure(patch, trustOf(keys, { revokedKeyIds: [keys[0]!.keyId] }), RevokedKeyError, new RegExp(`key ${keys[0]!.keyId} is revoked`));
  });

  it('rejects when the threshold is not met', async () => {
    const [first, second] = [generateKeyPair(), generateKeyPair()];
    const { bytes } = await makePatch([first]);
    const patch = parsePatchHead(bytes, bytes.length);
    expectFailure(patch, trustOf([first, second], { threshold: 2 }), ThresholdNotMetError, /expected valid signatures by 2 trusted key\(s\), got 1$/);
  });

  it('counts the same key signing twice once', async () => {
    const key = generateKeyPair();
    const { bytes } = await makePatch([key, key]);
    const patch = parsePatchHead(bytes, bytes.length);
    expect(patch.signatures).to.have.length(2);
    expectFailure(patch, trustOf([key, generateKeyPair()], { threshold: 2 }), ThresholdNotMetError, /got 1/);
  });

  it('rejects a threshold above the trusted keys', async () => {
    const [first, second] = [generateKeyPair(), generateKeyPair()];
    const { bytes } = await makePatch([first, second]);
    const patch = parsePatchHead(bytes, bytes.length);
    const pattern = /invalid signature threshold 3: expected at most the number of distinct trusted keys, 2$/;
    expectFailure(patch, trustOf([first, second], { threshold: 3 }), InvalidArgumentError, pattern);
    // A key listed twice is one trusted key, so two copies of it cannot meet a threshold of two.
    expectFailure(patch, trustOf([first, first], { threshold: 2 }), InvalidArgumentError, /threshold 2: .* keys, 1$/);
  });

  it('accepts two distinct trusted signers at threshold 2', async () => {
    const keys = [generateKeyPair(), generateKeyPair()];
    const { bytes } = await makePatch(keys);
    const patch = parsePatchHead(bytes, bytes.length);
    expect(verifySignatures(patch, trustOf(keys, { threshold: 2 }))).to.have.members(keys.map((key) => key.keyId));
  });
});
