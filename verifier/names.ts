import { InvalidArgumentError } from '../errors/index.js';

export const MAX_IDENTIFIER_LENGTH = 64;

// Letters, digits, dot, dash, underscore and plus. A platform or version becomes part of a file name on a server
// and on flash, so this set and the ".." rule keep out path traversal (`/`, `\`, `..`), URL decoding (`%`) and
// terminal or log injection (control characters).
const IDENTIFIER_PATTERN = /^[A-Za-z0-9._+-]+$/;

/** The kind of value an identifier is, named in error messages. */
export type IdentifierKind = 'platform' | 'version' | 'image name';

/** Checks a platform, version or image name against the safe character set and length; throws InvalidArgumentError. */
export function validateIdentifier(kind: IdentifierKind, value: string): void {
  const shown = JSON.stringify(value.length > MAX_IDENTIFIER_LENGTH + 16 ? `${value.slice(0, MAX_IDENTIFIER_LENGTH + 16)}...` : value);
  if (value.length === 0) {
    throw new InvalidArgumentError(`invalid ${kind}: expected 1 to ${MAX_IDENTIFIER_LENGTH} characters, got an empty string`);
  }
  if (value.length > MAX_IDENTIFIER_LENGTH) {
    throw new InvalidArgumentError(`invalid ${kind} ${shown}: expected at most ${MAX_IDENTIFIER_LENGTH} characters, got ${value.length}`);
  }
  if (!IDENTIFIER_PATTERN.test(value)) {
    throw new InvalidArgumentError(`invalid ${kind} ${shown}: expected only letters, digits and . _ + -`);
  }
  if (value.includes('..') || value.startsWith('.')) {
    throw new InvalidArgumentError(`invalid ${kind} ${shown}: must not start with "." or contain ".."`);
  }
}

/**
 * Returns the name of the patch that upgrades `platform` from `sourceVersion`. The device builds it from what
 * it runs, and `patch create` writes the file under exactly this name.
 */
export function patchFileName(platform: string, sourceVersion: string): string {
  validateIdentifier('platform', platform);
  validateIdentifier('version', sourceVersion);
  return `${platform}_${sourceVersion}.patch`;
}
