import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { codecByName } from '../../delta/index.js';
import { FlashStore, type FlashOpenOptions } from '../../flash/index.js';
import { createPatch, generateKeyPair, type SecretKey } from '../../verifier/index.js';

export const PLATFORM = 'rtr-9000';

/** A deterministic image of `size` bytes; `generation` changes a spread of bytes, as a new release would. */
export function makeImage(size: number, generation: number): Buffer {
  const image = Buffer.alloc(size);
  for (let index = 0; index < size; index++) image[index] = (index * 131 + (index >> 9)) & 0xff;
  for (let index = generation; index < size; index += 211) image[index] = (image[index]! + generation * 7) & 0xff;
  return image;
}

export interface Bench {
  root: string;
  key: SecretKey;
  flashDir: string;
  patchDir: string;
  urlPrefix: string;
  images: Buffer[];
}

/** A flash holding version 1.0 of a small image, trusting one vendor key, and an empty patch folder. */
export async function makeBench(root: string, options: { size?: number; capacity?: number; openOptions?: FlashOpenOptions } = {}): Promise<Bench> {
  const size = options.size ?? 64 * 1024;
  const key = generateKeyPair();
  const images = [makeImage(size, 0), makeImage(size + 1000, 1), makeImage(size + 2000, 2)];
  const sourcePath = join(root, 'source.bin');
  await writeFile(sourcePath, images[0]!);
  const flashDir = join(root, 'flash');
  await FlashStore.init(flashDir, {
    capacityBytes: options.capacity ?? 4 * 1024 * 1024,
    platform: PLATFORM,
    imageName: 'core.bin',
    version: '1.0',
    fromFile: sourcePath,
    trustedKeys: [Buffer.from(key.publicKey).toString('hex')],
  });
  const patchDir = join(root, 'patches');
  await mkdir(patchDir, { recursive: true });
  return { root, key, flashDir, patchDir, urlPrefix: `${pathToFileURL(patchDir).href}/`, images };
}

export interface PatchSpec {
  from: number;
  to: number;
  counter: bigint;
  platform?: string;
  sourceVersion?: string;
  targetVersion?: string;
  key?: SecretKey;
  /** Save the file under this name instead of the one the naming rule gives. */
  saveAs?: string;
  codec?: string;
}

/** Creates a signed patch between two of the bench's images and saves it in the patch folder. */
export async function publishPatch(bench: Bench, spec: PatchSpec): Promise<{ path: string; bytes: Buffer }> {
  const codec = codecByName(spec.codec ?? 'delta') ?? codecByName('full')!;
  const patch = await createPatch({
    source: bench.images[spec.from]!,
    target: bench.images[spec.to]!,
    platform: spec.platform ?? PLATFORM,
    sourceVersion: spec.sourceVersion ?? `1.${spec.from}`,
    targetVersion: spec.targetVersion ?? `1.${spec.to}`,
    securityCounter: spec.counter,
    codec,
    keys: [spec.key ?? bench.key],
  });
  const path = join(bench.patchDir, spec.saveAs ?? patch.fileName);
  await writeFile(path, patch.bytes);
  return { path, bytes: patch.bytes };
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Every file under the flash folder with its size and digest, to show that a failure changed nothing. */
export async function snapshotFlash(dir: string): Promise<Record<string, string>> {
  const snapshot: Record<string, string> = {};
  async function walk(folder: string, prefix: string): Promise<void> {
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) await walk(path, `${prefix}${entry.name}/`);
      else snapshot[`${prefix}${entry.name}`] = `${(await stat(path)).size}:${sha256(await readFile(path))}`;
    }
  }
  await walk(dir, '');
  return snapshot;
}
