/**
 * Finds how to build the target image from the source image, in the manner of Colin Percival's bsdiff
 * ("Naive differences of executable code", 2003): approximate matches found through a suffix array of the
 * source are extended while at least half of their bytes agree, so code whose embedded addresses shifted
 * still counts as a match, and its bytewise differences are mostly zeros that compress well.
 */
import { buildSuffixArray } from './suffix-array.js';

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
 * Plans the target image as copies with differences from `source` plus literal bytes, yielding the control
 * entries in output order as the scan finds them, so the caller can compress the start of the body while the
 * rest is planned. Deterministic.
 */
export function* planMatches(source: Uint8Array, target: Uint8Array): Generator<ControlEntry> {
  const finder = new MatchFinder(source, target);

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
    if (length === oldScore && scan !== targetLength) continue;

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

/** Longest-prefix lookups of target positions in the source, through the source's suffix array. */
class MatchFinder {
  /** Source position of the match returned by the last `find`. */
  position = 0;

  private readonly suffixes: Int32Array;
  /** Per 2-byte prefix (first byte times 256 plus second), the first suffix array index of suffixes starting with it. */
  private readonly prefixStarts = new Int32Array(1 << 16);
  /** Per 2-byte prefix, how many suffixes start with it. */
  private readonly prefixCounts = new Int32Array(1 << 16);

  constructor(
    private readonly source: Uint8Array,
    private readonly target: Uint8Array,
  ) {
    this.suffixes = buildSuffixArray(source);

    const counts = this.prefixCounts;
    for (let i = 0; i + 1 < source.length; i++) counts[(source[i] << 8) | source[i + 1]]++;
    // The one-byte last suffix sorts just before every longer suffix that starts with the same byte.
    const lastAlone = source.length > 0 ? source[source.length - 1] << 8 : -1;
    let sum = 0;
    for (let prefix = 0; prefix < counts.length; prefix++) {
      if (prefix === lastAlone) sum++;
      this.prefixStarts[prefix] = sum;
      sum += counts[prefix];
    }
  }

  /** Returns the length of the longest source match for the target at `targetPosition`, capped at MAX_COMPARED. */
  find(targetPosition: number): number {
    const suffixes = this.suffixes;
    if (suffixes.length === 0) {
      this.position = 0;
      return 0;
    }

    // Binary search keeping the common prefix with both bounds: every suffix between them shares at least the
    // smaller of the two, so comparisons can start past it.
    let low = 0;
    let high = suffixes.length - 1;

    // A match of two bytes or more lies among the suffixes with the same first two bytes, which the prefix
    // table locates at once. That saves about 16 binary search steps, each a cache miss in the suffix array and
    // another in the source.
    if (targetPosition + 2 <= this.target.length) {
      const prefix = (this.target[targetPosition] << 8) | this.target[targetPosition + 1];
      const count = this.prefixCounts[prefix];
      if (count > 0) {
        low = this.prefixStarts[prefix];
        high = low + count - 1;
      }
    }
    let lowLength = this.commonPrefix(suffixes[low], targetPosition, 0);
    let highLength = this.commonPrefix(suffixes[high], targetPosition, 0);
    while (high - low > 1) {
      const middle = (low + high) >>> 1;
      const start = suffixes[middle];
      const common = this.commonPrefix(start, targetPosition, Math.min(lowLength, highLength));
      if (this.sourceSortsFirst(start, targetPosition, common)) {
        low = middle;
        lowLength = common;
      } else {
        high = middle;
        highLength = common;
      }
    }

    if (lowLength >= highLength) {
      this.position = suffixes[low];
      return lowLength;
    }
    this.position = suffixes[high];
    return highLength;
  }

  private commonPrefix(sourcePosition: number, targetPosition: number, known: number): number {
    const source = this.source;
    const target = this.target;
    const limit = Math.min(source.length - sourcePosition, target.length - targetPosition, MAX_COMPARED);
    let length = known;
    while (length < limit && source[sourcePosition + length] === target[targetPosition + length]) length++;
    return length;
  }

  /** Tells whether the source suffix sorts before the target suffix, given that their first `common` bytes agree. */
  private sourceSortsFirst(sourcePosition: number, targetPosition: number, common: number): boolean {
    if (common >= MAX_COMPARED) return true;
    if (sourcePosition + common >= this.source.length) return true;
    if (targetPosition + common >= this.target.length) return false;
    return this.source[sourcePosition + common] < this.target[targetPosition + common];
  }
}
