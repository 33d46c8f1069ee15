import { expect } from 'chai';

import { BadPatchFormatError } from '../../errors/index.js';
import { encodeHead, encodeHeader, parsePatchHead, PREFIX_BYTES, signHeader } from '../../verifier/index.js';
import { makePatch } from './fixtures.js';

function expectFormatError(action: () => unknown, pattern: RegExp): void {
  try {
    action();
  } catch (error) {
    expect(error).to.be.instanceOf(BadPatchFormatError);
    expect((error as BadPatchFormatError).code).to.equal('badPatchFormat');
    expect((error as Error).message).to.match(pattern);
    return;
  }
  expect.fail(`expected a BadPatchFormatError matching ${pattern}`);
}

describe('patch format', () => {
  it('round-trips a header and its signatures', async () => {
    const { bytes, header } = await makePatch();
    const parsed = parsePatchHead(bytes, bytes.length);
    expect(parsed.header).to.deep.equal(header);
    expect(parsed.signatures).to.have.length(1);
    expect(parsed.bodyOffset + header.bodySize).to.equal(bytes.length);
  });

  it('rejects the file truncated at every head offset', async () => {
    const { bytes } = await makePatch();
    const { bodyOffset } = parsePatchHead(bytes, bytes.length);
    for (let length = 0; length < bodyOffset; length++) {
      const truncated = bytes.subarray(0, length);
      expectFormatError(() => parsePatchHead(truncated, truncated.length), /truncated/);
    }
  });

  it('rejects a body shorter than declared', async () => {
    const { bytes } = await makePatch();
    const cut = bytes.subarray(0, bytes.length - 1);
    expectFormatError(() => parsePatchHead(cut, cut.length), /body truncated: header declares \d+ bytes, the file holds \d+/);
  });

  it('rejects trailing bytes after the body', async () => {
    const { bytes } = await makePatch();
    const longer = Buffer.concat([bytes, Buffer.from([0])]);
    expectFormatError(() => parsePatchHead(longer, longer.length), /trailing bytes/);
  });

  it('rejects an unknown magic', async () => {
    const { bytes } = await makePatch();
    const changed = Buffer.from(bytes);
    changed[1] = 0x58;
    expectFormatError(() => parsePatchHead(changed, changed.length), /not a patch file: expected magic 89535550/);
  });

  it('rejects an unknown format version', async () => {
    const { bytes } = await makePatch();
    const changed = Buffer.from(bytes);
    changed.writeUInt16BE(2, 8);
    expectFormatError(() => parsePatchHead(changed, changed.length), /format version: expected 1, got 2/);
  });

  it('rejects a header length of 2^32-1 before allocating', async () => {
    const { bytes } = await makePatch();
    const changed = Buffer.from(bytes);
    changed.writeUInt32BE(0xffffffff, 10);
    expectFormatError(() => parsePatchHead(changed, changed.length), /header length out of range: expected at most 65536 bytes, got 4294967295/);
  });

  it('rejects a body size of 2^53', async () => {
    const { bytes, header, keys } = await makePatch();
    const headerBytes = encodeHeader(header);
    // The body size field is the second-to-last u64 before the body digest and the creation time.
    const bodySizeOffset = headerBytes.length - 8 - 32 - 8;
    headerBytes.writeBigUInt64BE(2n ** 53n, bodySizeOffset);
    const head = encodeHead(headerBytes, [signHeader(headerBytes, keys[0]!)]);
    const changed = Buffer.concat([head, bytes.subarray(PREFIX_BYTES)]);
    expectFormatError(() => parsePatchHead(changed, changed.length), /body size out of range: expected at most 2\^53-1 bytes, got 9007199254740992/);
  });

  it('rejects a signature count above the bound', async () => {
    const { bytes } = await makePatch();
    const parsed = parsePatchHead(bytes, bytes.length);
    const changed = Buffer.from(bytes);
    changed.writeUInt16BE(0xffff, PREFIX_BYTES + parsed.headerBytes.length);
    expectFormatError(() => parsePatchHead(changed, changed.length), /signature count out of range: expected at most 32, got 65535/);
  });

  it('rejects a header with bytes after its last field', async () => {
    const { header, keys } = await makePatch();
    const headerBytes = Buffer.concat([encodeHeader(header), Buffer.from([0])]);
    const head = encodeHead(headerBytes, [signHeader(headerBytes, keys[0]!)]);
    const file = Buffer.concat([head, Buffer.alloc(header.bodySize)]);
    expectFormatError(() => parsePatchHead(file, file.length), /1 unexpected bytes after its last field/);
  });

  it('rejects an unsafe platform in a header', async () => {
    const { bytes } = await makePatch();
    const changed = Buffer.from(bytes);
    // The platform string starts right after the prefix with its length byte; "rtr-9000" becomes "rtr/9000".
    changed[PREFIX_BYTES + 1 + 3] = '/'.charCodeAt(0);
    expectFormatError(() => parsePatchHead(changed, changed.length), /platform in the header is invalid/);
  });
});
