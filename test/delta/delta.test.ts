import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { brotliCompressSync, brotliDecompressSync, constants } from 'node:zlib';

import { expect } from 'chai';

import { CodecError } from '../../errors/index.js';
import { codecById, codecByName, openSourceFile, type SourceReader } from '../../delta/index.js';
import { FIRMWARE_DIR, makeTempDir } from '../support/index.js';

const delta = codecByName('delta')!;
const execFileAsync = promisify(execFile);

/** Output bytes per section in the delta format, and the source cache's block size. */
const SECTION = 1 << 20;
const BLOCK = 1 << 16;

function memorySource(bytes: Uint8Array): SourceReader {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  return { size: buffer.length, read: async (position, length) => buffer.subarray(position, position + length) };
}

async function* chunked(bytes: Uint8Array, size = 4096): AsyncIterable<Uint8Array> {
  for (let offset = 0; offset < bytes.length; offset += size) yield bytes.subarray(offset, offset + size);
}

async function decodeAll(body: Uint8Array, source: SourceReader | undefined, targetSize: number): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of delta.decode(chunked(body), source, targetSize)) pieces.push(Buffer.from(piece));
  return Buffer.concat(pieces);
}

async function decodeError(body: Uint8Array, source: SourceReader, targetSize: number): Promise<unknown> {
  try {
    await decodeAll(body, source, targetSize);
  } catch (error) {
    return error;
  }
  return undefined;
}

/** Decodes a body and returns the output's SHA-256, or the error's name and message. */
async function decodeOutcome(body: Uint8Array, source: SourceReader, targetSize: number): Promise<string> {
  try {
    return createHash('sha256').update(await decodeAll(body, source, targetSize)).digest('hex');
  } catch (error) {
    return `${(error as Error).name}: ${(error as Error).message}`;
  }
}

/** decodeOutcome for a child process that loads the delta module from the URL it is given. */
const OUTCOME_SCRIPT = `
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

const [moduleUrl, casesPath] = process.argv.slice(2);
const { codecByName } = await import(moduleUrl);
const delta = codecByName('delta');
const { sources, cases } = JSON.parse(readFileSync(casesPath, 'utf8'));
const images = sources.map((text) => Buffer.from(text, 'base64'));
const outcomes = [];
for (const entry of cases) {
  const image = images[entry.source];
  const reader = { size: image.length, read: async (position, length) => image.subarray(position, position + length) };
  try {
    const digest = createHash('sha256');
    const body = (async function* () { yield Buffer.from(entry.body, 'base64'); })();
    for await (const piece of delta.decode(body, reader, entry.targetSize)) digest.update(piece);
    outcomes.push(digest.digest('hex'));
  } catch (error) {
    outcomes.push(error.name + ': ' + error.message);
  }
}
process.stdout.write(JSON.stringify({ webAssembly: typeof WebAssembly, outcomes }));
`;

async function roundTrip(source: Buffer, target: Buffer): Promise<Buffer> {
  const body = await delta.encode(source, target);
  const rebuilt = await decodeAll(body, memorySource(source), target.length);
  expect(rebuilt.length, 'rebuilt length').to.equal(target.length);
  expect(rebuilt.equals(target), 'rebuilt bytes equal the target').to.equal(true);
  return body;
}

/** Deterministic pseudo-random bytes (xorshift32), so every run tests the same images. */
class Random {
  constructor(private state: number) {}

  next(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }

  below(limit: number): number {
    return this.next() % limit;
  }

  bytes(length: number): Buffer {
    const result = Buffer.allocUnsafe(length);
    for (let i = 0; i < length; i++) result[i] = this.next() & 0xff;
    return result;
  }
}

/** Makes a target from the source the way a rebuild changes a binary: shifted words, inserted and removed spans. */
function editedCopy(source: Buffer, random: Random): Buffer {
  const parts: Buffer[] = [];
  for (let offset = 0; offset < source.length; ) {
    const span = Math.min(source.length - offset, 500 + random.below(3000));
    const part = Buffer.from(source.subarray(offset, offset + span));
    for (let i = random.below(8); i < part.length; i += 16 + random.below(64)) part[i] = (part[i] + 4) & 0xff;
    parts.push(part);
    if (random.below(4) === 0) parts.push(random.bytes(random.below(200)));
    offset += span + (random.below(5) === 0 ? random.below(300) : 0);
  }
  return Buffer.concat(parts);
}

/** Writes an unsigned LEB128 varint, as the delta format stores every length. */
function varint(value: bigint | number): number[] {
  let remaining = BigInt(value);
  const bytes: number[] = [];
  while (remaining >= 0x80n) {
    bytes.push(Number(remaining & 0x7fn) | 0x80);
    remaining >>= 7n;
  }
  bytes.push(Number(remaining));
  return bytes;
}

function zigzag(value: number): number {
  return value < 0 ? -2 * value - 1 : 2 * value;
}

/** Builds one section by hand: output length, the three part lengths, then the parts. */
function section(outputLength: number, controls: number[], differences: number[], literals: number[]): number[] {
  return [
    ...varint(outputLength),
    ...varint(controls.length),
    ...varint(differences.length),
    ...varint(literals.length),
    ...controls,
    ...differences,
    ...literals,
  ];
}

function compressBody(plain: number[] | Uint8Array, windowBits = 20, quality = 5): Buffer {
  return brotliCompressSync(Uint8Array.from(plain), {
    params: { [constants.BROTLI_PARAM_QUALITY]: quality, [constants.BROTLI_PARAM_LGWIN]: windowBits },
  });
}

/**
 * Yields the body through one 4 KiB buffer and overwrites it as soon as the next piece is requested, which the
 * BodyCodec contract allows a caller to do.
 */
async function* throughOneBuffer(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  const buffer = Buffer.alloc(4096);
  for (let offset = 0; offset < bytes.length; offset += buffer.length) {
    const length = Math.min(buffer.length, bytes.length - offset);
    buffer.set(bytes.subarray(offset, offset + length));
    yield buffer.subarray(0, length);
    buffer.fill(0xee);
  }
}

describe('body codecs', function () {
  this.timeout(60_000);

  for (const name of ['full', 'delta']) {
    it(`${name} decodes through one reused buffer`, async function () {
      const codec = codecByName(name)!;
      const source = await readFile(join(FIRMWARE_DIR, 'iwlwifi-cc-a0-67.ucode'));
      const target = await readFile(join(FIRMWARE_DIR, 'iwlwifi-cc-a0-68.ucode'));
      const body = await codec.encode(source, target);
      const pieces: Buffer[] = [];
      for await (const piece of codec.decode(throughOneBuffer(body), memorySource(source), target.length)) pieces.push(Buffer.from(piece));
      expect(Buffer.concat(pieces).equals(target), 'decoded bytes equal the target').to.equal(true);
    });

    it(`${name} closes body on early stop`, async function () {
      const codec = codecByName(name)!;
      // Two delta sections, and a full body of many chunks: decoding stops with most of the body unread.
      const source = new Random(5).bytes(1 << 20);
      const target = Buffer.concat([source.subarray(1000), new Random(6).bytes(300_000)]);
      const body = await codec.encode(source, target);
      let closed = false;
      async function* tracked(): AsyncIterable<Uint8Array> {
        try {
          yield* chunked(body, 1024);
        } finally {
          closed = true;
        }
      }
      for await (const piece of codec.decode(tracked(), memorySource(source), target.length)) {
        expect(piece.length).to.be.above(0);
        break;
      }
      expect(closed, 'body closed').to.equal(true);
    });
  }
});

describe('full codec', function () {
  const full = codecByName('full')!;
  const target = new Random(23).bytes(3000);

  async function decodeFull(body: Uint8Array, targetSize: number): Promise<Buffer> {
    const pieces: Buffer[] = [];
    for await (const piece of full.decode(chunked(body, 100), undefined, targetSize)) pieces.push(Buffer.from(piece));
    return Buffer.concat(pieces);
  }

  async function expectFullError(body: Uint8Array, targetSize: number, pattern: RegExp): Promise<void> {
    let caught: unknown;
    try {
      await decodeFull(body, targetSize);
    } catch (error) {
      caught = error;
    }
    expect(caught, String(pattern)).to.be.instanceOf(CodecError);
    expect((caught as Error).message).to.match(pattern);
  }

  it('round trips an image larger than one output piece', async function () {
    const image = Buffer.concat([target, new Random(24).bytes(600_000)]);
    expect((await decodeFull(await full.encode(undefined, image), image.length)).equals(image)).to.equal(true);
  });

  it('body that expands past the target size', async function () {
    await expectFullError(await full.encode(undefined, target), target.length - 1, /decodes to more than the declared target size of 2,999 bytes/);
  });

  it('body that ends before the target size', async function () {
    await expectFullError(await full.encode(undefined, target), target.length + 1, /decodes to 3,000 bytes, expected the declared target size of 3,001 bytes/);
  });

  it('compressed stream cut short', async function () {
    const body = await full.encode(undefined, target);
    await expectFullError(body.subarray(0, body.length - 5), target.length, /full body is not a valid brotli stream: unexpected end of file/);
  });

  it('data left after the brotli stream', async function () {
    const body = Buffer.concat([await full.encode(undefined, target), Buffer.from([7, 7])]);
    await expectFullError(body, target.length, /full body has 2 bytes after the end of its brotli stream, expected none/);
  });

  it('body that is not brotli', async function () {
    await expectFullError(Buffer.from('not brotli at all, not even close'), 10, /full body is not a valid brotli stream/);
  });
});

describe('delta codec', function () {
  this.timeout(60_000);

  it('is registered as codec 2 and needs the source', function () {
    expect(codecById(2)).to.equal(delta);
    expect(delta.name).to.equal('delta');
    expect(delta.needsSource).to.equal(true);
  });

  describe('round trips', function () {
    it('rpi4 recovery firmware pair', async function () {
      const source = await readFile(join(FIRMWARE_DIR, 'rpi4-recovery-2026-05-17.bin'));
      const target = await readFile(join(FIRMWARE_DIR, 'rpi4-recovery-2026-08-04.bin'));
      const body = await roundTrip(source, target);
      expect(body.length).to.be.at.most(5_000);
    });

    it('iwlwifi firmware pair through the source file cache', async function () {
      const sourcePath = join(FIRMWARE_DIR, 'iwlwifi-cc-a0-67.ucode');
      const source = await readFile(sourcePath);
      const target = await readFile(join(FIRMWARE_DIR, 'iwlwifi-cc-a0-68.ucode'));
      const body = await delta.encode(source, target);
      expect(body.length).to.be.at.most(105_294);

      const file = await openSourceFile(sourcePath);
      try {
        const digest = createHash('sha256');
        let length = 0;
        for await (const piece of delta.decode(chunked(body, 1000), file, target.length)) {
          digest.update(piece);
          length += piece.length;
        }
        expect(length).to.equal(target.length);
        expect(digest.digest('hex')).to.equal(createHash('sha256').update(target).digest('hex'));
      } finally {
        await file.close();
      }
    });

    it('same inputs give the same body', async function () {
      const random = new Random(7);
      const source = random.bytes(50_000);
      const target = editedCopy(source, random);
      const first = await delta.encode(source, target);
      const second = await delta.encode(source, target);
      expect(first.equals(second)).to.equal(true);
    });

    it('same body across several sections', async function () {
      // The encoder hands each section to the compressor while it plans the next, so the timing of the thread
      // pool must not change the body.
      const random = new Random(13);
      const source = random.bytes(3 * 1024 * 1024);
      const target = editedCopy(source, random);
      const first = await roundTrip(source, target);
      const second = await delta.encode(source, target);
      expect(first.equals(second)).to.equal(true);
    });

    it('finds copies from every source alignment', async function () {
      // The encoder indexes every 8th source position only. A target made of short copies from random source
      // positions, with unrelated bytes between them, comes out as copies only if the rest are found too.
      const random = new Random(19);
      const source = random.bytes(1024 * 1024);
      const pieces: Buffer[] = [];
      for (let i = 0; i < 4000; i++) {
        const start = random.below(source.length - 64);
        pieces.push(source.subarray(start, start + 64), random.bytes(8));
      }
      const target = Buffer.concat(pieces);

      const first = await roundTrip(source, target);
      // The unrelated bytes alone are 11% of the target and do not compress; missed copies would add 64 each.
      expect(first.length, 'body').to.be.below(target.length * 0.2);
      const second = await delta.encode(source, target);
      expect(first.equals(second), 'second body equals the first').to.equal(true);
    });

    it('leaves a close copy for an exact one', async function () {
      // After A, the source goes on with a copy of B in which every fifth byte differs. The alignment of A
      // agrees there on at least 25 of every 32 bytes, enough to move on along it without lookups. B itself
      // comes later in the source. The plan has to switch to it soon, or a fifth of B goes into the body as
      // differences.
      const random = new Random(23);
      const a = random.bytes(4096);
      const b = random.bytes(64 * 1024);
      const closeB = Buffer.from(b);
      for (let i = 0; i < closeB.length; i += 5) closeB[i] ^= 0x5a;
      const source = Buffer.concat([a, closeB, random.bytes(4096), b]);
      const target = Buffer.concat([a, b]);

      const body = await roundTrip(source, target);
      expect(body.length).to.be.below(1000);
    });

    it('edge images', async function () {
      const random = new Random(11);
      const some = random.bytes(10_000);
      const cases: [string, Buffer, Buffer][] = [
        ['empty source and target', Buffer.alloc(0), Buffer.alloc(0)],
        ['empty source', Buffer.alloc(0), some],
        ['empty target', some, Buffer.alloc(0)],
        ['identical', some, Buffer.from(some)],
        ['completely different', some, random.bytes(10_000)],
        ['one byte each', Buffer.from([1]), Buffer.from([2])],
        ['one byte source', Buffer.from([7]), some],
        ['source one byte short of an indexed word', some.subarray(0, 7), some.subarray(0, 20)],
        ['source of one indexed word', some.subarray(0, 8), some.subarray(0, 20)],
        ['source one byte past an indexed word', some.subarray(0, 9), some.subarray(1, 20)],
        ['one byte target', some, Buffer.from([some[5000]])],
        ['all zeros', Buffer.alloc(70_000), Buffer.alloc(90_000)],
      ];
      for (const [name, source, target] of cases) {
        const body = await delta.encode(source, target);
        const rebuilt = await decodeAll(body, memorySource(source), target.length);
        expect(rebuilt.equals(target), name).to.equal(true);
      }
    });

    it('sizes around section and cache block boundaries', async function () {
      const random = new Random(13);
      const base = random.bytes(SECTION + 2);
      for (const size of [BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 1, SECTION - 1, SECTION, SECTION + 1]) {
        const source = base.subarray(0, size);
        const target = Buffer.from(source);
        for (let i = 100; i < size; i += 4099) target[i] ^= 0x10;
        await roundTrip(source, target);
        // A target of unrelated bytes is all literals, so the literal limit of a section is reached exactly.
        await roundTrip(source.subarray(0, 100), random.bytes(size));
      }
    });

    it('edited copies decoded from a file', async function () {
      const random = new Random(17);
      const source = random.bytes(300_000);
      const target = editedCopy(source, random);
      const body = await delta.encode(source, target);
      expect(body.length).to.be.below(target.length / 4);

      const folder = await makeTempDir();
      try {
        const sourcePath = join(folder.path, 'source.bin');
        await writeFile(sourcePath, source);
        const file = await openSourceFile(sourcePath);
        try {
          const rebuilt = await decodeAll(body, file, target.length);
          expect(rebuilt.equals(target)).to.equal(true);
        } finally {
          await file.close();
        }
      } finally {
        await folder.remove();
      }
    });

    it('small pairs cut at every length', async function () {
      // Short images end inside an 8-byte index word, and targets end inside the encoder's look-ahead.
      const random = new Random(23);
      const base = random.bytes(4000);
      const edited = editedCopy(base, random);
      for (let length = 0; length <= 40; length++) {
        await roundTrip(base.subarray(0, length), edited.subarray(0, 3000));
        await roundTrip(base, edited.subarray(1, 1 + length));
        await roundTrip(base.subarray(3, 3 + length), base.subarray(5, 5 + length));
      }
    });
  });

  describe('bad bodies', function () {
    const source = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz');
    const sourceReader = memorySource(source);

    async function expectCodecError(plain: number[] | Buffer, targetSize: number, pattern: RegExp): Promise<void> {
      const body = Buffer.isBuffer(plain) ? plain : compressBody(plain);
      const error = await decodeError(body, sourceReader, targetSize);
      expect(error, 'decoding fails').to.be.instanceOf(CodecError);
      expect((error as Error).message).to.match(pattern);
    }

    it('accepts the hand-built reference body', async function () {
      // Copy 4 source bytes from offset 10 ('abcd') adding 1 to the second, then 2 literal bytes.
      const plain = section(6, [zigzag(10), 4, 2], [1, 1, 2], [0x21, 0x22]);
      const rebuilt = await decodeAll(compressBody(plain), sourceReader, 6);
      expect(rebuilt.toString('latin1')).to.equal('accd!"');
    });

    it('length with the sign bit set', async function () {
      const negative = varint(1n << 63n);
      const plain = [...varint(6), ...varint(1 + negative.length + 1), ...varint(0), ...varint(0), 0, ...negative, 0];
      await expectCodecError(plain, 6, /out-of-range copy length: expected at most 2\^53 - 1/);
    });

    it('length beyond 2^53', async function () {
      const plain = section(6, [0, ...varint(2n ** 53n), 0], [], []);
      await expectCodecError(plain, 6, /out-of-range copy length/);
    });

    it('source offset plus length past the source', async function () {
      const plain = section(6, [zigzag(34), 4, 0], [4], []);
      await expectCodecError(plain, 6, /reads source bytes 34 to 38, outside the source image of 36 bytes/);
    });

    it('seek before the start of the source', async function () {
      const plain = section(4, [zigzag(-1), 4, 0], [4], []);
      await expectCodecError(plain, 4, /reads source bytes -1 to 3, outside the source image/);
    });

    it('output past the declared target size', async function () {
      const plain = section(6, [0, 6, 0], [6], []);
      await expectCodecError(plain, 5, /rebuilds 6 bytes but only 5 bytes of the declared target size remain/);
    });

    it('entry past its section', async function () {
      const plain = section(4, [0, 6, 0], [6], []);
      await expectCodecError(plain, 4, /writes 6 bytes but its section has 4 bytes left/);
    });

    it('stream cut in a control entry', async function () {
      const entry = [zigzag(0), ...varint(300), 0];
      const plain = [...varint(300), ...varint(2), ...varint(0), ...varint(0), entry[0], entry[1]];
      await expectCodecError(plain, 300, /controls ends inside the varint of copy length/);
    });

    it('compressed stream cut short', async function () {
      const random = new Random(19);
      const target = random.bytes(5000);
      const body = await delta.encode(source, target);
      await expectCodecError(body.subarray(0, body.length - 10), target.length, /not a valid brotli stream|ends inside/);
    });

    it('body that ends before the target size', async function () {
      const plain = section(4, [0, 4, 0], [4], []);
      await expectCodecError(plain, 10, /rebuilds 4 bytes, expected the declared target size of 10 bytes/);
    });

    it('section header cut short', async function () {
      const plain = [...section(4, [0, 4, 0], [4], []), ...varint(4), ...varint(3)];
      await expectCodecError(plain, 8, /section header ends inside the varint of section differences length/);
    });

    it('data left after the brotli stream', async function () {
      const body = Buffer.concat([compressBody(section(4, [0, 4, 0], [4], [])), Buffer.from([1, 2, 3])]);
      await expectCodecError(body, 4, /has 3 bytes after the end of its brotli stream/);
    });

    it('unused difference tokens and literals', async function () {
      await expectCodecError(section(4, [0, 4, 0], [4, 9], []), 4, /1 bytes of unused difference tokens/);
      await expectCodecError(section(4, [0, 4, 0], [4], [9]), 4, /1 bytes of unused literals/);
    });

    it('difference run past its copy', async function () {
      await expectCodecError(section(4, [0, 4, 0], [5], []), 4, /difference run ends 1 bytes past its copy/);
    });

    it('empty section', async function () {
      await expectCodecError(section(0, [], [], []), 4, /section output length must be 1 to 1048576, found 0/);
    });

    it('brotli window above the decoder budget', async function () {
      const body = compressBody(section(4, [0, 4, 0], [4], []), 24);
      await expectCodecError(body, 4, /brotli window must be at most 2\^20 bytes, found 2\^24/);
    });

    it('invalid target size', async function () {
      const body = compressBody(section(4, [0, 4, 0], [4], []));
      await expectCodecError(body, -1, /target size must be a non-negative safe integer, found -1/);
    });

    it('body read error passes unchanged', async function () {
      const failure = new Error('flash read failed');
      async function* failing(): AsyncIterable<Uint8Array> {
        yield compressBody(section(4, [0, 4, 0], [4], [])).subarray(0, 3);
        throw failure;
      }
      let caught: unknown;
      try {
        for await (const piece of delta.decode(failing(), sourceReader, 4)) expect(piece.length).to.be.above(0);
      } catch (error) {
        caught = error;
      }
      expect(caught).to.equal(failure);
    });

    it('missing source image', async function () {
      const body = compressBody(section(4, [0, 4, 0], [4], []));
      let caught: unknown;
      try {
        await decodeAll(body, undefined, 4);
      } catch (error) {
        caught = error;
      }
      expect(caught).to.be.instanceOf(CodecError);
    });
  });

  describe('WebAssembly section kernel', function () {
    // The kernel runs entries whose varints have at most four bytes and adds runs of one to three varint bytes.
    // It leaves every other entry and token, and every error, to the decoder's JavaScript loops. These bodies
    // cross from one to the other inside a section and inside a copy.
    const source = new Random(41).bytes(400);
    const sourceReader = memorySource(source);

    /** Differences of one copy of the whole source: each run given as its varint bytes, then the byte added. */
    function runsBody(runs: { varint: number[]; add?: number }[]): number[] {
      return section(source.length, [0, ...varint(source.length), 0], runs.flatMap((run) => [...run.varint, ...(run.add === undefined ? [] : [run.add])]), []);
    }

    it('entries left to JavaScript mid-section', async function () {
      // The second and fourth entries contain a five-byte varint, so the kernel leaves them to the decoder's loop.
      // The others run in the kernel, before and after them.
      const padded = (value: number): number[] => [(value & 0x7f) | 0x80, 0x80, 0x80, 0x80, 0x00];
      const controls = [
        ...[zigzag(0), 10, 2],
        ...[...padded(zigzag(5)), 20, 0],
        ...[zigzag(-30), 15, 3],
        ...[zigzag(0), ...padded(5), 1],
      ];
      const literals = [1, 2, 3, 4, 5, 6];
      const expected = Buffer.concat([
        source.subarray(0, 10),
        Buffer.from([1, 2]),
        source.subarray(15, 35),
        source.subarray(5, 20),
        Buffer.from([3, 4, 5]),
        source.subarray(20, 25),
        Buffer.from([6]),
      ]);
      const plain = section(expected.length, controls, [10, 20, 15, 5], literals);
      const rebuilt = await decodeAll(compressBody(plain), sourceReader, expected.length);
      expect(rebuilt.equals(expected)).to.equal(true);
    });

    it('entry errors after kernel entries', async function () {
      const twoEntries = [zigzag(0), 10, 1, zigzag(5), 10, 1];
      const cases: { plain: number[]; targetSize: number; pattern: RegExp }[] = [
        { plain: section(30, [...twoEntries, 0, 9, 0], [10, 10, 9], [7, 7]), targetSize: 30, pattern: /entry writes 9 bytes but its section has 8 bytes left/ },
        { plain: section(31, [...twoEntries, ...varint(zigzag(380)), 9, 0], [10, 10, 9], [7, 7]), targetSize: 31, pattern: /reads source bytes 405 to 414, outside the source image of 400 bytes/ },
        { plain: section(31, [...twoEntries, zigzag(-30), 9, 0], [10, 10, 9], [7, 7]), targetSize: 31, pattern: /reads source bytes -5 to 4, outside the source image/ },
        { plain: section(23, [...twoEntries, 0, 0, 1], [10, 10], [7, 7]), targetSize: 23, pattern: /entry needs 1 bytes of literals but its section has 0 bytes left/ },
        { plain: section(1, [0, 1, 0, ...new Array<number>(3 * 8192).fill(0)], [1], []), targetSize: 1, pattern: /more than 8192 control entries/ },
      ];
      for (const { plain, targetSize, pattern } of cases) {
        const error = await decodeError(compressBody(plain), sourceReader, targetSize);
        expect(error, String(pattern)).to.be.instanceOf(CodecError);
        expect((error as Error).message).to.match(pattern);
      }
    });

    it('runs of every varint length', async function () {
      // Runs 5, 200, 1 (three bytes), 2 (four bytes) and 3 (eight bytes), then one to the last byte, each
      // followed by a difference, and a closing run of 0 in four bytes.
      const runs = [
        { length: 5, varint: varint(5) },
        { length: 200, varint: varint(200) },
        { length: 1, varint: [0x81, 0x80, 0x00] },
        { length: 2, varint: [0x82, 0x80, 0x80, 0x00] },
        { length: 3, varint: [0x83, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00] },
      ];
      const lastRun = source.length - 1 - runs.reduce((sum, run) => sum + run.length + 1, 0);
      runs.push({ length: lastRun, varint: varint(lastRun) });

      const expected = Buffer.from(source);
      let position = 0;
      for (const [index, run] of runs.entries()) {
        position += run.length;
        expected[position] = (expected[position] + index + 1) & 0xff;
        position++;
      }
      expect(position, 'the last difference is at the last byte').to.equal(source.length);

      const tokens = [...runs.map((run, index) => ({ varint: run.varint, add: index + 1 })), { varint: [0x80, 0x80, 0x80, 0x00] }];
      const rebuilt = await decodeAll(compressBody(runsBody(tokens)), sourceReader, source.length);
      expect(rebuilt.equals(expected)).to.equal(true);
    });

    it('errors after some added differences', async function () {
      const cases: { runs: { varint: number[]; add?: number }[]; pattern: RegExp }[] = [
        { runs: [{ varint: varint(10), add: 1 }, { varint: varint(300) }], pattern: /differences end inside a copy: expected a difference byte/ },
        { runs: [{ varint: varint(10), add: 1 }, { varint: varint(390) }], pattern: /difference run ends 1 bytes past its copy of 400 bytes/ },
        { runs: [{ varint: varint(10), add: 1 }, { varint: [0x81, 0x80, 0x80] }], pattern: /differences ends inside the varint of difference run/ },
        { runs: [{ varint: varint(10), add: 1 }, { varint: [0xff, 0xff, 0x7f] }], pattern: /difference run ends \d+ bytes past its copy/ },
      ];
      for (const { runs, pattern } of cases) {
        const error = await decodeError(compressBody(runsBody(runs)), sourceReader, source.length);
        expect(error, String(pattern)).to.be.instanceOf(CodecError);
        expect((error as Error).message).to.match(pattern);
      }
    });

    it('same results without WebAssembly', async function () {
      // node --jitless has no WebAssembly, so the decoder there runs its JavaScript code alone. Both processes
      // decode the iwlwifi pair and 1,000 mutated bodies and must reach the same digest or the same error.
      this.timeout(60_000);
      const random = new Random(0x3a5e);
      const small = random.bytes(3000);
      const iwlwifi = await readFile(join(FIRMWARE_DIR, 'iwlwifi-cc-a0-67.ucode'));
      const iwlwifiTarget = await readFile(join(FIRMWARE_DIR, 'iwlwifi-cc-a0-68.ucode'));
      const cases = [{ source: 1, body: await delta.encode(iwlwifi, iwlwifiTarget), targetSize: iwlwifiTarget.length }];
      const target = editedCopy(small, random);
      const plain = brotliDecompressSync(await delta.encode(small, target));
      for (let round = 0; round < 1000; round++) {
        cases.push({ source: 0, body: compressBody(mutate(plain, random), 20, 1), targetSize: target.length });
      }

      const folder = await makeTempDir();
      try {
        const casesPath = join(folder.path, 'cases.json');
        const scriptPath = join(folder.path, 'decode.mjs');
        const sources = [small, iwlwifi].map((bytes) => bytes.toString('base64'));
        await writeFile(casesPath, JSON.stringify({ sources, cases: cases.map((entry) => ({ ...entry, body: entry.body.toString('base64') })) }));
        await writeFile(scriptPath, OUTCOME_SCRIPT);

        const deltaModule = new URL('../../delta/index.js', import.meta.url).href;
        const { stdout } = await execFileAsync(process.execPath, ['--jitless', scriptPath, deltaModule, casesPath], { maxBuffer: 64 << 20 });
        const withoutKernel = JSON.parse(stdout) as { webAssembly: string; outcomes: string[] };
        expect(withoutKernel.webAssembly, 'WebAssembly in the child').to.equal('undefined');

        const withKernel = await Promise.all(
          cases.map((entry) => decodeOutcome(entry.body, memorySource(entry.source === 0 ? small : iwlwifi), entry.targetSize)),
        );
        expect(withKernel[0], 'iwlwifi digest').to.equal(createHash('sha256').update(iwlwifiTarget).digest('hex'));
        const rejected = withKernel.filter((outcome) => outcome.startsWith('CodecError')).length;
        expect(rejected, 'mutated bodies rejected').to.be.above(500);
        for (const [index, outcome] of withKernel.entries()) expect(withoutKernel.outcomes[index], `case ${index}`).to.equal(outcome);
      } finally {
        await folder.remove();
      }
    });
  });

  describe('fuzz', function () {
    it('10,000 mutated bodies fail cleanly', async function () {
      const random = new Random(0x5eed);
      const source = random.bytes(3000);
      const targets = [editedCopy(source, random), random.bytes(500), Buffer.from(source.subarray(100, 2500))];
      const samples = await Promise.all(
        targets.map(async (target) => {
          const body = await delta.encode(source, target);
          return { target, body, plain: brotliDecompressSync(body), digest: createHash('sha256').update(target).digest('hex') };
        }),
      );
      const sourceReader = memorySource(source);
      const heapBefore = process.memoryUsage().heapUsed;
      let rejected = 0;
      let mismatched = 0;

      for (let round = 0; round < 10_000; round++) {
        const sample = samples[round % samples.length];
        // Half the mutations hit the compressed bytes, half the control stream inside, recompressed, so that the
        // control checks see damaged values and not only brotli's own checks.
        const inner = round % 2 === 1;
        const mutated = mutate(inner ? sample.plain : sample.body, random);
        const body = inner ? compressBody(mutated, 20, 1) : mutated;

        const started = performance.now();
        try {
          const rebuilt = await decodeAll(body, sourceReader, sample.target.length);
          if (createHash('sha256').update(rebuilt).digest('hex') !== sample.digest) mismatched++;
        } catch (error) {
          if (!(error instanceof CodecError)) throw new Error(`round ${round}: expected a CodecError, got ${String(error)}`);
          rejected++;
        }
        expect(performance.now() - started, `round ${round} decode time in ms`).to.be.below(2000);
      }

      expect(rejected, 'rejected bodies').to.be.above(5000);
      // A mutation can leave the output intact (a flipped bit in brotli padding, say), so the rest may match.
      expect(rejected + mismatched, 'bodies that fail').to.be.above(9000);
      expect(process.memoryUsage().heapUsed - heapBefore, 'heap growth').to.be.below(256 * 1024 * 1024);
    });
  });
});

/** Applies one to three random byte edits: flip a bit, overwrite, insert, delete, or cut the end off. */
function mutate(original: Uint8Array, random: Random): Buffer {
  let bytes = Buffer.from(original);
  const edits = 1 + random.below(3);
  for (let edit = 0; edit < edits && bytes.length > 0; edit++) {
    const at = random.below(bytes.length);
    switch (random.below(5)) {
      case 0:
        bytes[at] ^= 1 << random.below(8);
        break;
      case 1:
        bytes[at] = random.below(256);
        break;
      case 2:
        bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from([random.below(256)]), bytes.subarray(at)]);
        break;
      case 3:
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)]);
        break;
      default:
        bytes = bytes.subarray(0, at);
        break;
    }
  }
  return bytes;
}
