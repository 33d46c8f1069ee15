import { InvalidArgumentError } from '../errors/index.js';

// Binary multiples, as flash sizes are given on router data sheets and in `show flash` outputs.
const UNIT_BYTES: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/**
 * Parses a byte count written as digits with an optional K, M or G suffix (binary multiples): "1310076", "64K",
 * "16M", "1G". Throws InvalidArgumentError for anything else, for zero, and for sizes beyond 2^53 bytes.
 */
export function parseSize(text: string): number {
  const match = /^([0-9]+)([KMG]?)$/i.exec(text.trim());
  if (!match) {
    throw new InvalidArgumentError(`invalid size ${JSON.stringify(text)}: expected a whole number of bytes, optionally followed by K, M or G (e.g. 16M)`);
  }

  const count = Number(match[1]) * UNIT_BYTES[match[2]!.toUpperCase()]!;
  if (!Number.isSafeInteger(count)) {
    throw new InvalidArgumentError(`invalid size ${JSON.stringify(text)}: expected at most ${Number.MAX_SAFE_INTEGER} bytes`);
  }
  if (count === 0) {
    throw new InvalidArgumentError(`invalid size ${JSON.stringify(text)}: expected a size above zero`);
  }
  return count;
}
