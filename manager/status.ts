/** `manager status`: one read of every device's platform, versions and operation state. */
import { DeviceClient, SnmpRequestError } from './client.js';
import type { InventoryDevice } from './inventory.js';

export interface DeviceStatusRow {
  device: string;
  platform: string;
  runningVersion: string;
  bootVersion: string;
  /** The device's upgradeOperStatus, or `noResponse` / `notUpgradeAgent` when it could not be read. */
  state: string;
  /** The last failure cause the device reports, `none` when there is none. */
  cause: string;
  /** The last failure reason, or why the device could not be read. */
  reason: string;
}

export interface StatusOptions {
  concurrency?: number;
  timeoutMs?: number;
  retries?: number;
}

/** Reads every device, at most `concurrency` at a time; returns rows in inventory order. */
export async function readFleetStatus(devices: InventoryDevice[], options: StatusOptions = {}): Promise<DeviceStatusRow[]> {
  const rows: DeviceStatusRow[] = new Array(devices.length);
  let next = 0;
  const worker = async () => {
    while (next < devices.length) {
      const position = next++;
      rows[position] = await readOne(devices[position]!, options);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 32, devices.length) }, worker));
  return rows;
}

async function readOne(device: InventoryDevice, options: StatusOptions): Promise<DeviceStatusRow> {
  const client = new DeviceClient(device, { timeoutMs: options.timeoutMs ?? 2000, retries: options.retries ?? 1 });
  try {
    const facts = await client.readFacts();
    return {
      device: device.name,
      platform: facts.platform,
      runningVersion: facts.runningVersion,
      bootVersion: facts.bootVersion,
      state: facts.phase,
      cause: facts.failCause,
      reason: facts.failReason,
    };
  } catch (error) {
    if (!(error instanceof SnmpRequestError)) throw error;
    const state = error.kind === 'noSuchObject' ? 'notUpgradeAgent' : 'noResponse';
    return { device: device.name, platform: '', runningVersion: '', bootVersion: '', state, cause: 'none', reason: error.message };
  } finally {
    client.close();
  }
}
