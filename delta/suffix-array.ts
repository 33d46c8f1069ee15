/**
 * Suffix sorting for the delta encoder's source index. The suffixes are those that start at every `stride`th
 * byte, and they compare as sequences of 2-byte keys. Each key is the byte at an even distance from the suffix's
 * start plus 256 times the byte after it, so the second byte of each pair decides first. Their order comes from
 * induced sorting (SA-IS: Nong, Zhang and Chan, "Two Efficient Algorithms for Linear Time Suffix Array
 * Construction", IEEE Transactions on Computers, 2011) over a text whose symbols are the ranks of the stride-byte
 * words. Linear time after a radix sort of the words. Besides the 4-byte result per indexed position, it needs the
 * rank text (4 bytes per position), one type bit per position on each level and one bucket per distinct word. The
 * deeper levels keep their reduced strings and, where it fits, their buckets in unused parts of the result.
 */

/**
 * Sorts the suffixes of `bytes` that start at multiples of `stride` (an even number) by their 2-byte keys and
 * returns their word numbers w (the suffix starts at byte w * stride) in that order. The suffixes end at the last
 * whole word: a tail shorter than `stride` is left out.
 */
export function buildSparseSuffixArray(bytes: Uint8Array, stride: number): Int32Array {
  const wordCount = Math.floor(bytes.length / stride);
  const order = new Int32Array(wordCount);
  const ranks = new ScratchArray(wordCount);
  const rankCount = rankWords(bytes, stride, order, ranks.values);
  // The ranks number the words in key order, so sorting the suffixes of the rank text sorts the byte suffixes
  // at word starts. The sorted word order is not needed again: its array takes the result.
  sortSuffixes(ranks.values, order, wordCount, rankCount);
  ranks.free();
  return order;
}

/**
 * An Int32Array whose memory `free` returns at once. The index's scratch arrays are megabytes each and garbage
 * as soon as the suffixes are sorted. Left to the garbage collector, the rank text was still there at the
 * encoder's peak in 7 of 10 creates of the esbuild executable's delta, which then peaked 5.5 MiB higher. A
 * resizable buffer resized to 0 frees its memory without waiting for a collection.
 */
class ScratchArray {
  private readonly buffer: ArrayBuffer;
  readonly values: Int32Array;

  constructor(length: number) {
    const byteLength = length * Int32Array.BYTES_PER_ELEMENT;
    this.buffer = new ArrayBuffer(byteLength, { maxByteLength: byteLength });
    this.values = new Int32Array(this.buffer, 0, length);
  }

  free(): void {
    this.buffer.resize(0);
  }
}

/**
 * Sorts the word numbers by their words' keys into `order`, then gives each word its rank among the distinct
 * words in `ranks` (0 for the smallest), and returns the number of distinct words. `ranks` serves as scratch
 * space for the sort first.
 */
function rankWords(bytes: Uint8Array, stride: number, order: Int32Array, ranks: Int32Array): number {
  const wordCount = order.length;
  // Least significant key first radix sort, one stable pass per 2-byte key, back and forth between the arrays.
  let from = order;
  let to = ranks;
  for (let w = 0; w < wordCount; w++) from[w] = w;
  const counts = new Int32Array((1 << 16) + 1);
  for (let key = stride - 2; key >= 0; key -= 2) {
    counts.fill(0);
    for (let w = 0; w < wordCount; w++) {
      const at = w * stride + key;
      counts[(bytes[at] | (bytes[at + 1] << 8)) + 1]++;
    }
    for (let value = 1; value < counts.length; value++) counts[value] += counts[value - 1];
    for (let i = 0; i < wordCount; i++) {
      const w = from[i];
      const at = w * stride + key;
      to[counts[bytes[at] | (bytes[at + 1] << 8)]++] = w;
    }
    [from, to] = [to, from];
  }
  if (from !== order) order.set(from);

  // Equal words are neighbours in sorted order and share a rank.
  let rank = -1;
  let previous = -1;
  for (let i = 0; i < wordCount; i++) {
    const w = order[i];
    if (previous < 0 || !sameWord(bytes, previous * stride, w * stride, stride)) rank++;
    ranks[w] = rank;
    previous = w;
  }
  return rank + 1;
}

function sameWord(bytes: Uint8Array, first: number, second: number, stride: number): boolean {
  for (let i = 0; i < stride; i++) {
    if (bytes[first + i] !== bytes[second + i]) return false;
  }
  return true;
}

/**
 * Sorts the suffixes of `text[0, n)` over an alphabet of `alphabetSize` symbols into `sa[0, n)`. The end of
 * the text is a virtual sentinel smaller than every symbol, so no symbol value has to be reserved for it.
 */
function sortSuffixes(text: Int32Array, sa: Int32Array, n: number, alphabetSize: number, spare?: Int32Array): void {
  if (n === 0) return;
  if (n === 1) {
    sa[0] = 0;
    return;
  }

  // Type bit of each suffix: set when it sorts before the suffix that follows it (S-type), clear otherwise
  // (L-type). The last suffix is L-type because it sorts after the sentinel.
  const types = new Uint8Array((n + 7) >> 3);
  let sType = 0;
  for (let i = n - 2; i >= 0; i--) {
    const here = text[i];
    const next = text[i + 1];
    sType = here < next || (here === next && sType === 1) ? 1 : 0;
    if (sType === 1) types[i >> 3] |= 1 << (i & 7);
  }
  // The top level's buckets, one per distinct word, take megabytes: 3.5 MiB for the esbuild executable's 923,196
  // distinct words. Left to the garbage collector, they raised 7 of 16 create peaks by about 5 MiB, so they are
  // freed at the end like the ranks. Typed arrays on a resizable buffer run slower in V8 11 (about 1.7 times in a
  // loop of random increments), yet eight creates of that delta each way took a median of 2.86 and 2.87 s.
  const ownBuckets = spare !== undefined && spare.length >= alphabetSize ? undefined : new ScratchArray(alphabetSize);
  const buckets = ownBuckets?.values ?? spare!.subarray(0, alphabetSize);

  // Step 1: sort the LMS substrings by inducing from LMS positions dropped at their bucket ends.
  sa.fill(-1, 0, n);
  fillBucketEnds(text, n, buckets);
  for (let i = 1; i < n; i++) {
    if (isLms(types, i)) sa[--buckets[text[i]]] = i;
  }
  induceSort(text, sa, n, buckets);

  // Step 2: name each LMS substring by its rank; equal substrings get equal names.
  let lmsCount = 0;
  for (let i = 0; i < n; i++) {
    const position = sa[i];
    if (isLms(types, position)) sa[lmsCount++] = position;
  }
  sa.fill(-1, lmsCount, n);

  // LMS positions are at least two apart, so position / 2 gives each one its own slot in the upper half. The
  // slot first contains the length of the position's LMS substring, up to and including the next LMS position,
  // and then its name. The last LMS substring reaches the sentinel and is unique, so it gets length 0.
  let nextLms = -1;
  for (let i = n - 1; i > 0; i--) {
    if (isLms(types, i)) {
      sa[lmsCount + (i >> 1)] = nextLms < 0 ? 0 : nextLms - i + 1;
      nextLms = i;
    }
  }

  // Two LMS substrings of equal length and equal symbols are equal, types included: both end at an S-type
  // position, and the types before it follow from the symbols alone.
  let nameCount = 0;
  let previous = -1;
  let previousLength = 0;
  for (let i = 0; i < lmsCount; i++) {
    const position = sa[i];
    const slot = lmsCount + (position >> 1);
    const length = sa[slot];
    let equal = previous >= 0 && length !== 0 && length === previousLength;
    for (let d = 0; equal && d < length; d++) {
      if (text[position + d] !== text[previous + d]) equal = false;
    }
    if (!equal) nameCount++;
    previous = position;
    previousLength = length;
    sa[slot] = nameCount - 1;
  }
  for (let i = n - 1, j = n - 1; i >= lmsCount; i--) {
    if (sa[i] >= 0) sa[j--] = sa[i];
  }

  // Step 3: sort the reduced string of names, recursing only while names repeat.
  const reduced = sa.subarray(n - lmsCount, n);
  const reducedSa = sa.subarray(0, lmsCount);
  if (nameCount < lmsCount) {
    // The middle of `sa` is free while the reduced problem is sorted, and often large enough for its buckets.
    sortSuffixes(reduced, reducedSa, lmsCount, nameCount, sa.subarray(lmsCount, n - lmsCount));
  } else {
    for (let i = 0; i < lmsCount; i++) reducedSa[reduced[i]] = i;
  }

  // Step 4: put the LMS suffixes, now in order, at their bucket ends and induce the whole array from them.
  for (let i = 1, j = 0; i < n; i++) {
    if (isLms(types, i)) reduced[j++] = i;
  }
  for (let i = 0; i < lmsCount; i++) reducedSa[i] = reduced[reducedSa[i]];
  sa.fill(-1, lmsCount, n);
  fillBucketEnds(text, n, buckets);
  for (let i = lmsCount - 1; i >= 0; i--) {
    const position = sa[i];
    sa[i] = -1;
    sa[--buckets[text[position]]] = position;
  }
  induceSort(text, sa, n, buckets);
  ownBuckets?.free();
}

function isS(types: Uint8Array, position: number): boolean {
  return ((types[position >> 3] >> (position & 7)) & 1) === 1;
}

function isLms(types: Uint8Array, position: number): boolean {
  return position > 0 && isS(types, position) && !isS(types, position - 1);
}

function countSymbols(text: Int32Array, n: number, buckets: Int32Array): void {
  buckets.fill(0);
  for (let i = 0; i < n; i++) buckets[text[i]]++;
}

function fillBucketStarts(text: Int32Array, n: number, buckets: Int32Array): void {
  countSymbols(text, n, buckets);
  let sum = 0;
  for (let c = 0; c < buckets.length; c++) {
    const count = buckets[c];
    buckets[c] = sum;
    sum += count;
  }
}

function fillBucketEnds(text: Int32Array, n: number, buckets: Int32Array): void {
  countSymbols(text, n, buckets);
  let sum = 0;
  for (let c = 0; c < buckets.length; c++) {
    sum += buckets[c];
    buckets[c] = sum;
  }
}

/**
 * Induces L-type suffixes left to right, then S-type suffixes right to left, from the LMS suffixes already
 * placed. The type of each induced suffix j = p - 1 follows from the symbols at j and p and the type of p, so
 * neither pass reads the type bits, which would cost a cache miss per suffix.
 */
function induceSort(text: Int32Array, sa: Int32Array, n: number, buckets: Int32Array): void {
  // Left to right, p is an LMS suffix or an L-type one. Before an LMS suffix there is always an L-type one
  // with a larger symbol, and before an L-type one, j is L-type unless its symbol is smaller.
  fillBucketStarts(text, n, buckets);
  // The sentinel sorts first, and the suffix just before it is L-type.
  sa[buckets[text[n - 1]]++] = n - 1;
  for (let i = 0; i < n; i++) {
    const p = sa[i];
    if (p > 0 && text[p - 1] >= text[p]) sa[buckets[text[p - 1]]++] = p - 1;
  }

  // Right to left, S-type suffixes fill each bucket from its end, so p is S-type exactly when i has reached
  // the part of its bucket written so far. With equal symbols j has the type of p, with unequal ones the
  // smaller symbol makes it S-type.
  fillBucketEnds(text, n, buckets);
  for (let i = n - 1; i >= 0; i--) {
    const p = sa[i];
    if (p <= 0) continue;
    const symbol = text[p];
    const before = text[p - 1];
    if (before < symbol || (before === symbol && i >= buckets[symbol])) sa[--buckets[before]] = p - 1;
  }
}
