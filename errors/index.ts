/**
 * Failure causes shared by the verifier, the flash store, the transports, the SNMP agent (upgradeFailCause)
 * and the traps. The numbers are the MIB's enumeration values: append new causes, never renumber.
 */
export const FAIL_CAUSES = {
  none: 1,
  fileNotFound: 2,
  accessViolation: 3,
  transferError: 4,
  transferTimeout: 5,
  fileTooLarge: 6,
  transferTruncated: 7,
  badUrl: 8,
  badPatchFormat: 9,
  badSignature: 10,
  untrustedKey: 11,
  revokedKey: 12,
  thresholdNotMet: 13,
  bodyDigestMismatch: 14,
  codecError: 15,
  wrongPlatform: 16,
  sourceMismatch: 17,
  downgradeRefused: 18,
  insufficientFlash: 19,
  flashWriteError: 20,
  targetDigestMismatch: 21,
  imageNotFound: 22,
  busy: 23,
  aborted: 24,
  invalidArgument: 25,
  internalError: 26,
} as const;

export type FailCause = Exclude<keyof typeof FAIL_CAUSES, 'none'>;

/** Returns the MIB enumeration value of a cause, or of `none` when there is no failure. */
export function failCauseNumber(cause: FailCause | 'none'): number {
  return FAIL_CAUSES[cause];
}

/** Returns the cause with the given MIB enumeration value, or undefined for an unknown value. */
export function failCauseFromNumber(value: number): FailCause | 'none' | undefined {
  for (const [name, number] of Object.entries(FAIL_CAUSES)) {
    if (number === value) return name as FailCause | 'none';
  }
  return undefined;
}

/**
 * Base of every failure this product reports to an operator. `code` is the stable cause name; the message
 * says what was expected and what arrived, so one log line or trap is enough to act on.
 */
export class UpgradeError extends Error {
  readonly code: FailCause;

  constructor(code: FailCause, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Builds the error class for one cause, so each failure kind has its own class for `instanceof`. */
function errorClass<C extends FailCause>(code: C) {
  return class extends UpgradeError {
    static readonly code: C = code;

    constructor(message: string, options?: { cause?: unknown }) {
      super(code, message, options);
    }
  };
}

export class FileNotFoundError extends errorClass('fileNotFound') {}
export class AccessViolationError extends errorClass('accessViolation') {}
export class TransferError extends errorClass('transferError') {}
export class TransferTimeoutError extends errorClass('transferTimeout') {}
export class FileTooLargeError extends errorClass('fileTooLarge') {}
export class TransferTruncatedError extends errorClass('transferTruncated') {}
export class BadUrlError extends errorClass('badUrl') {}
export class BadPatchFormatError extends errorClass('badPatchFormat') {}
export class BadSignatureError extends errorClass('badSignature') {}
export class UntrustedKeyError extends errorClass('untrustedKey') {}
export class RevokedKeyError extends errorClass('revokedKey') {}
export class ThresholdNotMetError extends errorClass('thresholdNotMet') {}
export class BodyDigestMismatchError extends errorClass('bodyDigestMismatch') {}
export class CodecError extends errorClass('codecError') {}
export class WrongPlatformError extends errorClass('wrongPlatform') {}
export class SourceMismatchError extends errorClass('sourceMismatch') {}
export class DowngradeRefusedError extends errorClass('downgradeRefused') {}
export class InsufficientFlashError extends errorClass('insufficientFlash') {}
export class FlashWriteError extends errorClass('flashWriteError') {}
export class TargetDigestMismatchError extends errorClass('targetDigestMismatch') {}
export class ImageNotFoundError extends errorClass('imageNotFound') {}
export class BusyError extends errorClass('busy') {}
export class AbortedError extends errorClass('aborted') {}
export class InvalidArgumentError extends errorClass('invalidArgument') {}
export class InternalError extends errorClass('internalError') {}

/** Wraps anything thrown into an UpgradeError, keeping UpgradeErrors as they are. */
export function asUpgradeError(error: unknown): UpgradeError {
  if (error instanceof UpgradeError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new InternalError(`internal error: ${message}`, { cause: error });
}

/** Formats a byte count with thousands separators, as operators read sizes in messages. */
export function formatBytes(count: number | bigint): string {
  return `${count.toLocaleString('en-US')} bytes`;
}
