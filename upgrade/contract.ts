/**
 * What the SNMP agent and the `upgrade` command see of a device: its inventory, its stored settings, the
 * running operation's status, and the actions an operator may start. The upgrade engine implements it.
 */
import type { FailCause } from '../errors/index.js';

/** Operational states, in the order an upgrade passes through them; the MIB's upgradeOperStatus. */
export const UPGRADE_PHASES = [
  'idle',
  'fetching',
  'verifying',
  'checkingSpace',
  'applying',
  'installing',
  'installedPendingReload',
  'failed',
] as const;
export type UpgradePhase = (typeof UPGRADE_PHASES)[number];

/** `check` is a dry run: fetch, verify and space check, nothing written to flash. */
export type UpgradeAction = 'upgrade' | 'check';

export interface UpgradeStatus {
  phase: UpgradePhase;
  action: UpgradeAction | undefined;
  bytesDone: number;
  /** Zero while the total is not known yet. */
  bytesTotal: number;
  /** 0 to 100 within the current phase. */
  percent: number;
  /** The patch file name, never the URL, so credentials in a URL prefix cannot leak through status or traps. */
  patchName: string;
  sourceVersion: string;
  targetVersion: string;
  startTime: Date | undefined;
  endTime: Date | undefined;
  failCause: FailCause | undefined;
  failReason: string;
}

/** The way a finished operation ended. */
export type UpgradeResult = 'installed' | 'alreadyAtTarget' | 'checked' | 'failed' | 'aborted';

export interface UpgradeOutcome {
  action: UpgradeAction;
  result: UpgradeResult;
  patchName: string;
  sourceVersion: string;
  targetVersion: string;
  startTime: Date;
  endTime: Date;
  failCause: FailCause | undefined;
  failReason: string;
  /** Image set to boot next; set when result is `installed` or `alreadyAtTarget`. */
  bootImage: string | undefined;
}

export interface DeviceInventory {
  platform: string;
  runningImage: string;
  runningVersion: string;
  bootImage: string;
  bootVersion: string;
  bootSha256: string;
  securityCounter: bigint;
  flashSizeBytes: number;
  flashFreeBytes: number;
}

/** Settings an operator writes over SNMP; kept on flash across restarts. */
export interface DeviceSettings {
  urlPrefix: string;
  /** Image to upgrade from; empty means the running image. */
  flashImage: string;
}

export interface DeviceEvents {
  /** Emitted at every phase change and as bytes progress (rate-limited by the engine). */
  status: [UpgradeStatus];
  started: [UpgradeStatus];
  finished: [UpgradeOutcome];
}

export interface Device {
  inventory(): Promise<DeviceInventory>;
  settings(): Promise<DeviceSettings>;
  /**
   * Stores settings atomically; throws InvalidArgumentError or BadUrlError and stores nothing on bad input. An
   * empty urlPrefix clears the stored prefix, as on a new device, so a failed SET can put the empty one back.
   */
  updateSettings(update: Partial<DeviceSettings>): Promise<void>;
  /** Checks a URL prefix that a user sets, so an empty one is invalid; stores nothing. */
  validateUrlPrefix(urlPrefix: string): void;
  status(): UpgradeStatus;
  /**
   * Starts an operation in the background with the stored URL prefix and image, and returns at once.
   * Throws BusyError when an operation is already running on this flash.
   */
  start(action: UpgradeAction): void;
  /** Asks the running operation to stop at its next safe point; false when nothing is running. */
  abort(): boolean;
  /** Simulated reboot: the boot image becomes the running image. Throws BusyError during an operation. */
  reload(): Promise<void>;
  on<E extends keyof DeviceEvents>(event: E, listener: (...args: DeviceEvents[E]) => void): this;
  off<E extends keyof DeviceEvents>(event: E, listener: (...args: DeviceEvents[E]) => void): this;
}
