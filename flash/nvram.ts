import { InvalidArgumentError } from '../errors/index.js';
import { validateIdentifier } from '../verifier/index.js';

export interface ImageRecord {
  name: string;
  platform: string;
  version: string;
  size: number;
  /** SHA-256 of the image, 64 lowercase hex digits. */
  sha256: string;
}

export interface FlashSettings {
  /** URL prefix patches are fetched from; the upgrade engine appends the patch file name. Empty until set. */
  urlPrefix: string;
  /** Image to upgrade from; empty means the running image. */
  flashImage: string;
  /** Trusted vendor public keys, 64 lowercase hex digits each. */
  trustedKeys: string[];
  /** Key ids (16 lowercase hex digits) whose signatures no longer count. */
  revokedKeyIds: string[];
  /** How many distinct trusted, unrevoked keys must sign a patch. */
  threshold: number;
  /** Highest security counter accepted so far; a patch with a lower one is a rollback. */
  securityCounter: bigint;
}

export interface FlashState {
  platform: string;
  capacityBytes: number;
  runningImage: string;
  bootImage: string;
  images: ImageRecord[];
  settings: FlashSettings;
}

/** The running and boot images' versions and the boot image's digest, as `flash show` and the agent report them. */
export function describeImages(state: FlashState): { runningVersion: string; bootVersion: string; bootSha256: string } {
  const running = state.images.find((image) => image.name === state.runningImage);
  const boot = state.images.find((image) => image.name === state.bootImage);
  return { runningVersion: running?.version ?? '', bootVersion: boot?.version ?? '', bootSha256: boot?.sha256 ?? '' };
}

export const NVRAM_FILE = 'nvram.json';
const NVRAM_FORMAT = 'snmp-upgrade-nvram';
const NVRAM_FORMAT_VERSION = 1;

const SHA256_HEX = /^[0-9a-f]{64}$/;
// An Ed25519 public key is 32 bytes and a key id 8 bytes, as the verifier defines them.
const KEY_HEX = /^[0-9a-f]{64}$/;
const KEY_ID_HEX = /^[0-9a-f]{16}$/;

/** Serializes the state; the security counter is a decimal string because JSON numbers lose precision past 2^53. */
export function serializeNvram(state: FlashState): string {
  const document = {
    format: NVRAM_FORMAT,
    formatVersion: NVRAM_FORMAT_VERSION,
    platform: state.platform,
    capacityBytes: state.capacityBytes,
    runningImage: state.runningImage,
    bootImage: state.bootImage,
    images: state.images.map((image) => ({ ...image })),
    settings: { ...state.settings, securityCounter: state.settings.securityCounter.toString() },
  };
  return `${JSON.stringify(document, null, 2)}\n`;
}

/**
 * Parses and checks nvram.json. Every field is checked because image names from here become file paths and
 * keys from here decide which patches are trusted. Throws InvalidArgumentError naming the file and the field.
 */
export function parseNvram(text: string, path: string): FlashState {
  const fail = (detail: string): never => {
    throw new InvalidArgumentError(`invalid flash NVRAM ${path}: ${detail}`);
  };

  let document: Record<string, unknown>;
  try {
    document = JSON.parse(text) as Record<string, unknown>;
  } catch (error) {
    return fail(`expected JSON, ${(error as Error).message}`);
  }
  if (typeof document !== 'object' || document === null) fail('expected a JSON object');
  if (document.format !== NVRAM_FORMAT || document.formatVersion !== NVRAM_FORMAT_VERSION) {
    fail(`expected format ${NVRAM_FORMAT} version ${NVRAM_FORMAT_VERSION}, got ${JSON.stringify(document.format)} version ${JSON.stringify(document.formatVersion)}`);
  }

  try {
    const platform = requireString(document.platform, 'platform');
    validateIdentifier('platform', platform);
    const capacityBytes = requireCount(document.capacityBytes, 'capacityBytes');
    const runningImage = requireString(document.runningImage, 'runningImage');
    validateIdentifier('image name', runningImage);
    const bootImage = requireString(document.bootImage, 'bootImage');
    validateIdentifier('image name', bootImage);

    if (!Array.isArray(document.images)) fail('images: expected an array');
    const images = (document.images as unknown[]).map((entry, index) => parseImageRecord(entry, `images[${index}]`));
    const names = new Set(images.map((image) => image.name));
    if (names.size !== images.length) fail('images: an image name is listed twice');

    const settings = parseSettings(document.settings);
    return { platform, capacityBytes, runningImage, bootImage, images, settings };
  } catch (error) {
    if (error instanceof InvalidArgumentError && !error.message.startsWith('invalid flash NVRAM')) fail(error.message);
    throw error;
  }
}

function parseImageRecord(entry: unknown, field: string): ImageRecord {
  const value = requireObject(entry, field);
  const record: ImageRecord = {
    name: requireString(value.name, `${field}.name`),
    platform: requireString(value.platform, `${field}.platform`),
    version: requireString(value.version, `${field}.version`),
    size: requireCount(value.size, `${field}.size`),
    sha256: requireString(value.sha256, `${field}.sha256`),
  };
  validateImageRecord(record);
  return record;
}

/** Checks an image record's names, size and digest; throws InvalidArgumentError. */
export function validateImageRecord(record: ImageRecord): void {
  validateIdentifier('image name', record.name);
  validateIdentifier('platform', record.platform);
  validateIdentifier('version', record.version);
  if (!Number.isSafeInteger(record.size) || record.size < 0) {
    throw new InvalidArgumentError(`invalid size of image ${record.name}: expected a whole number of bytes, got ${record.size}`);
  }
  if (!SHA256_HEX.test(record.sha256)) {
    throw new InvalidArgumentError(`invalid SHA-256 of image ${record.name}: expected 64 lowercase hex digits, got ${JSON.stringify(record.sha256.slice(0, 80))}`);
  }
}

function parseSettings(entry: unknown): FlashSettings {
  const value = requireObject(entry, 'settings');
  const counterText = requireString(value.securityCounter, 'settings.securityCounter');
  if (!/^[0-9]+$/.test(counterText)) {
    throw new InvalidArgumentError(`settings.securityCounter: expected a decimal string, got ${JSON.stringify(counterText.slice(0, 40))}`);
  }
  const settings: FlashSettings = {
    urlPrefix: requireString(value.urlPrefix, 'settings.urlPrefix'),
    flashImage: requireString(value.flashImage, 'settings.flashImage'),
    trustedKeys: requireStringArray(value.trustedKeys, 'settings.trustedKeys'),
    revokedKeyIds: requireStringArray(value.revokedKeyIds, 'settings.revokedKeyIds'),
    threshold: requireCount(value.threshold, 'settings.threshold'),
    securityCounter: BigInt(counterText),
  };
  validateSettings(settings);
  return settings;
}

/**
 * Checks a complete set of settings; throws InvalidArgumentError. The URL prefix is only checked for control
 * characters here, because its scheme rules belong to the upgrade engine that fetches from it.
 */
export function validateSettings(settings: FlashSettings): void {
  // Control characters would let a URL prefix forge extra lines in logs and `flash show` output.
  if (/[\u0000-\u001f\u007f]/.test(settings.urlPrefix)) {
    throw new InvalidArgumentError(`invalid URL prefix ${JSON.stringify(settings.urlPrefix.slice(0, 80))}: control characters are not allowed`);
  }
  if (settings.flashImage !== '') validateIdentifier('image name', settings.flashImage);

  if (settings.trustedKeys.length === 0) {
    throw new InvalidArgumentError('invalid trusted keys: expected at least one key, got none, so no patch could ever be accepted');
  }
  for (const key of settings.trustedKeys) {
    if (!KEY_HEX.test(key)) {
      throw new InvalidArgumentError(`invalid trusted key ${JSON.stringify(key.slice(0, 80))}: expected 64 lowercase hex digits`);
    }
  }
  // A key listed twice would count twice toward the threshold, so one signer could meet a threshold of two.
  if (new Set(settings.trustedKeys).size !== settings.trustedKeys.length) {
    throw new InvalidArgumentError('invalid trusted keys: a key is listed twice');
  }
  for (const keyId of settings.revokedKeyIds) {
    if (!KEY_ID_HEX.test(keyId)) {
      throw new InvalidArgumentError(`invalid revoked key id ${JSON.stringify(keyId.slice(0, 80))}: expected 16 lowercase hex digits`);
    }
  }

  if (!Number.isInteger(settings.threshold) || settings.threshold < 1 || settings.threshold > settings.trustedKeys.length) {
    throw new InvalidArgumentError(`invalid threshold ${settings.threshold}: expected a whole number from 1 to the ${settings.trustedKeys.length} trusted keys`);
  }
  if (settings.securityCounter < 0n) {
    throw new InvalidArgumentError(`invalid security counter ${settings.securityCounter}: expected zero or more`);
  }
}

function requireObject(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError(`${field}: expected an object, got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

function requireString(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new InvalidArgumentError(`${field}: expected a string, got ${describe(value)}`);
  return value;
}

function requireStringArray(value: unknown, field: string): string[] {
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw new InvalidArgumentError(`${field}: expected an array of strings, got ${describe(value)}`);
  }
  return [...(value as string[])];
}

function requireCount(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(`${field}: expected a whole number of zero or more, got ${describe(value)}`);
  }
  return value;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  return JSON.stringify(value)?.slice(0, 80) ?? typeof value;
}
