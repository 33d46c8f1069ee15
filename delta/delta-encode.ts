import { constants, createBrotliCompress } from 'node:zlib';
import { once } from 'node:events';
import { setImmediate as nextTurn } from 'node:timers/promises';

import { ByteWriter, SECTION_ENTRY_LIMIT, SECTION_OUTPUT_LIMIT } from './delta-format.js';
import { indexSource, planMatches, type ControlEntry } from './matcher.js';

/**
 * Brotli quality of the body. Quality 10 takes about half the time of quality 11 for a body 1.8% larger
 * (437,654 against 430,085 bytes on an 11 MB executable's delta, 101,433 against 100,493 on a 1.3 MB firmware).
 */
const QUALITY = 10;

/**
 * Brotli window of the body, below the WINDOW_BITS maximum the decoder accepts. The window sets much of the
 * create's peak memory: brotli's match finder at quality 10 keeps tables sized by it, and glibc gives each libuv
 * thread that runs brotli an arena of its own. Compressing the esbuild delta's body on the thread pool raised the
 * peak by 15.3 MiB, against 7.5 MiB with a pool of one thread. On the 11 MB esbuild executable's delta, 2^17
 * against 2^18 cut the create's peak from about 102.3 to 96.6 MiB. 2^16 against 2^17 gave 94.1 to 97.3 MiB
 * against 96.9 to 100.0 (six runs each, bsdiff's peak is 99.1). Brotli takes longer than the scan, so its speed
 * sets the create's time, and those creates took 1.79 to 2.02 s against 1.96 to 2.21. The body grew 0.43%
 * (441,131 against 439,248 bytes), turbo's 0.35%. The device's brotli ring buffer shrinks with the window too.
 */
const ENCODER_WINDOW_BITS = 16;

/**
 * Uncompressed body bytes that may wait for the compressor before the scan waits for it. Without a limit, up to
 * 0.9 MB of the esbuild executable's 1.5 MB body waited.
 */
const QUEUE_LIMIT = 1 << 19;

/** Maximum planning time between two chances for the compressor's callbacks to run. */
const YIELD_INTERVAL_MS = 4;

/**
 * Encodes `target` as a delta from `source`: the match plan laid out in sections, compressed as one brotli
 * stream. Each section goes to the compressor as soon as it is laid out, and the compressor works on libuv's
 * thread pool while this thread plans the next section. Brotli's output does not depend on how its input is
 * split when nothing is flushed, so the body is the same as a one-shot compression: deterministic.
 */
export async function encodeDelta(source: Uint8Array, target: Uint8Array): Promise<Buffer> {
  const compressor = createBrotliCompress({
    chunkSize: 1 << 16,
    params: {
      [constants.BROTLI_PARAM_QUALITY]: QUALITY,
      [constants.BROTLI_PARAM_LGWIN]: ENCODER_WINDOW_BITS,
      // Blocks of 2^16 bytes cut the encoder's memory by about 20 MB against its default for a 1.5 MB body,
      // and at quality 10 they also make it smaller (437,654 against 448,300 bytes on the same delta).
      [constants.BROTLI_PARAM_LGBLOCK]: 16,
    },
  });
  const compressed: Buffer[] = [];
  compressor.on('data', (chunk: Buffer) => compressed.push(chunk));
  const finished = new Promise<void>((resolve, reject) => {
    compressor.on('end', resolve);
    compressor.on('error', reject);
  });

  try {
    const index = indexSource(source);
    for (const section of layOutSections(source, target, planMatches(source, target, index))) {
      if (section !== undefined) {
        // The scan usually runs ahead of brotli. It waits here with the next section ready and writes it at once,
        // so brotli does not sit idle while the scan lays out the next one.
        if (compressor.writableLength > QUEUE_LIMIT) await once(compressor, 'drain');
        compressor.write(section);
      }
      // The compressor takes its next input only from a callback on this thread, so the scan lets the event
      // loop run every few milliseconds. Once per section was too rare: brotli finished a section while the scan
      // was still busy with the next one and sat idle until the scan let its callback run.
      await nextTurn();
    }
    compressor.end();
    await finished;
  } finally {
    compressor.destroy();
  }
  return Buffer.concat(compressed);
}

/**
 * Yields the uncompressed body section by section: the control entries cut into sections of at most
 * SECTION_OUTPUT_LIMIT target bytes, each section holding its controls, then its difference tokens, then its
 * literals. Each yielded buffer is the caller's to keep. Between entries it also yields undefined once
 * YIELD_INTERVAL_MS have passed since the last yield, so the caller can let other work run during a long scan.
 */
function* layOutSections(source: Uint8Array, target: Uint8Array, entries: Iterable<ControlEntry>): Generator<Uint8Array | undefined> {
  const section = new SectionWriter(source, target);
  let lastYield = performance.now();

  // The plan seeks after each entry, the body before it: a seek moves on to the next entry that outputs
  // anything, and the plan's trailing seek is dropped. So every section rebuilds at least one byte.
  let targetPosition = 0;
  let sourcePosition = 0;
  let pendingSeek = 0;
  for (const entry of entries) {
    if (performance.now() - lastYield >= YIELD_INTERVAL_MS) {
      yield undefined;
      lastYield = performance.now();
    }
    let copy = entry[0];
    let literal = entry[1];
    if (copy + literal === 0) {
      pendingSeek += entry[2];
      continue;
    }
    let seek = pendingSeek;
    sourcePosition += seek;

    // An entry too long for the room left is cut into pieces; the pieces after the first do not seek.
    for (;;) {
      const room = SECTION_OUTPUT_LIMIT - section.outputLength;
      const copyPiece = Math.min(copy, room);
      const literalPiece = Math.min(literal, room - copyPiece);
      section.addEntry(sourcePosition, targetPosition, seek, copyPiece, literalPiece);
      seek = 0;
      sourcePosition += copyPiece;
      targetPosition += copyPiece + literalPiece;
      copy -= copyPiece;
      literal -= literalPiece;
      if (section.outputLength === SECTION_OUTPUT_LIMIT || section.entryCount === SECTION_ENTRY_LIMIT) {
        yield section.finish();
        lastYield = performance.now();
      }
      if (copy + literal === 0) break;
    }
    pendingSeek = entry[2];
  }
  if (section.entryCount > 0) yield section.finish();
}

/** One section being built: the three parts grow side by side and are written out together. */
class SectionWriter {
  outputLength = 0;
  entryCount = 0;
  private readonly controls = new ByteWriter();
  private readonly differences = new ByteWriter();
  private readonly literals = new ByteWriter();

  constructor(
    private readonly source: Uint8Array,
    private readonly target: Uint8Array,
  ) {}

  addEntry(sourcePosition: number, targetPosition: number, seek: number, copy: number, literal: number): void {
    this.controls.writeSignedVarint(seek);
    this.controls.writeVarint(copy);
    this.controls.writeVarint(literal);

    // Differences are run-length coded: a run of zero differences, then one nonzero difference, and so on,
    // closed by the final run. Shifted addresses in code leave long zero runs between small differences.
    if (copy > 0) {
      const source = this.source;
      const target = this.target;
      let run = 0;
      for (let i = 0; i < copy; i++) {
        const difference = (target[targetPosition + i] - source[sourcePosition + i]) & 0xff;
        if (difference === 0) {
          run++;
        } else {
          this.differences.writeVarint(run);
          this.differences.writeByte(difference);
          run = 0;
        }
      }
      this.differences.writeVarint(run);
    }

    this.literals.writeBytes(this.target.subarray(targetPosition + copy, targetPosition + copy + literal));
    this.outputLength += copy + literal;
    this.entryCount++;
  }

  /** Returns the finished section in a new buffer and starts the next one empty. */
  finish(): Uint8Array {
    const body = new ByteWriter(32 + this.controls.length + this.differences.length + this.literals.length);
    body.writeVarint(this.outputLength);
    body.writeVarint(this.controls.length);
    body.writeVarint(this.differences.length);
    body.writeVarint(this.literals.length);
    body.writeBytes(this.controls.view());
    body.writeBytes(this.differences.view());
    body.writeBytes(this.literals.view());

    this.outputLength = 0;
    this.entryCount = 0;
    this.controls.reset();
    this.differences.reset();
    this.literals.reset();
    return body.view();
  }
}
