import { CodecError, formatBytes } from '../errors/index.js';
import type { SourceReader } from './index.js';
import { BrotliReader } from './brotli-reader.js';
import {
  COPY_LENGTH_AT,
  COPY_OFFSET_AT,
  COPY_SOURCE_AT,
  ORDER_AT,
  SORT_KEYS_AT,
  SPAN_FIRST_AT,
  SPAN_LENGTH_AT,
  SPAN_POSITION_AT,
  TABLES_SIZE,
  TABLE_CURSOR,
  TABLE_SOURCE_SIZE,
  TABLE_STATE,
  createSectionKernel,
  type SectionKernel,
} from './section-kernel.js';
import {
  SECTION_CONTROLS_LIMIT,
  SECTION_ENTRY_LIMIT,
  SECTION_DIFFERENCES_LIMIT,
  SECTION_OUTPUT_LIMIT,
  VarintReader,
  WINDOW_BITS,
  brotliWindowBits,
} from './delta-format.js';

/** Largest source read at once; copies are gathered into reads of up to this size. */
const SPAN_LIMIT = 1 << 18;

/** Copies whose source ranges lie at most this far apart are read together, gap included. */
const SPAN_GAP = 1 << 15;

/**
 * Decodes a delta body, yielding the target image one section (at most SECTION_OUTPUT_LIMIT bytes) at a time.
 * Every control value is checked before use, so a damaged or hostile body fails with a CodecError and never
 * reads outside the source or writes past `targetSize`. The yielded buffer is reused for the next section.
 */
export async function* decodeDelta(
  compressedBody: AsyncIterable<Uint8Array>,
  source: SourceReader | undefined,
  targetSize: number,
): AsyncIterable<Buffer> {
  if (source === undefined) {
    throw new CodecError('delta body needs the source image to decode, but no source image was given');
  }

  if (!Number.isSafeInteger(targetSize) || targetSize < 0) {
    throw new CodecError(`delta target size must be a non-negative safe integer, found ${targetSize}`);
  }

  const body = new BrotliReader(compressedBody, 'delta body', checkWindow);
  const rebuilder = new SectionRebuilder(source, Math.min(targetSize, SECTION_OUTPUT_LIMIT));
  let written = 0;
  try {
    while (await body.hasMore()) {
      const section = await readSectionHeader(body, targetSize - written);
      await readExact(body, rebuilder.contents(section), 'section contents');
      const output = await rebuilder.rebuild(section);
      written += output.length;
      yield output;
    }

    if (written !== targetSize) {
      throw new CodecError(`delta body rebuilds ${formatBytes(written)}, expected the declared target size of ${formatBytes(targetSize)}`);
    }
    await body.expectEnd();
  } finally {
    await body.close();
  }
}

/** One section's header. Its contents follow it: controls, difference tokens and literals, in that order. */
interface Section {
  readonly outputLength: number;
  readonly controlsLength: number;
  readonly differencesLength: number;
  readonly literalsLength: number;
}

/** Reads one section's header, checking each length against the format's limits. */
async function readSectionHeader(body: BrotliReader, targetRoom: number): Promise<Section> {
  const outputLength = await readVarint(body, 'section output length');
  const controlsLength = await readVarint(body, 'section controls length');
  const differencesLength = await readVarint(body, 'section differences length');
  const literalsLength = await readVarint(body, 'section literals length');

  // An empty section would let a tiny body expand into endless work, so each one must rebuild something.
  if (outputLength < 1 || outputLength > SECTION_OUTPUT_LIMIT) {
    throw new CodecError(`delta section output length must be 1 to ${SECTION_OUTPUT_LIMIT}, found ${outputLength}`);
  }
  if (outputLength > targetRoom) {
    throw new CodecError(
      `delta section rebuilds ${formatBytes(outputLength)} but only ${formatBytes(targetRoom)} of the declared target size remain`,
    );
  }
  if (controlsLength > SECTION_CONTROLS_LIMIT) {
    throw new CodecError(`delta section controls length must be at most ${SECTION_CONTROLS_LIMIT}, found ${controlsLength}`);
  }
  if (differencesLength > SECTION_DIFFERENCES_LIMIT) {
    throw new CodecError(`delta section differences length must be at most ${SECTION_DIFFERENCES_LIMIT}, found ${differencesLength}`);
  }
  if (literalsLength > outputLength) {
    throw new CodecError(`delta section literals length must be at most its output length ${outputLength}, found ${literalsLength}`);
  }

  return { outputLength, controlsLength, differencesLength, literalsLength };
}

/** Largest source for which a copy's position times SECTION_ENTRY_LIMIT plus its index stays below 2^53. */
const KEYED_SORT_LIMIT = 2 ** 53 / SECTION_ENTRY_LIMIT;

/** Bytes of one section's contents at most: the limits of its controls, difference tokens and literals. */
const CONTENTS_LIMIT = SECTION_CONTROLS_LIMIT + SECTION_DIFFERENCES_LIMIT + SECTION_OUTPUT_LIMIT;

/**
 * Rebuilds sections into one reused output buffer. Source reads are gathered per section: the copies are
 * sorted by source position and read in spans of up to SPAN_LIMIT bytes, so a section of many small copies
 * costs a few large reads and not one read each.
 *
 * The output, the span buffer, the section's contents and the copy tables share one workspace, which is the
 * memory of the WebAssembly kernel (section-kernel.ts) where WebAssembly is available. Each literal and each copy
 * out of a span is then one memory.copy in the kernel, or one copyWithin call without it; Buffer's copy creates a
 * view for every call, and a section can hold thousands of both. The JavaScript loops build their errors in
 * separate functions, because V8 compiles small methods faster.
 */
class SectionRebuilder {
  /** The output from offset 0, the span buffer at spanStart, the section's contents at contentsStart. */
  private readonly workspace: Buffer;
  private readonly spanStart: number;
  private readonly contentsStart: number;
  private readonly span: Buffer;
  /** Runs most entries, copies and difference tokens without V8's warm-up. Undefined where WebAssembly is missing. */
  private readonly kernel: SectionKernel | undefined;
  /**
   * The copy tables, at the end of the workspace (layout in section-kernel.ts): the state of runControls, then
   * per copy of the current section, in output order, its source position, length and output offset.
   */
  private readonly tablesStart: number;
  private readonly state: Int32Array;
  private readonly stateDoubles: Float64Array;
  private readonly copySource: Float64Array;
  private readonly copyLength: Int32Array;
  private readonly copyOffset: Int32Array;
  /** Copy indexes sorted by source position, and the keys that sortBySource sorts them by. */
  private readonly order: Int32Array;
  private readonly sortKeys: Float64Array;
  /** Per span: source position, length, and where its copies start in `order` (one more entry ends the last). */
  private readonly spanPosition: Float64Array;
  private readonly spanLength: Int32Array;
  private readonly spanFirst: Int32Array;
  private cursor = 0;

  constructor(
    private readonly source: SourceReader,
    outputCapacity: number,
  ) {
    this.spanStart = outputCapacity;
    this.contentsStart = outputCapacity + SPAN_LIMIT;
    this.tablesStart = Math.ceil((this.contentsStart + CONTENTS_LIMIT) / Float64Array.BYTES_PER_ELEMENT) * Float64Array.BYTES_PER_ELEMENT;
    // Both the kernel's memory and a large ArrayBuffer leave the pages untouched until they are written, so only
    // those a section uses become resident. The contents' worst case therefore costs address space, not memory.
    const size = this.tablesStart + TABLES_SIZE;
    this.kernel = createSectionKernel(size);
    this.workspace = this.kernel?.workspace ?? Buffer.from(new ArrayBuffer(size));
    this.span = this.workspace.subarray(this.spanStart, this.contentsStart);

    const memory = this.workspace.buffer;
    const tables = this.workspace.byteOffset + this.tablesStart;
    this.state = new Int32Array(memory, tables, Object.keys(TABLE_STATE).length);
    this.stateDoubles = new Float64Array(memory, tables, TABLE_SOURCE_SIZE + 1);
    this.copySource = new Float64Array(memory, tables + COPY_SOURCE_AT, SECTION_ENTRY_LIMIT);
    this.copyLength = new Int32Array(memory, tables + COPY_LENGTH_AT, SECTION_ENTRY_LIMIT);
    this.copyOffset = new Int32Array(memory, tables + COPY_OFFSET_AT, SECTION_ENTRY_LIMIT);
    this.order = new Int32Array(memory, tables + ORDER_AT, SECTION_ENTRY_LIMIT);
    this.sortKeys = new Float64Array(memory, tables + SORT_KEYS_AT, SECTION_ENTRY_LIMIT);
    this.spanPosition = new Float64Array(memory, tables + SPAN_POSITION_AT, SECTION_ENTRY_LIMIT);
    this.spanLength = new Int32Array(memory, tables + SPAN_LENGTH_AT, SECTION_ENTRY_LIMIT);
    this.spanFirst = new Int32Array(memory, tables + SPAN_FIRST_AT, SECTION_ENTRY_LIMIT + 1);
  }

  /** Returns the buffer that the section's contents must be read into before `rebuild`. */
  contents(section: Section): Buffer {
    const length = section.controlsLength + section.differencesLength + section.literalsLength;
    return this.workspace.subarray(this.contentsStart, this.contentsStart + length);
  }

  async rebuild(section: Section): Promise<Buffer> {
    const output = this.workspace.subarray(0, section.outputLength);
    const copyCount = this.runControls(section);
    await this.readCopies(copyCount, output);
    this.addAllDifferences(section, copyCount, output);
    return output;
  }

  /** Checks every entry, places the literals and records the copies; returns the number of copies. */
  private runControls(section: Section): number {
    const { state, stateDoubles, contentsStart, kernel } = this;
    const { controlsLength, outputLength } = section;
    const literalsStart = contentsStart + controlsLength + section.differencesLength;
    state[TABLE_STATE.at] = contentsStart;
    state[TABLE_STATE.end] = contentsStart + controlsLength;
    state[TABLE_STATE.literalAt] = literalsStart;
    state[TABLE_STATE.literalEnd] = literalsStart + section.literalsLength;
    state[TABLE_STATE.filled] = 0;
    state[TABLE_STATE.room] = outputLength;
    state[TABLE_STATE.copyCount] = 0;
    state[TABLE_STATE.entryCount] = 0;
    stateDoubles[TABLE_CURSOR] = this.cursor;
    stateDoubles[TABLE_SOURCE_SIZE] = this.source.size;

    const controls = new VarintReader(this.workspace, 'controls', contentsStart, contentsStart + controlsLength);
    for (;;) {
      kernel?.controls(this.tablesStart);
      if (state[TABLE_STATE.at] >= state[TABLE_STATE.end]) break;
      // The kernel stopped at an entry it leaves to runEntry, which checks it and names any error.
      controls.offset = state[TABLE_STATE.at];
      this.runEntry(controls);
    }
    this.cursor = stateDoubles[TABLE_CURSOR];

    // Left-over parts mean the body is not what the encoder wrote, even if the output happens to fill up.
    const filled = state[TABLE_STATE.filled];
    if (filled !== outputLength) {
      throw new CodecError(`delta section entries rebuild ${formatBytes(filled)}, expected its declared ${formatBytes(outputLength)}`);
    }
    const unusedLiterals = state[TABLE_STATE.literalEnd] - state[TABLE_STATE.literalAt];
    if (unusedLiterals !== 0) {
      throw new CodecError(`delta section has ${formatBytes(unusedLiterals)} of unused literals, expected none`);
    }
    return state[TABLE_STATE.copyCount];
  }

  /**
   * Runs the entry at `controls.offset` with every check, and moves the state in the copy tables past it. The
   * kernel's controls function makes the same checks in the same order, and leaves each failure to this method.
   */
  private runEntry(controls: VarintReader): void {
    const { state, stateDoubles } = this;
    if (++state[TABLE_STATE.entryCount] > SECTION_ENTRY_LIMIT) throw tooManyEntries();
    const seek = controls.readSignedVarint('seek');
    const copy = controls.readVarint('copy length');
    const literal = controls.readVarint('literal length');
    state[TABLE_STATE.at] = controls.offset;

    const filled = state[TABLE_STATE.filled];
    const left = state[TABLE_STATE.room] - filled;
    if (copy + literal > left) throw entryPastSection(copy + literal, left);
    const cursor = stateDoubles[TABLE_CURSOR] + seek;
    const sourceSize = stateDoubles[TABLE_SOURCE_SIZE];
    if (cursor < 0 || cursor + copy > sourceSize) throw copyOutsideSource(cursor, copy, sourceSize);
    stateDoubles[TABLE_CURSOR] = cursor + copy;

    if (copy > 0) {
      const index = state[TABLE_STATE.copyCount]++;
      this.copySource[index] = cursor;
      this.copyLength[index] = copy;
      this.copyOffset[index] = filled;
    }
    if (literal > 0) {
      const literalAt = state[TABLE_STATE.literalAt];
      const literalsLeft = state[TABLE_STATE.literalEnd] - literalAt;
      if (literal > literalsLeft) throw literalsShort(literal, literalsLeft);
      this.workspace.copyWithin(filled + copy, literalAt, literalAt + literal);
      state[TABLE_STATE.literalAt] = literalAt + literal;
    }
    state[TABLE_STATE.filled] = filled + copy + literal;
  }

  /** Fills every copy's output range with its source bytes, one read per span. */
  private async readCopies(copyCount: number, output: Buffer): Promise<void> {
    const spanCount = this.planSpans(copyCount);
    const { spanPosition, spanLength, spanFirst } = this;
    for (let i = 0; i < spanCount; i++) {
      // A copy longer than a span is a span of its own, and goes straight into the output.
      const direct = spanLength[i] > SPAN_LIMIT;
      const target = direct ? output : this.span;
      const offset = direct ? this.copyOffset[this.order[spanFirst[i]]] : 0;
      const reading = this.readSource(spanPosition[i], spanLength[i], target, offset);
      if (reading !== undefined) await reading;
      if (!direct) this.scatterSpan(spanFirst[i], spanFirst[i + 1], spanPosition[i]);
    }
  }

  /**
   * Sorts the copies by source position, gathers nearby ones into spans and returns the number of spans. The
   * kernel's prepare, orderByKeys and group do what the JavaScript below does, and the typed array's own sort
   * sorts the keys in both.
   */
  private planSpans(copyCount: number): number {
    const kernel = this.kernel;
    if (kernel !== undefined) {
      if (kernel.prepare(this.tablesStart, copyCount) === 0) this.sortBySource(copyCount);
      return kernel.group(this.tablesStart, copyCount, SPAN_LIMIT, SPAN_GAP);
    }

    const { copySource, copyLength, order } = this;
    let sorted = true;
    for (let i = 0; i < copyCount; i++) {
      order[i] = i;
      if (i > 0 && copySource[i] < copySource[i - 1]) sorted = false;
    }
    if (!sorted) this.sortBySource(copyCount);

    let spanCount = 0;
    for (let first = 0; first < copyCount; ) {
      const start = copySource[order[first]];
      let end = start + copyLength[order[first]];
      let last = first + 1;
      while (last < copyCount) {
        const next = order[last];
        const nextEnd = Math.max(end, copySource[next] + copyLength[next]);
        if (copySource[next] - end > SPAN_GAP || nextEnd - start > SPAN_LIMIT) break;
        end = nextEnd;
        last++;
      }
      this.spanPosition[spanCount] = start;
      this.spanLength[spanCount] = end - start;
      this.spanFirst[spanCount] = first;
      spanCount++;
      first = last;
    }
    this.spanFirst[spanCount] = copyCount;
    return spanCount;
  }

  /**
   * Sorts the copy indexes in `order` by source position, ties by index. Each key packs both into one double, so
   * the typed array sorts natively without a comparator, allocating nothing per comparison. The keys are exact
   * below 2^53, which holds for sources below KEYED_SORT_LIMIT bytes; larger sources take a comparator. The
   * kernel's prepare has built the keys already, and its orderByKeys reads the order back out of them.
   */
  private sortBySource(copyCount: number): void {
    const { copySource, order, sortKeys, kernel } = this;
    if (this.source.size > KEYED_SORT_LIMIT) {
      order.subarray(0, copyCount).sort((a, b) => copySource[a] - copySource[b] || a - b);
      return;
    }
    if (kernel === undefined) {
      for (let i = 0; i < copyCount; i++) sortKeys[i] = copySource[i] * SECTION_ENTRY_LIMIT + i;
    }
    sortKeys.subarray(0, copyCount).sort();
    if (kernel !== undefined) {
      kernel.orderByKeys(this.tablesStart, copyCount);
    } else {
      for (let i = 0; i < copyCount; i++) order[i] = sortKeys[i] % SECTION_ENTRY_LIMIT;
    }
  }

  /** Moves copies order[first] to order[last - 1] from the span buffer, read at `position`, to the output. */
  private scatterSpan(first: number, last: number, position: number): void {
    const base = this.spanStart - position;
    if (this.kernel !== undefined) {
      this.kernel.scatter(first, last, this.tablesStart, base);
      return;
    }
    const { workspace, order, copySource, copyLength, copyOffset } = this;
    for (let k = first; k < last; k++) {
      const index = order[k];
      const from = base + copySource[index];
      workspace.copyWithin(copyOffset[index], from, from + copyLength[index]);
    }
  }

  /**
   * Reads source bytes into `target` at `offset`, in pieces of at most SPAN_LIMIT bytes. It reads synchronously
   * where the source has `readInto`, which spares a promise per span, and returns a promise only where it has not.
   */
  private readSource(position: number, length: number, target: Buffer, offset: number): Promise<void> | undefined {
    const source = this.source;
    if (source.readInto === undefined) return this.readSourceAsync(position, length, target, offset);
    for (let done = 0; done < length; ) {
      const pieceLength = Math.min(length - done, SPAN_LIMIT);
      const got = source.readInto(target, offset + done, pieceLength, position + done);
      if (got !== pieceLength) throw sourceReadShort(position + done, got, pieceLength);
      done += pieceLength;
    }
    return undefined;
  }

  private async readSourceAsync(position: number, length: number, target: Buffer, offset: number): Promise<void> {
    for (let done = 0; done < length; ) {
      const pieceLength = Math.min(length - done, SPAN_LIMIT);
      const piece = await this.source.read(position + done, pieceLength);
      const got = piece.copy(target, offset + done, 0, Math.min(piece.length, pieceLength));
      if (got !== pieceLength) throw sourceReadShort(position + done, got, pieceLength);
      done += pieceLength;
    }
  }

  private addAllDifferences(section: Section, copyCount: number, output: Buffer): void {
    const start = this.contentsStart + section.controlsLength;
    const differences = new VarintReader(this.workspace, 'differences', start, start + section.differencesLength);
    const kernel = this.kernel;
    for (let i = 0; i < copyCount; i++) {
      let position = 0;
      if (kernel !== undefined) {
        const next = kernel.add(differences.offset, differences.end, this.copyOffset[i], this.copyLength[i]);
        if (next >= 0) {
          differences.offset = next;
          continue;
        }
        // The kernel stopped at a token it leaves to the loop below, which checks it and names any error.
        differences.offset = -1 - next;
        position = kernel.position();
      }
      addDifferences(differences, output, this.copyOffset[i], this.copyLength[i], position);
    }
    if (differences.remaining !== 0) {
      throw new CodecError(`delta section has ${formatBytes(differences.remaining)} of unused difference tokens, expected none`);
    }
  }
}

/**
 * Adds the run-length coded differences of one copy to the source bytes already in `output`: runs of
 * unchanged bytes, each followed by one difference, closed by a final run that ends the copy exactly.
 * `position` is where in the copy the next token applies, above 0 when the kernel has added the ones before it.
 */
function addDifferences(differences: VarintReader, output: Buffer, offset: number, length: number, position: number): void {
  // Most runs fit in one varint byte, so those are read here without a call; the reader handles the rest.
  const bytes = differences.bytes;
  const end = differences.end;
  let at = differences.offset;
  for (;;) {
    if (at < end && bytes[at] < 0x80) {
      position += bytes[at++];
    } else {
      differences.offset = at;
      position += differences.readVarint('difference run');
      at = differences.offset;
    }

    if (position === length) break;
    if (position > length) throw runPastCopy(position - length, length);
    if (at >= end) throw differencesEndInCopy();
    const index = offset + position;
    output[index] = (output[index] + bytes[at++]) & 0xff;
    position++;
  }
  differences.offset = at;
}

// The errors of the loops above, built outside them to keep the loops small.

function tooManyEntries(): CodecError {
  return new CodecError(`delta section has more than ${SECTION_ENTRY_LIMIT} control entries, the format's limit`);
}

function entryPastSection(length: number, left: number): CodecError {
  return new CodecError(`delta entry writes ${formatBytes(length)} but its section has ${formatBytes(left)} left`);
}

function copyOutsideSource(cursor: number, copy: number, sourceSize: number): CodecError {
  return new CodecError(
    `delta entry reads source bytes ${cursor} to ${cursor + copy}, outside the source image of ${formatBytes(sourceSize)}`,
  );
}

function literalsShort(literal: number, left: number): CodecError {
  return new CodecError(`delta entry needs ${formatBytes(literal)} of literals but its section has ${formatBytes(left)} left`);
}

function sourceReadShort(position: number, got: number, expected: number): CodecError {
  return new CodecError(`source image read at ${position} returned ${formatBytes(got)}, expected ${formatBytes(expected)}`);
}

function runPastCopy(excess: number, length: number): CodecError {
  return new CodecError(`delta difference run ends ${excess} bytes past its copy of ${formatBytes(length)}`);
}

function differencesEndInCopy(): CodecError {
  return new CodecError('delta differences end inside a copy: expected a difference byte, found the end');
}

/** Bytes of the longest varint VarintReader reads before it gives up on one as overlong. */
const VARINT_READ_LIMIT = 10;

/** Reads one varint of a section header, byte by byte, so that no byte after it is taken from the body. */
async function readVarint(body: BrotliReader, field: string): Promise<number> {
  const bytes = Buffer.alloc(VARINT_READ_LIMIT);
  let length = 0;
  while (length < VARINT_READ_LIMIT && (await body.read(bytes, length, 1)) === 1) {
    if (bytes[length++] < 0x80) break;
  }
  return new VarintReader(bytes, 'section header', 0, length).readVarint(field);
}

/** Fills `target` with the next decompressed bytes. `part` names them in the error if the stream ends first. */
async function readExact(body: BrotliReader, target: Buffer, part: string): Promise<void> {
  const filled = await body.read(target, 0, target.length);
  if (filled < target.length) {
    throw new CodecError(`delta body ends inside the ${part}: expected ${formatBytes(target.length)}, found ${formatBytes(filled)}`);
  }
}

/** Rejects a brotli window larger than the decoder's memory budget allows, before any data is decoded. */
function checkWindow(firstByte: number): void {
  const windowBits = brotliWindowBits(firstByte);
  if (windowBits === undefined || windowBits > WINDOW_BITS) {
    throw new CodecError(
      `delta body's brotli window must be at most 2^${WINDOW_BITS} bytes, found ${windowBits === undefined ? 'a large window' : `2^${windowBits}`}`,
    );
  }
}
