import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { digestFile } from '../verifier/index.js';
import { syncDirectory, TEMP_SUFFIX } from './io.js';
import type { FlashLayout } from './layout.js';
import { NVRAM_FILE, type FlashState, type ImageRecord } from './nvram.js';
import { findLeftoverLockFiles } from './lock.js';

/** Record of the changes recovery made when a flash was opened. */
export interface RecoveryReport {
  /** False when a live process held the flash lock, so recovery left everything to that process. */
  ran: boolean;
  /** One line per change, in the operator's terms. */
  actions: string[];
  /** Set when the boot variable named an image that failed its digest check and was pointed elsewhere. */
  bootFallback: { from: string; to: string; reason: string } | undefined;
}

/**
 * Brings a flash back to a consistent state after a power loss or crash at any step of an install, and returns
 * the new state with what was done. The caller holds the flash lock and persists the state when it changed.
 */
export async function recoverFlash(layout: FlashLayout, original: FlashState): Promise<{ state: FlashState; report: RecoveryReport }> {
  const state = structuredClone(original);
  const actions: string[] = [];

  // An interrupted download or image write leaves a file in staging/; nothing refers to it.
  for (const entry of await readdir(layout.stagingDir)) {
    const path = join(layout.stagingDir, entry);
    const { size } = await stat(path);
    await rm(path, { recursive: true, force: true });
    actions.push(`removed staging/${entry} (${size} bytes) left by an interrupted install`);
  }

  // A power loss between writing a temporary NVRAM copy and renaming it leaves the copy. The rename never
  // happened, so the old nvram.json is the current one.
  const lockLeftovers = await findLeftoverLockFiles(layout.dir);
  for (const entry of await readdir(layout.dir)) {
    const isNvramTemp = entry.startsWith(`${NVRAM_FILE}.`) && entry.endsWith(TEMP_SUFFIX);
    if (isNvramTemp || lockLeftovers.includes(entry)) {
      await rm(join(layout.dir, entry), { force: true });
      actions.push(`removed ${entry} left by an interrupted write`);
    }
  }

  await dropMissingImages(layout, state, actions);
  await removeUnrecordedFiles(layout, state, actions);

  const bootFallback = await ensureBootable(layout, state, actions);
  await syncDirectory(layout.stagingDir);
  await syncDirectory(layout.imagesDir);
  return { state, report: { ran: true, actions, bootFallback } };
}

/** Drops the records of images whose file is gone or has the wrong size; the running image's record stays. */
async function dropMissingImages(layout: FlashLayout, state: FlashState, actions: string[]): Promise<void> {
  const kept: ImageRecord[] = [];
  for (const record of state.images) {
    const size = await stat(layout.imagePath(record.name)).then((info) => info.size, () => undefined);
    if (size === record.size) {
      kept.push(record);
      continue;
    }

    const problem = size === undefined ? 'its file is missing' : `its file is ${size} bytes, the record says ${record.size}`;
    if (record.name === state.runningImage) {
      // The running image's record still describes what booted. An upgrade from the damaged file fails its
      // source check, which is the right outcome.
      kept.push(record);
      actions.push(`running image ${record.name}: ${problem}; record kept, the image cannot be upgraded from`);
      continue;
    }
    if (size !== undefined) await rm(layout.imagePath(record.name), { force: true });
    actions.push(`dropped image ${record.name} (version ${record.version}): ${problem}`);
  }
  state.images = kept;
}

/**
 * Removes image files without a record. An install renames the staged image into images/ and then records it,
 * so a power loss between the two leaves such a file. Its version is unknown, so it cannot be adopted.
 */
async function removeUnrecordedFiles(layout: FlashLayout, state: FlashState, actions: string[]): Promise<void> {
  const recorded = new Set(state.images.map((image) => image.name));
  for (const entry of await readdir(layout.imagesDir)) {
    if (recorded.has(entry)) continue;
    await rm(join(layout.imagesDir, entry), { recursive: true, force: true });
    actions.push(`removed images/${entry}, which has no record (an install interrupted before it was recorded)`);
  }
}

/**
 * Makes the boot variable name an image whose bytes hash to its record. When the boot image fails, the running
 * image is tried next and then the other images from the newest. The first that verifies is set to boot.
 */
export async function ensureBootable(layout: FlashLayout, state: FlashState, actions: string[]): Promise<RecoveryReport['bootFallback']> {
  const bootProblem = await checkImage(layout, state, state.bootImage);
  if (bootProblem === undefined) return undefined;

  const others = state.images.map((image) => image.name).filter((name) => name !== state.bootImage && name !== state.runningImage).reverse();
  for (const candidate of [state.runningImage, ...others]) {
    if (candidate === state.bootImage) continue;
    if ((await checkImage(layout, state, candidate)) !== undefined) continue;

    const fallback = { from: state.bootImage, to: candidate, reason: bootProblem };
    actions.push(`boot image ${state.bootImage} ${bootProblem}; boot variable set to ${candidate}`);
    state.bootImage = candidate;
    return fallback;
  }

  // NOTE: reached only when every image on the flash fails its digest check, which a power loss during an
  // install cannot cause. The boot variable is left as it was, and the operator must reinstall an image.
  actions.push(`boot image ${state.bootImage} ${bootProblem}, and no other image on the flash verifies; boot variable left unchanged`);
  return undefined;
}

/** Returns why an image cannot boot (no record, missing file, digest mismatch), or undefined when it verifies. */
export async function checkImage(layout: FlashLayout, state: FlashState, name: string): Promise<string | undefined> {
  const record = state.images.find((image) => image.name === name);
  if (!record) return 'has no record';

  const actual = await digestFile(layout.imagePath(name)).catch(() => undefined);
  if (!actual) return 'has no file';
  if (actual.size !== record.size || actual.sha256 !== record.sha256) {
    return `has sha256 ${actual.sha256} (${actual.size} bytes) but its record says ${record.sha256} (${record.size} bytes)`;
  }
  return undefined;
}
