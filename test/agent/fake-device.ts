import { EventEmitter } from 'node:events';

import { BadUrlError, BusyError, InvalidArgumentError, type FailCause } from '../../errors/index.js';
import type {
  Device,
  DeviceEvents,
  DeviceInventory,
  DeviceSettings,
  UpgradeAction,
  UpgradeOutcome,
  UpgradeStatus,
} from '../../upgrade/index.js';
import { idleStatus } from '../../upgrade/index.js';

/**
 * A Device that walks through the upgrade phases on timers instead of touching flash. Tests tell it to fail
 * with a cause, to stay busy until released, or how long each phase lasts.
 */
export class FakeDevice extends EventEmitter implements Device {
  readonly inventoryValue: DeviceInventory = {
    platform: 'test-router',
    runningImage: 'iwlwifi-cc-a0-67.ucode',
    runningVersion: '67',
    bootImage: 'iwlwifi-cc-a0-67.ucode',
    bootVersion: '67',
    bootSha256: '0'.repeat(64),
    securityCounter: 5n,
    // 6 GiB, beyond 32 bits in bytes.
    flashSizeBytes: 6 * 1024 ** 3,
    flashFreeBytes: 5 * 1024 ** 3 + 123,
  };
  settingsValue: DeviceSettings = { urlPrefix: '', flashImage: '' };
  statusValue: UpgradeStatus = idleStatus();
  startCount = 0;
  phaseMs = 20;
  failWith: { cause: FailCause; reason: string } | undefined;
  /** When set, the operation waits in `fetching` until release() is called. */
  holdFetching = false;
  /**
   * When set, the next start() fails as busy although status() still reads idle, as when the `upgrade` command
   * takes the flash between the agent's busy check and its start.
   */
  busyOnNextStart = false;
  private release_: (() => void) | undefined;
  private aborted = false;

  async inventory(): Promise<DeviceInventory> {
    return { ...this.inventoryValue };
  }

  async settings(): Promise<DeviceSettings> {
    return { ...this.settingsValue };
  }

  async updateSettings(update: Partial<DeviceSettings>): Promise<void> {
    if (update.urlPrefix) this.validateUrlPrefix(update.urlPrefix);
    if (update.flashImage !== undefined && update.flashImage.includes('/')) {
      throw new InvalidArgumentError(`invalid flash image name: expected a file name, got ${JSON.stringify(update.flashImage)}`);
    }
    this.settingsValue = { ...this.settingsValue, ...update };
  }

  validateUrlPrefix(urlPrefix: string): void {
    const scheme = /^([a-z]+):\/\//.exec(urlPrefix)?.[1];
    if (!scheme || !['tftp', 'http', 'https', 'file'].includes(scheme)) {
      throw new BadUrlError(`invalid URL prefix: expected tftp, http, https or file, got ${JSON.stringify(urlPrefix)}`);
    }
  }

  status(): UpgradeStatus {
    return { ...this.statusValue };
  }

  start(action: UpgradeAction): void {
    if (this.busyOnNextStart) {
      this.busyOnNextStart = false;
      throw new BusyError('device busy: the flash is locked by another process');
    }
    if (!['idle', 'failed', 'installedPendingReload'].includes(this.statusValue.phase)) {
      throw new BusyError(`device busy: expected no running operation, got phase ${this.statusValue.phase}`);
    }
    this.startCount++;
    this.aborted = false;
    const patchName = `${this.inventoryValue.platform}-${this.inventoryValue.runningVersion}.patch`;
    this.statusValue = {
      ...idleStatus(),
      phase: 'fetching',
      action,
      patchName,
      sourceVersion: this.inventoryValue.runningVersion,
      startTime: new Date(),
    };
    this.emit('started', this.status());
    void this.run(action);
  }

  abort(): boolean {
    if (['idle', 'failed', 'installedPendingReload'].includes(this.statusValue.phase)) return false;
    this.aborted = true;
    this.release();
    return true;
  }

  async reload(): Promise<void> {
    if (!['idle', 'failed', 'installedPendingReload'].includes(this.statusValue.phase)) {
      throw new BusyError('device busy: expected no running operation');
    }
    this.inventoryValue.runningImage = this.inventoryValue.bootImage;
    this.inventoryValue.runningVersion = this.inventoryValue.bootVersion;
    this.statusValue = idleStatus();
  }

  release(): void {
    this.release_?.();
    this.release_ = undefined;
  }

  private async run(action: UpgradeAction): Promise<void> {
    if (this.holdFetching) await new Promise<void>((resolve) => (this.release_ = resolve));
    const phases = action === 'check' ? (['verifying', 'checkingSpace'] as const) : (['verifying', 'checkingSpace', 'applying', 'installing'] as const);
    for (const phase of phases) {
      if (this.aborted) return this.finish(action, 'aborted', 'aborted', 'aborted by an operator');
      await new Promise((resolve) => setTimeout(resolve, this.phaseMs));
      this.statusValue = { ...this.statusValue, phase, targetVersion: '68', bytesDone: 1_310_080, bytesTotal: 1_310_080, percent: 100 };
      this.emit('status', this.status());
      if (this.failWith && phase === 'verifying') return this.finish(action, 'failed', this.failWith.cause, this.failWith.reason);
    }
    if (this.aborted) return this.finish(action, 'aborted', 'aborted', 'aborted by an operator');
    if (action === 'upgrade') {
      this.inventoryValue.bootImage = 'iwlwifi-cc-a0-68.ucode';
      this.inventoryValue.bootVersion = '68';
    }
    this.finish(action, action === 'upgrade' ? 'installed' : 'checked', undefined, '');
  }

  private finish(action: UpgradeAction, result: UpgradeOutcome['result'], cause: FailCause | undefined, reason: string): void {
    const endTime = new Date();
    const failed = result === 'failed' || result === 'aborted';
    let phase: UpgradeStatus['phase'] = action === 'upgrade' ? 'installedPendingReload' : 'idle';
    if (failed) phase = 'failed';
    this.statusValue = {
      ...this.statusValue,
      phase,
      endTime,
      failCause: cause,
      failReason: reason,
    };
    const outcome: UpgradeOutcome = {
      action,
      result,
      patchName: this.statusValue.patchName,
      sourceVersion: this.statusValue.sourceVersion,
      targetVersion: this.statusValue.targetVersion,
      startTime: this.statusValue.startTime!,
      endTime,
      failCause: cause,
      failReason: reason,
      bootImage: result === 'installed' ? this.inventoryValue.bootImage : undefined,
    };
    this.emit('finished', outcome);
  }

  override on<E extends keyof DeviceEvents>(event: E, listener: (...args: DeviceEvents[E]) => void): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }

  override off<E extends keyof DeviceEvents>(event: E, listener: (...args: DeviceEvents[E]) => void): this {
    return super.off(event, listener as (...args: unknown[]) => void);
  }
}
