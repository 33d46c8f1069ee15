import { InvalidArgumentError } from '../errors/index.js';

/**
 * Maximum of a duration option, one day. Node sets a timer of more than 2^31 - 1 ms (about 24.8 days) to 1 ms,
 * so a huge timeout would end a wait at once instead of never.
 */
export const MAX_SECONDS = 86_400;

/** Checks a duration option given in seconds, if given: a number above 0 and at most MAX_SECONDS. */
export function checkSeconds(flag: string, value: number | undefined): void {
  if (value === undefined) return;
  if (!(Number.isFinite(value) && value > 0 && value <= MAX_SECONDS)) {
    throw new InvalidArgumentError(`invalid ${flag}: expected a number of seconds above 0 and at most ${MAX_SECONDS} (one day), got ${value}`);
  }
}
