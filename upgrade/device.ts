import { EventEmitter } from 'node:events';

import { BusyError, InvalidArgumentError, asUpgradeError } from '../errors/index.js';
import { describeImages, FlashStore } from '../flash/index.js';
import { validateUrlPrefix } from '../transport/index.js';
import { patchFileName, validateIdentifier } from '../verifier/index.js';
import type { Device, DeviceEvents, DeviceInventory, DeviceSettings, UpgradeAction, UpgradeOutcome, UpgradeStatus } from './contract.js';
import { idleStatus, runUpgrade, type EngineOptions } from './engine.js';

/** Longest URL prefix stored; the MIB's upgradeUrlPrefix has the same bound. */
export const MAX_URL_PREFIX_LENGTH = 255;

/**
 * A device backed by a flash store: the object the SNMP agent serves. One operation runs at a time; it runs in
 * the background and reports through `status`, `started` and `finished` events.
 */
export class FlashDevice extends EventEmitter implements Device {
  private current: UpgradeStatus = idleStatus();
  private running: { controller: AbortController; done: Promise<UpgradeOutcome> } | undefined;

  private constructor(
    readonly store: FlashStore,
    private readonly engineOptions: Omit<EngineOptions, 'onStatus'>,
  ) {
    super();
  }

  static async open(flashDir: string, engineOptions: Omit<EngineOptions, 'onStatus'> = {}): Promise<FlashDevice> {
    return new FlashDevice(await FlashStore.open(flashDir), engineOptions);
  }

  async inventory(): Promise<DeviceInventory> {
    await this.refresh();
    const state = this.store.state();
    return {
      platform: state.platform,
      runningImage: state.runningImage,
      bootImage: state.bootImage,
      ...describeImages(state),
      securityCounter: state.settings.securityCounter,
      flashSizeBytes: state.capacityBytes,
      flashFreeBytes: await this.store.freeBytes(),
    };
  }

  async settings(): Promise<DeviceSettings> {
    await this.refresh();
    const { settings } = this.store.state();
    return { urlPrefix: settings.urlPrefix, flashImage: settings.flashImage };
  }

  validateUrlPrefix(urlPrefix: string): void {
    if (urlPrefix.length === 0 || urlPrefix.length > MAX_URL_PREFIX_LENGTH) {
      throw new InvalidArgumentError(`invalid URL prefix: expected 1 to ${MAX_URL_PREFIX_LENGTH} characters, got ${urlPrefix.length}`);
    }
    validateUrlPrefix(urlPrefix);
  }

  async updateSettings(update: Partial<DeviceSettings>): Promise<void> {
    if (update.urlPrefix) this.validateUrlPrefix(update.urlPrefix);
    // An empty image name means "the running image", the MIB's default for upgradeFlashImage.
    if (update.flashImage) validateIdentifier('image name', update.flashImage);
    await this.store.updateSettings(update);
  }

  status(): UpgradeStatus {
    return { ...this.current };
  }

  start(action: UpgradeAction): void {
    if (this.running) {
      throw new BusyError(`an upgrade is already running on this flash (phase ${this.current.phase}); abort it or wait for it to finish`);
    }
    const controller = new AbortController();
    const done = this.run(action, controller.signal);
    this.running = { controller, done };
    void done.finally(() => {
      this.running = undefined;
    });
  }

  abort(): boolean {
    if (!this.running) return false;
    this.running.controller.abort();
    return true;
  }

  /** Resolves when the running operation, if any, has finished; for tests and orderly shutdown. */
  async settled(): Promise<UpgradeOutcome | undefined> {
    return this.running?.done;
  }

  async reload(): Promise<void> {
    if (this.running) throw new BusyError('cannot reload while an upgrade is running; abort it first');
    await this.store.reload();
    this.current = idleStatus();
  }

  private async run(action: UpgradeAction, signal: AbortSignal): Promise<UpgradeOutcome> {
    // Set before the first await, so that status() right after start() already shows the operation.
    this.current = { ...idleStatus(), action, phase: 'fetching', startTime: new Date() };
    await this.refresh();
    const { settings, runningImage, platform } = this.store.state();
    const image = settings.flashImage || runningImage;
    this.current = { ...this.current, ...this.describeSource(image, platform) };
    this.emit('started', this.status());

    let outcome: UpgradeOutcome;
    try {
      const lock = await this.store.lock();
      try {
        outcome = await runUpgrade(
          this.store,
          { action, image, urlPrefix: settings.urlPrefix, signal },
          { ...this.engineOptions, onStatus: (status) => this.publish(status) },
        );
      } finally {
        await lock.release();
      }
    } catch (caught) {
      // Only taking the lock can fail here (another process upgrades this flash); runUpgrade reports its own failures.
      const error = asUpgradeError(caught);
      const now = new Date();
      this.publish({ ...this.current, phase: 'failed', endTime: now, failCause: error.code, failReason: error.message });
      outcome = {
        action,
        result: 'failed',
        patchName: '',
        sourceVersion: '',
        targetVersion: '',
        startTime: this.current.startTime ?? now,
        endTime: now,
        failCause: error.code,
        failReason: error.message,
        bootImage: undefined,
      };
    }
    this.emit('finished', outcome);
    return outcome;
  }

  /**
   * Re-reads the NVRAM while no operation of this device runs, because the `upgrade` and `flash` commands may
   * change the flash under a long-running agent. A failed read keeps the last state; the next operation reports it.
   */
  private async refresh(): Promise<void> {
    if (this.running) return;
    await this.store.refresh().catch(() => undefined);
  }

  /** Names the patch and source version for the started notification; empty when the image is not on flash. */
  private describeSource(image: string, platform: string): Pick<UpgradeStatus, 'patchName' | 'sourceVersion'> {
    try {
      const { version } = this.store.image(image);
      return { patchName: patchFileName(platform, version), sourceVersion: version };
    } catch {
      // The engine reports the missing or invalid image as the operation's failure.
      return { patchName: '', sourceVersion: '' };
    }
  }

  private publish(status: UpgradeStatus): void {
    this.current = status;
    this.emit('status', this.status());
  }
}

// The typed event signatures of Device, applied to the EventEmitter methods.
export interface FlashDevice {
  on<E extends keyof DeviceEvents>(event: E, listener: (...args: DeviceEvents[E]) => void): this;
  off<E extends keyof DeviceEvents>(event: E, listener: (...args: DeviceEvents[E]) => void): this;
}
