/**
 * The upgrade engine: one operation on one flash, from building the patch name to setting the new image to boot.
 * Every check that can run before the first write of the new image runs before it, in the order of
 * docs/patch-format.md. Any failure removes staging and leaves images, the boot variable and settings as they were.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';

import { openSourceFile } from '../delta/index.js';
import {
  AbortedError,
  DowngradeRefusedError,
  FlashWriteError,
  InsufficientFlashError,
  asUpgradeError,
  formatBytes,
  type FailCause,
} from '../errors/index.js';
import type { FlashStore, ImageRecord } from '../flash/index.js';
import { defaultFetcher, joinPatchUrl, type Fetcher, type FetchOptions } from '../transport/index.js';
import {
  checkPlatform,
  checkSource,
  checkTarget,
  codecOf,
  decodeBody,
  parsePublicKeyHex,
  patchFileName,
  readPatchHead,
  sha256File,
  verifyBodyDigest,
  verifySignatures,
  type PatchHeader,
} from '../verifier/index.js';
import type { UpgradeAction, UpgradeOutcome, UpgradePhase, UpgradeStatus } from './contract.js';

export interface UpgradeRequest {
  action: UpgradeAction;
  /** Image on flash to upgrade from; its bytes, not its name, decide which patch applies. */
  image: string;
  urlPrefix: string;
  signal?: AbortSignal;
  /** Delete spare images (neither running nor set to boot) when that is what it takes to make room. */
  makeRoom?: boolean;
}

export interface EngineOptions {
  fetcher?: Fetcher;
  /** Largest patch file accepted, in bytes; default: the flash capacity. */
  maxPatchBytes?: number;
  /** Deadline for fetching the patch, in ms; default 10 minutes. */
  fetchTimeoutMs?: number;
  tftp?: FetchOptions['tftp'];
  http?: FetchOptions['http'];
  clock?: () => Date;
  /** Called at every phase change and as bytes progress, at most about every 100 ms within a phase. */
  onStatus?: (status: UpgradeStatus) => void;
}

const DEFAULT_FETCH_TIMEOUT_MS = 10 * 60 * 1000;
const STATUS_INTERVAL_MS = 100;

/** Returns the name an installed image gets: built from platform and target version, never from the server's file name. */
export function installedImageName(platform: string, version: string): string {
  return `${platform}_${version}.bin`;
}

export function idleStatus(): UpgradeStatus {
  return {
    phase: 'idle',
    action: undefined,
    bytesDone: 0,
    bytesTotal: 0,
    percent: 0,
    patchName: '',
    sourceVersion: '',
    targetVersion: '',
    startTime: undefined,
    endTime: undefined,
    failCause: undefined,
    failReason: '',
  };
}

/** Tracks the status of one operation and reports it, rate-limiting byte progress. */
class StatusReporter {
  readonly status: UpgradeStatus;
  private lastReport = 0;

  constructor(
    action: UpgradeAction,
    private readonly clock: () => Date,
    private readonly onStatus: ((status: UpgradeStatus) => void) | undefined,
  ) {
    this.status = { ...idleStatus(), action, startTime: clock() };
  }

  enter(phase: UpgradePhase, bytesTotal = 0): void {
    Object.assign(this.status, { phase, bytesDone: 0, bytesTotal, percent: 0 });
    this.report(true);
  }

  progress(bytesDone: number, bytesTotal: number | undefined): void {
    this.status.bytesDone = bytesDone;
    if (bytesTotal !== undefined) this.status.bytesTotal = bytesTotal;
    const total = this.status.bytesTotal;
    this.status.percent = total > 0 ? Math.min(100, Math.floor((bytesDone * 100) / total)) : 0;
    this.report(false);
  }

  describe(fields: Partial<UpgradeStatus>): void {
    Object.assign(this.status, fields);
  }

  finish(phase: UpgradePhase, failCause?: FailCause, failReason = ''): void {
    Object.assign(this.status, { phase, endTime: this.clock(), failCause, failReason });
    if (phase !== 'failed') Object.assign(this.status, { percent: 100, bytesDone: this.status.bytesTotal });
    this.report(true);
  }

  private report(force: boolean): void {
    const now = Date.now();
    if (!force && now - this.lastReport < STATUS_INTERVAL_MS) return;
    this.lastReport = now;
    this.onStatus?.({ ...this.status });
  }
}

/**
 * Runs one upgrade or check on an open flash store; the caller holds the flash lock. Every failure, including
 * an unexpected one (reported as internalError), ends in the returned outcome with its cause instead of a throw.
 */
export async function runUpgrade(store: FlashStore, request: UpgradeRequest, options: EngineOptions = {}): Promise<UpgradeOutcome> {
  const clock = options.clock ?? (() => new Date());
  const reporter = new StatusReporter(request.action, clock, options.onStatus);
  let result: UpgradeOutcome['result'];

  try {
    result = await upgradeSteps(store, request, options, reporter);
    reporter.finish(result === 'checked' ? 'idle' : 'installedPendingReload');
  } catch (caught) {
    const error = asUpgradeError(caught);
    await store.cleanStaging().catch(() => undefined);
    reporter.finish('failed', error.code, error.message);
    result = error.code === 'aborted' ? 'aborted' : 'failed';
  }

  const { status } = reporter;
  return {
    action: request.action,
    result,
    patchName: status.patchName,
    sourceVersion: status.sourceVersion,
    targetVersion: status.targetVersion,
    startTime: status.startTime!,
    endTime: status.endTime!,
    failCause: status.failCause,
    failReason: status.failReason,
    bootImage: result === 'installed' || result === 'alreadyAtTarget' ? store.state().bootImage : undefined,
  };
}

async function upgradeSteps(
  store: FlashStore,
  request: UpgradeRequest,
  options: EngineOptions,
  reporter: StatusReporter,
): Promise<'installed' | 'alreadyAtTarget' | 'checked'> {
  const throwIfAborted = () => {
    if (request.signal?.aborted) throw new AbortedError('upgrade aborted by request; staging removed, flash unchanged');
  };
  await store.cleanStaging();

  // Step 1: the image and what it really is. Its platform comes from the flash, its identity from its bytes.
  const state = store.state();
  const image = store.image(request.image);
  const imagePath = store.imagePath(image.name);
  const source = { size: (await stat(imagePath)).size, sha256: await sha256File(imagePath), label: `flash:${image.name}` };
  const patchName = patchFileName(state.platform, image.version);
  reporter.describe({ patchName, sourceVersion: image.version });

  // Step 2: fetch into staging. The announced size is checked against free flash before the body arrives.
  const url = joinPatchUrl(request.urlPrefix, patchName);
  const patchPath = store.stagingPath('patch');
  reporter.enter('fetching');
  throwIfAborted();
  await (options.fetcher ?? defaultFetcher).fetchToFile(url, patchPath, {
    maxBytes: options.maxPatchBytes ?? state.capacityBytes,
    timeoutMs: options.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS,
    signal: request.signal,
    tftp: options.tftp,
    http: options.http,
    onSize: async (total) => {
      if (total === undefined) return;
      const free = await store.freeBytes();
      if (total > free) {
        throw new InsufficientFlashError(`insufficient flash for the patch download: need ${formatBytes(total)}, ${formatBytes(free)} free`);
      }
    },
    onProgress: (done, total) => reporter.progress(done, total),
  });
  throwIfAborted();

  // Step 3: everything the header and signatures decide, before any image byte is written.
  reporter.enter('verifying');
  const patch = await readPatchHead(patchPath);
  const { header } = patch;
  const settings = store.state().settings;
  verifySignatures(patch, {
    keys: settings.trustedKeys.map((hex) => parsePublicKeyHex(hex, 'trusted key on flash')),
    revokedKeyIds: settings.revokedKeyIds,
    threshold: settings.threshold,
  });
  checkPlatform(header, state.platform);
  checkSource(header, source);
  reporter.describe({ targetVersion: header.targetVersion });
  // Rollback protection: an old, validly signed patch must not take the device back to a vulnerable image.
  if (header.securityCounter < settings.securityCounter) {
    throw new DowngradeRefusedError(
      `downgrade refused: patch to ${header.targetVersion} has security counter ${header.securityCounter}, ` +
        `flash has accepted ${settings.securityCounter}`,
    );
  }
  codecOf(header);
  await verifyBodyDigest(patchPath, patch);
  throwIfAborted();

  const targetName = installedImageName(state.platform, header.targetVersion);
  if (await alreadyAtTarget(store, header)) {
    // A power loss between the boot switch and storing the counter leaves the target set to boot with the old
    // counter. Storing it here completes that install, so the rollback floor follows the boot image.
    if (request.action === 'upgrade' && header.securityCounter > settings.securityCounter) {
      await store.updateSettings({ securityCounter: header.securityCounter });
    }
    await store.cleanStaging();
    reporter.describe({ failReason: `already at target: ${store.state().bootImage} (${header.targetVersion}) is set to boot` });
    return 'alreadyAtTarget';
  }

  // Step 4: room for the new image beside the running one; the patch is already counted as used.
  reporter.enter('checkingSpace', header.targetSize);
  await ensureRoom(store, header.targetSize, targetName, request.makeRoom === true && request.action === 'upgrade');
  if (request.action === 'check') {
    await store.cleanStaging();
    return 'checked';
  }
  throwIfAborted();

  // Step 5: decode into staging, hashing as it is written.
  reporter.enter('applying', header.targetSize);
  const written = await applyPatch(store, patchPath, patch, imagePath, reporter, request.signal);
  checkTarget(header, written);

  // Step 6: install (the store re-checks the digest after fsync), switch the boot variable, then store the counter.
  reporter.enter('installing', header.targetSize);
  const record: ImageRecord = { name: targetName, platform: state.platform, version: header.targetVersion, size: written.size, sha256: written.sha256 };
  if (!store.state().images.some((existing) => existing.name === targetName && existing.sha256 === written.sha256)) {
    await store.installImage(written.path, record);
  }
  await store.setBootImage(targetName);
  if (header.securityCounter > settings.securityCounter) {
    await store.updateSettings({ securityCounter: header.securityCounter });
  }
  await store.cleanStaging();
  return 'installed';
}

/** True when the image the patch produces is already the one set to boot, with its bytes as recorded. */
async function alreadyAtTarget(store: FlashStore, header: PatchHeader): Promise<boolean> {
  const { bootImage, images } = store.state();
  const boot = images.find((record) => record.name === bootImage);
  if (!boot || boot.sha256 !== header.targetSha256 || boot.size !== header.targetSize) return false;
  return (await sha256File(store.imagePath(boot.name))) === header.targetSha256;
}

async function ensureRoom(store: FlashStore, needed: number, targetName: string, makeRoom: boolean): Promise<void> {
  const { runningImage, bootImage } = store.state();
  // The running image is never overwritten; the boot image stays as the fallback until the new one is verified.
  if (targetName === runningImage || targetName === bootImage) {
    throw new FlashWriteError(`target image name ${targetName} is the running or boot image, which an upgrade never overwrites`);
  }
  const existing = store.state().images.find((record) => record.name === targetName);
  const reclaimable = existing ? existing.size : 0;
  let free = (await store.freeBytes()) + reclaimable;
  if (free >= needed) return;

  const spares = store.state().images.filter((record) => record.name !== runningImage && record.name !== bootImage && record.name !== targetName);
  const spareBytes = spares.reduce((sum, record) => sum + record.size, 0);
  if (!makeRoom || free + spareBytes < needed) {
    const hint = spares.length > 0 && !makeRoom ? `; deleting spare images (${spares.map((record) => record.name).join(', ')}) would free ${formatBytes(spareBytes)}, which is only done when asked for` : '';
    throw new InsufficientFlashError(`insufficient flash: need ${formatBytes(needed)} for the target image, ${formatBytes(free)} free${hint}`);
  }
  for (const spare of spares) {
    if (free >= needed) break;
    await store.removeImage(spare.name);
    free = (await store.freeBytes()) + reclaimable;
  }
}

/** Decodes the patch body into the image staging file, returning the size and SHA-256 of what was written. */
async function applyPatch(
  store: FlashStore,
  patchPath: string,
  patch: Awaited<ReturnType<typeof readPatchHead>>,
  imagePath: string,
  reporter: StatusReporter,
  signal: AbortSignal | undefined,
): Promise<{ size: number; sha256: string; path: string }> {
  const source = await openSourceFile(imagePath);
  const writer = await store.createStagingWriter('image');
  const hash = createHash('sha256');
  try {
    for await (const chunk of decodeBody(patchPath, patch, source)) {
      if (signal?.aborted) throw new AbortedError('upgrade aborted by request while applying; staging removed, flash unchanged');
      hash.update(chunk);
      await writer.write(chunk);
      reporter.progress(writer.bytesWritten, patch.header.targetSize);
    }
    await writer.finish();
  } catch (error) {
    await writer.abort();
    throw error;
  } finally {
    await source.close();
  }
  return { size: writer.bytesWritten, sha256: hash.digest('hex'), path: writer.path };
}
