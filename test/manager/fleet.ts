/**
 * A fleet of real agents on loopback for the manager's tests and benchmark: each device has its own flash
 * folder holding the same real firmware image, and all of them read one signed patch folder.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readFile } from 'node:fs/promises';

import { startAgent, type NotificationSink, type RunningAgent, type UsmUser } from '../../agent/index.js';
import { codecByName } from '../../delta/index.js';
import { FlashStore } from '../../flash/index.js';
import type { Fetcher } from '../../transport/index.js';
import { FlashDevice } from '../../upgrade/index.js';
import { createPatch, generateKeyPair } from '../../verifier/index.js';
import { FIRMWARE_DIR, freeUdpPort } from '../support/index.js';

export const PLATFORM = 'rpi4-recovery';
export const FROM_VERSION = '2026-05-17';
export const TO_VERSION = '2026-08-04';
export const SOURCE_IMAGE = join(FIRMWARE_DIR, 'rpi4-recovery-2026-05-17.bin');
export const TARGET_IMAGE = join(FIRMWARE_DIR, 'rpi4-recovery-2026-08-04.bin');
export const COMMUNITY = 'fleet-rw';

/** Flash size for a healthy device: the image, the patch download and the new image, with room to spare. */
const FLASH_BYTES = 1024 * 1024;

export interface PatchSource {
  /** file: URL prefix of the patch folder, ending in `/`. */
  urlPrefix: string;
  dir: string;
  trustedKey: string;
}

/** Signs the real rpi4 pair with a fresh vendor key and publishes the patch in `<root>/patches`. */
export async function publishFirmwarePatch(root: string): Promise<PatchSource> {
  const key = generateKeyPair();
  const patch = await createPatch({
    source: await readFile(SOURCE_IMAGE),
    target: await readFile(TARGET_IMAGE),
    platform: PLATFORM,
    sourceVersion: FROM_VERSION,
    targetVersion: TO_VERSION,
    securityCounter: 2n,
    codec: codecByName('delta') ?? codecByName('full')!,
    keys: [key],
  });
  const dir = join(root, 'patches');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, patch.fileName), patch.bytes);
  return { urlPrefix: `${pathToFileURL(dir).href}/`, dir, trustedKey: Buffer.from(key.publicKey).toString('hex') };
}

export interface DeviceSetup {
  platform?: string;
  version?: string;
  capacityBytes?: number;
  /** Replaces the device's fetch client, to make a transfer hang or fail. */
  fetcher?: Fetcher;
  /** An SNMPv3 user with write access; the device then sends SNMPv3 informs as this user. */
  usmUser?: UsmUser;
}

export interface FleetOptions {
  root: string;
  count: number;
  trustedKey: string;
  /** Where the agents send notifications; nothing needs to listen there. */
  trapSink: { host: string; port: number };
  inform?: boolean;
  /** Devices that differ from the healthy default, by position. */
  setups?: Map<number, DeviceSetup>;
}

export interface FleetAgent {
  host: string;
  port: number;
  flashDir: string;
  device: FlashDevice;
  agent: RunningAgent;
}

export interface Fleet {
  agents: FleetAgent[];
  /** CSV inventory of the fleet, with the header row. */
  inventoryCsv(extraColumns?: (agent: FleetAgent, position: number) => Record<string, string>): string;
  close(): Promise<void>;
}

/** Creates `count` flash folders and starts one agent on each, on free loopback ports. */
export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const agents: FleetAgent[] = [];
  const close = async () => {
    // allSettled: a test may already have closed an agent to make its device go silent.
    await Promise.allSettled(agents.map((entry) => entry.agent.close()));
  };
  try {
    for (let position = 0; position < options.count; position++) {
      agents.push(await startOne(options, position));
    }
  } catch (error) {
    await close();
    throw error;
  }

  return {
    agents,
    inventoryCsv: (extraColumns) => {
      const extras = agents.map((agent, position) => extraColumns?.(agent, position) ?? {});
      const extraNames = [...new Set(extras.flatMap((extra) => Object.keys(extra)))];
      const lines = [['host', 'port', 'community', ...extraNames].join(',')];
      agents.forEach((agent, position) => {
        lines.push([agent.host, String(agent.port), COMMUNITY, ...extraNames.map((name) => extras[position]![name] ?? '')].join(','));
      });
      return `${lines.join('\n')}\n`;
    },
    close,
  };
}

async function startOne(options: FleetOptions, position: number): Promise<FleetAgent> {
  const setup = options.setups?.get(position) ?? {};
  const flashDir = join(options.root, `device-${position}`);
  await FlashStore.init(flashDir, {
    capacityBytes: setup.capacityBytes ?? FLASH_BYTES,
    platform: setup.platform ?? PLATFORM,
    imageName: 'recovery.bin',
    version: setup.version ?? FROM_VERSION,
    fromFile: SOURCE_IMAGE,
    trustedKeys: [options.trustedKey],
  });
  const device = await FlashDevice.open(flashDir, setup.fetcher ? { fetcher: setup.fetcher } : {});

  // A free port can be taken between the pick and the bind by another process; one more pick covers that.
  for (let attempt = 0; ; attempt++) {
    const port = await freeUdpPort();
    try {
      const agent = await startAgent({
        listen: { host: '127.0.0.1', port },
        roCommunities: [],
        rwCommunities: [COMMUNITY],
        users: setup.usmUser ? [setup.usmUser] : [],
        sinks: [sinkFor(options, setup)],
        informRetries: 1,
        informTimeoutMs: 500,
        device,
        stateFile: join(flashDir, 'agent-state.json'),
      });
      return { host: '127.0.0.1', port: agent.address.port, flashDir, device, agent };
    } catch (error) {
      if (attempt >= 1) throw error;
    }
  }
}

/** Copies the published patch under another device's patch name, as a misplaced file would be. */
export async function copyPatchAs(source: PatchSource, platform: string, version: string): Promise<void> {
  await copyFile(join(source.dir, `${PLATFORM}_${FROM_VERSION}.patch`), join(source.dir, `${platform}_${version}.patch`));
}

function sinkFor(options: FleetOptions, setup: DeviceSetup): NotificationSink {
  if (setup.usmUser) return { ...options.trapSink, version: '3', user: setup.usmUser.name, inform: true };
  return { ...options.trapSink, version: '2c', community: 'public', inform: options.inform ?? false };
}
