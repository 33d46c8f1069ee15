/**
 * Finds how to build the target image from the source image, in the manner of Colin Percival's bsdiff
 * ("Naive differences of executable code", 2003): approximate matches found through a suffix array of the
 * source are extended while at least half of their bytes agree, so code whose embedded addresses shifted
 * still counts as a match, and its bytewise differences are mostly zeros that compress well.
 */
import { buildSparseSuffixArray } from './suffix-array.js';

/**
 * One step of rebuilding the target: `copy` bytes of source plus their bytewise difference, starting at the
 * source cursor, then `literal` bytes of target, then the source cursor moves by `seek`.
 */
export type ControlEntry = readonly [copy: number, literal: number, seek: number];

/**
 * Longest prefix compared in one suffix array lookup. A cap keeps a long identical region from costing its
 * whole length at every binary search step; a match longer than the cap is simply picked up again by the
 * next lookup, which continues at the same source offset.
 */
const MAX_COMPARED = 1 << 16;

/** A candidate must beat the current alignment by this many matching bytes to start a new control entry. */
const MIN_GAIN = 8;

/**
 * Skipping along the previous alignment without lookups: blocks of SKIP_BLOCK bytes with at least SKIP_AGREED of
 * them in agreement, at most SKIP_BLOCKS blocks in a row. In such a block a new match beats the alignment by
 * MIN_GAIN only if it is longer than about MIN_GAIN / (1 - SKIP_AGREED / SKIP_BLOCK) = 32 bytes, so lookups there
 * rarely change the plan. The limit bounds how late a better alignment that starts in such a region is found:
 * without it, skipping while 22 of 32 bytes agreed made the esbuild executable's body 454,182 bytes, against
 * 441,739 with it. On that pair the scan took 0.53 to 0.64 s against 1.22 to 1.44 s without skipping. With a
 * brotli window of 2^17 the bodies came to 439,248 bytes against 439,510 on esbuild, 102,283 against 102,244 on
 * the iwlwifi firmware and 2,602,312 against 2,599,151 on turbo.
 */
const SKIP_BLOCK = 32;
const SKIP_AGREED = 24;
const SKIP_BLOCKS = 4;

/**
 * The index contains every INDEX_STRIDEth source position, and a match at any other position is found through the
 * indexed one up to INDEX_STRIDE - 1 bytes further on. On the 11 MB esbuild executable (brotli window 2^18),
 * positions 8 apart gave a 438,660-byte body with an index of 5.5 MiB. Every second position gave 437,567 bytes
 * with 22 MiB, and the suffix array of every position used before 439,192 bytes with 44 MiB. Every 16th position
 * cost 2% more.
 */
const INDEX_STRIDE = 8;

/** Suffix array of the source positions that are multiples of `stride`, in the 2-byte key order of pairKey. */
export interface SourceIndex {
  readonly stride: number;
  /** Word numbers: the suffix of word w starts at byte w * stride and ends at the last whole word. */
  readonly words: Int32Array;
}

/** Builds the index that planMatches searches. */
export function indexSource(source: Uint8Array): SourceIndex {
  return { stride: INDEX_STRIDE, words: buildSparseSuffixArray(source, INDEX_STRIDE) };
}

/**
 * Plans the target image as copies with differences from `source` plus literal bytes, yielding the control
 * entries in output order as the scan finds them, so the caller can compress the start of the body while the
 * rest is planned. Deterministic.
 */
export function* planMatches(source: Uint8Array, target: Uint8Array, index: SourceIndex): Generator<ControlEntry> {
  const finder = new MatchFinder(source, target, index);

  const sourceLength = source.length;
  const targetLength = target.length;
  let scan = 0;
  let length = 0;
  let position = 0;
  let lastScan = 0;
  let lastPosition = 0;
  let lastOffset = 0;

  while (scan < targetLength) {
    // Look for a match clearly better than carrying on at the previous alignment (lastOffset).
    let oldScore = 0;
    scan += length;
    let scored = scan;
    for (; scan < targetLength; scan++) {
      length = finder.find(scan);
      position = finder.position;
      for (; scored < scan + length; scored++) {
        if (scored + lastOffset < sourceLength && source[scored + lastOffset] === target[scored]) oldScore++;
      }
      if ((length === oldScore && length !== 0) || length > oldScore + MIN_GAIN) break;
      if (scan + lastOffset < sourceLength && source[scan + lastOffset] === target[scan]) oldScore--;
    }
    if (length === oldScore && scan !== targetLength) {
      length += skipAlong(source, target, scan + length, lastOffset);
      continue;
    }

    // Extend the previous match forwards and the new one backwards while at least half the bytes agree.
    let forward = 0;
    let matched = 0;
    let bestForward = 0;
    for (let i = 0; lastScan + i < scan && lastPosition + i < sourceLength; ) {
      if (source[lastPosition + i] === target[lastScan + i]) matched++;
      i++;
      if (matched * 2 - i > bestForward * 2 - forward) {
        bestForward = matched;
        forward = i;
      }
    }

    let backward = 0;
    if (scan < targetLength) {
      matched = 0;
      let bestBackward = 0;
      for (let i = 1; scan >= lastScan + i && position >= i; i++) {
        if (source[position - i] === target[scan - i]) matched++;
        if (matched * 2 - i > bestBackward * 2 - backward) {
          bestBackward = matched;
          backward = i;
        }
      }
    }

    // Where the two extensions overlap, split the overlap where the agreements balance best.
    if (lastScan + forward > scan - backward) {
      const overlap = lastScan + forward - (scan - backward);
      let balance = 0;
      let bestBalance = 0;
      let split = 0;
      for (let i = 0; i < overlap; i++) {
        if (target[lastScan + forward - overlap + i] === source[lastPosition + forward - overlap + i]) balance++;
        if (target[scan - backward + i] === source[position - backward + i]) balance--;
        if (balance > bestBalance) {
          bestBalance = balance;
          split = i + 1;
        }
      }
      forward += split - overlap;
      backward -= split;
    }

    const literal = scan - backward - (lastScan + forward);
    yield [forward, literal, position - backward - (lastPosition + forward)];

    lastScan = scan - backward;
    lastPosition = position - backward;
    lastOffset = position - scan;
  }
}

/**
 * Returns how far the scan moves on from `targetPosition` along the alignment where target position t faces
 * source position t + offset: whole SKIP_BLOCK-byte blocks with at least SKIP_AGREED bytes in agreement, at
 * most SKIP_BLOCKS of them.
 */
function skipAlong(source: Uint8Array, target: Uint8Array, targetPosition: number, offset: number): number {
  let position = targetPosition;
  for (let blocks = 0; blocks < SKIP_BLOCKS; blocks++) {
    const end = position + SKIP_BLOCK;
    if (position + offset < 0 || end > target.length || end + offset > source.length) break;
    let agreed = 0;
    for (let t = position; t < end; t++) {
      if (source[t + offset] === target[t]) agreed++;
    }
    if (agreed < SKIP_AGREED) break;
    position = end;
  }
  return position - targetPosition;
}

/**
 * Longest-prefix lookups of target positions in the source. A match at source position q is found by the index
 * lookup for the target d bytes further on, where q + d is the next indexed position, and then carried back
 * over the d bytes it skipped. The lookups of the next `stride` target positions are kept, so a scan that
 * moves one byte at a time does one new lookup per byte.
 */
class MatchFinder {
  /** Source position of the match returned by the last `find`. */
  position = 0;

  private readonly lookup: IndexLookup;
  private readonly stride: number;
  /** Per slot (target position modulo stride): the target position looked up there, or -1, and its result. */
  private readonly lookedUp: Float64Array;
  private readonly lengths: Int32Array;
  private readonly positions: Int32Array;

  constructor(
    private readonly source: Uint8Array,
    private readonly target: Uint8Array,
    index: SourceIndex,
  ) {
    this.lookup = new IndexLookup(source, target, index);
    this.stride = index.stride;
    this.lookedUp = new Float64Array(index.stride).fill(-1);
    this.lengths = new Int32Array(index.stride);
    this.positions = new Int32Array(index.stride);
  }

  /**
   * Returns the length of the longest source match for the target at `targetPosition` that the index finds,
   * capped at MAX_COMPARED plus the stride. Of equal matches, the one reached with the shortest carry wins.
   */
  find(targetPosition: number): number {
    const source = this.source;
    const target = this.target;
    let bestLength = -1;
    const carries = Math.min(this.stride, target.length - targetPosition);
    for (let carry = 0; carry < carries; carry++) {
      const slot = (targetPosition + carry) % this.stride;
      if (this.lookedUp[slot] !== targetPosition + carry) {
        this.lengths[slot] = this.lookup.find(targetPosition + carry);
        this.positions[slot] = this.lookup.position;
        this.lookedUp[slot] = targetPosition + carry;
      }
      const start = this.positions[slot] - carry;
      if (this.lengths[slot] + carry <= bestLength || start < 0) continue;
      let agreed = 0;
      while (agreed < carry && source[start + agreed] === target[targetPosition + agreed]) agreed++;
      if (agreed < carry) continue;
      bestLength = this.lengths[slot] + carry;
      this.position = start;
    }
    // Only a position at the end of the target leaves no candidate, and then the position does not matter.
    if (bestLength < 0) {
      this.position = 0;
      return 0;
    }
    return bestLength;
  }
}

/** Longest-prefix lookups in the index's suffix array, comparing suffixes in its pair key order. */
class IndexLookup {
  /** Source position of the match returned by the last `find`. */
  position = 0;

  private readonly stride: number;
  private readonly words: Int32Array;
  /** End of the indexed suffixes: the last whole word. */
  private readonly end: number;
  /** Per pair key of a suffix's first two bytes, the first suffix array index of suffixes starting with it. */
  private readonly prefixStarts = new Int32Array(1 << 16);
  /** Per pair key, how many suffixes start with it. */
  private readonly prefixCounts = new Int32Array(1 << 16);

  constructor(
    private readonly source: Uint8Array,
    private readonly target: Uint8Array,
    index: SourceIndex,
  ) {
    this.stride = index.stride;
    this.words = index.words;
    this.end = index.words.length * index.stride;

    // Every indexed suffix is a whole word or more, so each has its first pair.
    const counts = this.prefixCounts;
    for (let w = 0; w < this.words.length; w++) counts[pairKey(source, w * this.stride)]++;
    let sum = 0;
    for (let key = 0; key < counts.length; key++) {
      this.prefixStarts[key] = sum;
      sum += counts[key];
    }
  }

  /**
   * Returns the length of a longest match for the target at `targetPosition` among the indexed suffixes, capped
   * at MAX_COMPARED. The search runs in pair key order, so of two suffixes that share the same whole pairs with
   * the target it may miss the one that also shares the next pair's first byte: the result can be one byte short.
   */
  find(targetPosition: number): number {
    const words = this.words;
    const stride = this.stride;
    if (words.length === 0) {
      this.position = 0;
      return 0;
    }

    // Binary search keeping the pairs in common with both bounds: every suffix between them shares at least the
    // smaller of the two, so comparisons can start past it.
    let low = 0;
    let high = words.length - 1;

    // A match of two bytes or more lies among the suffixes with the same first pair, which the prefix table
    // locates at once. That saves about 16 binary search steps, each a cache miss in the suffix array and
    // another in the source.
    if (targetPosition + 2 <= this.target.length) {
      const key = pairKey(this.target, targetPosition);
      const count = this.prefixCounts[key];
      if (count > 0) {
        low = this.prefixStarts[key];
        high = low + count - 1;
      }
    }
    let lowPairs = this.commonPairs(words[low] * stride, targetPosition, 0);
    let highPairs = this.commonPairs(words[high] * stride, targetPosition, 0);
    while (high - low > 1) {
      const middle = (low + high) >>> 1;
      const position = words[middle] * stride;
      const common = this.commonPairs(position, targetPosition, Math.min(lowPairs, highPairs));
      if (this.sourceSortsFirst(position, targetPosition, common)) {
        low = middle;
        lowPairs = common;
      } else {
        high = middle;
        highPairs = common;
      }
    }

    const lowLength = this.matchLength(words[low] * stride, targetPosition, lowPairs);
    const highLength = this.matchLength(words[high] * stride, targetPosition, highPairs);
    if (lowLength >= highLength) {
      this.position = words[low] * stride;
      return lowLength;
    }
    this.position = words[high] * stride;
    return highLength;
  }

  /** Counts the whole pairs that agree from the two positions on, given that the first `known` do. */
  private commonPairs(sourcePosition: number, targetPosition: number, known: number): number {
    const source = this.source;
    const target = this.target;
    const limit = Math.min(this.end - sourcePosition, target.length - targetPosition, MAX_COMPARED) >>> 1;
    let pairs = known;
    let s = sourcePosition + 2 * known;
    let t = targetPosition + 2 * known;
    while (pairs < limit && source[s] === target[t] && source[s + 1] === target[t + 1]) {
      pairs++;
      s += 2;
      t += 2;
    }
    return pairs;
  }

  /** Returns the bytes in common: the whole pairs, plus the first byte of the next pair where that agrees too. */
  private matchLength(sourcePosition: number, targetPosition: number, pairs: number): number {
    const s = sourcePosition + 2 * pairs;
    const t = targetPosition + 2 * pairs;
    const more = 2 * pairs < MAX_COMPARED && s < this.end && t < this.target.length && this.source[s] === this.target[t];
    return 2 * pairs + (more ? 1 : 0);
  }

  /** Tells whether the source suffix sorts before the target suffix, given that their first `pairs` pairs agree. */
  private sourceSortsFirst(sourcePosition: number, targetPosition: number, pairs: number): boolean {
    if (2 * pairs >= MAX_COMPARED) return true;
    const s = sourcePosition + 2 * pairs;
    const t = targetPosition + 2 * pairs;
    if (s >= this.end) return true;
    // A target that ends within its next pair sorts as if it ended before it.
    if (t + 2 > this.target.length) return false;
    return pairKey(this.source, s) < pairKey(this.target, t);
  }
}

/**
 * Returns the 2-byte key the index sorts by: the byte at `position` in the low half, the next byte in the high
 * half. With the second byte deciding first, a suffix that differs from the target in one byte but agrees on the
 * byte after it sorts closer to the target. Compiled code whose addresses moved differs in such single low bytes:
 * the esbuild executable's body came out 2.2% smaller than with the bytes compared in order (438,660 against
 * 448,398 bytes with a brotli window of 2^18).
 */
function pairKey(bytes: Uint8Array, position: number): number {
  return bytes[position] | (bytes[position + 1] << 8);
}
