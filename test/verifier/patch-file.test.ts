import { expect } from 'chai';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { codecByName } from '../../delta/index.js';
import { BodyDigestMismatchError, CodecError, SourceMismatchError, type UpgradeError } from '../../errors/index.js';
import {
  createPatch,
  digestFile,
  encodeHead,
  encodeHeader,
  generateKeyPair,
  parsePatchHead,
  sha256Hex,
  signHeader,
  verifyPatchFile,
  type PatchHeader,
  type SecretKey,
} from '../../verifier/index.js';
import { FIRMWARE_DIR, makeTempDir } from '../support/index.js';
import { makePatch, trustOf } from './fixtures.js';

/** Builds a patch file from a header and body of the test's choosing, signed so that only the body is wrong. */
function signedFile(header: PatchHeader, body: Buffer, key: SecretKey): Buffer {
  const headerBytes = encodeHeader(header);
  return Buffer.concat([encodeHead(headerBytes, [signHeader(headerBytes, key)]), body]);
}

async function causeOf(action: Promise<unknown>): Promise<string> {
  try {
    await action;
  } catch (error) {
    return (error as UpgradeError).code ?? `untyped: ${(error as Error).message}`;
  }
  return 'passed';
}

describe('patch file verification', () => {
  let dir: { path: string; remove: () => Promise<void> };
  beforeEach(async () => {
    dir = await makeTempDir();
  });
  afterEach(async () => dir.remove());

  it('reports a body whose digest differs as a body digest mismatch', async () => {
    const { header, keys, target } = await makePatch();
    // A valid brotli body of another image: it decodes, but it is not the body the header signed.
    const otherBody = await codecByName('full')!.encode(undefined, Buffer.concat([target, Buffer.from('x')]));
    const path = join(dir.path, 'p.patch');
    await writeFile(path, signedFile({ ...header, bodySize: otherBody.length }, otherBody, keys[0]!));
    const failure = verifyPatchFile(path, trustOf(keys));
    await expectRejection(failure, BodyDigestMismatchError, /patch body digest mismatch: header records sha256 [0-9a-f]{64}, body is [0-9a-f]{64}/);
  });

  it('rejects a bit flipped in the body as a body digest mismatch', async () => {
    const { bytes, keys } = await makePatch();
    const changed = Buffer.from(bytes);
    changed[changed.length - 3]! ^= 0x10;
    const path = join(dir.path, 'p.patch');
    await writeFile(path, changed);
    await expectRejection(verifyPatchFile(path, trustOf(keys)), BodyDigestMismatchError, /body digest mismatch/);
  });

  it('reports a signed body that does not decode as a codec error', async () => {
    const { header, keys } = await makePatch();
    const garbage = Buffer.from('this is not brotli at all, not even close');
    const path = join(dir.path, 'p.patch');
    await writeFile(path, signedFile({ ...header, bodySize: garbage.length, bodySha256: sha256Hex(garbage) }, garbage, keys[0]!));
    const source = join(dir.path, 'source.bin');
    const { source: sourceBytes } = await makePatch();
    await writeFile(source, sourceBytes);
    await expectRejection(verifyPatchFile(path, trustOf(keys), { sourcePath: source }), CodecError, /full body/);
  });

  it('rejects an unknown codec id as a format error', async () => {
    const { header, keys, bytes } = await makePatch();
    const parsed = parsePatchHead(bytes, bytes.length);
    const path = join(dir.path, 'p.patch');
    await writeFile(path, signedFile({ ...header, codecId: 999 }, bytes.subarray(parsed.bodyOffset), keys[0]!));
    expect(await causeOf(verifyPatchFile(path, trustOf(keys)))).to.equal('badPatchFormat');
  });

  it('rejects a source image other than the recorded one', async () => {
    const { bytes, keys, source } = await makePatch();
    const path = join(dir.path, 'p.patch');
    await writeFile(path, bytes);
    const wrongSource = Buffer.from(source);
    wrongSource[100]! ^= 1;
    const sourcePath = join(dir.path, 'source.bin');
    await writeFile(sourcePath, wrongSource);
    await expectRejection(
      verifyPatchFile(path, trustOf(keys), { sourcePath }),
      SourceMismatchError,
      /source image mismatch: patch expects sha256 [0-9a-f]{64} \(4,096 bytes\), .*source\.bin is [0-9a-f]{64} \(4,096 bytes\)/,
    );
  });

  it('fails on every changed byte of a real patch', async function () {
    this.timeout(120_000);
    const source = await readFile(join(FIRMWARE_DIR, 'iwlwifi-cc-a0-67.ucode'));
    const target = await readFile(join(FIRMWARE_DIR, 'iwlwifi-cc-a0-68.ucode'));
    const key = generateKeyPair();
    const codec = codecByName('delta') ?? codecByName('full')!;
    const { bytes } = await createPatch({
      source,
      target,
      platform: 'iwlwifi-cc-a0',
      sourceVersion: '67',
      targetVersion: '68',
      securityCounter: 68n,
      codec,
      keys: [key],
    });
    const sourcePath = join(dir.path, 'source.ucode');
    await writeFile(sourcePath, source);
    const path = join(dir.path, 'p.patch');
    await writeFile(path, bytes);
    expect(await causeOf(verifyPatchFile(path, trustOf([key]), { sourcePath }))).to.equal('passed');

    // Every byte of the head, and body bytes at a stride that keeps the run short; each must fail with the
    // cause for the region it hits.
    const { bodyOffset } = parsePatchHead(bytes, bytes.length);
    const offsets = [...Array(bodyOffset).keys()];
    const stride = Math.max(1, Math.floor((bytes.length - bodyOffset) / 400));
    for (let offset = bodyOffset; offset < bytes.length; offset += stride) offsets.push(offset);
    offsets.push(bytes.length - 1);

    for (const offset of offsets) {
      const changed = Buffer.from(bytes);
      changed[offset]! ^= 0x01;
      await writeFile(path, changed);
      const cause = await causeOf(verifyPatchFile(path, trustOf([key])));
      const expected = offset >= bodyOffset ? ['bodyDigestMismatch'] : ['badPatchFormat', 'badSignature', 'untrustedKey'];
      expect(expected, `byte ${offset} changed gave ${cause}`).to.include(cause);
    }
  });
});

async function expectRejection(action: Promise<unknown>, errorClass: abstract new (...args: never[]) => Error, pattern: RegExp): Promise<void> {
  try {
    await action;
  } catch (error) {
    expect(error).to.be.instanceOf(errorClass);
    expect((error as Error).message).to.match(pattern);
    return;
  }
  expect.fail(`expected ${errorClass.name}`);
}

describe('file digests', () => {
  let dir: { path: string; remove: () => Promise<void> };
  let path: string;
  // Larger than digestFile's 256 KiB buffer, so the file takes several reads.
  const bytes = Buffer.from(Array.from({ length: 600_000 }, (_, index) => (index * 7919) % 251));
  before(async () => {
    dir = await makeTempDir();
    path = join(dir.path, 'image.bin');
    await writeFile(path, bytes);
  });
  after(async () => dir.remove());

  it('hashes a whole file', async () => {
    expect(await digestFile(path)).to.deep.equal({ size: bytes.length, sha256: sha256Hex(bytes) });
  });

  it('hashes a range across reads', async () => {
    const range = { start: 200_000, length: 350_000 };
    expect(await digestFile(path, range)).to.deep.equal({ size: range.length, sha256: sha256Hex(bytes.subarray(200_000, 550_000)) });
  });

  it('stops a range at the end of the file', async () => {
    expect(await digestFile(path, { start: 500_000, length: 200_000 })).to.deep.equal({ size: 100_000, sha256: sha256Hex(bytes.subarray(500_000)) });
  });

  it('hashes an empty range', async () => {
    expect(await digestFile(path, { start: 10, length: 0 })).to.deep.equal({ size: 0, sha256: sha256Hex(Buffer.alloc(0)) });
  });
});
