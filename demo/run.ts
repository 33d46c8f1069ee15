/**
 * The whole product on one machine: a vendor signs a patch, a patch server offers it over TFTP, a device's SNMP
 * agent is told by SET to upgrade, and a trap listener follows it. Everything listens on 127.0.0.1 on ports the
 * operating system picks, and everything started is stopped before the demo returns.
 */
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startAgent } from '../agent/index.js';
import { codecByName } from '../delta/index.js';
import { FlashStore } from '../flash/index.js';
import { FAIL_CAUSES, InvalidArgumentError } from '../errors/index.js';
import { NOTIFICATIONS, OPER_STATUS, SCALARS, notificationOid, scalarInstanceOid, type ScalarName } from '../mib/index.js';
import { startPatchServer } from '../transport/index.js';
import { FlashDevice } from '../upgrade/index.js';
import { createPatch, generateKeyPair, writeKeyPair } from '../verifier/index.js';
import { makeDemoImages } from './images.js';
import { snmp, type Session, type Varbind } from './snmp-client.js';

export interface DemoOptions {
  /** Real images to use in place of the generated ones. */
  oldImage?: string;
  newImage?: string;
  /** Keep the work folder (keys, patches, flash) instead of removing it at the end. */
  keep?: boolean;
  /** Receives each line the demo prints. */
  print: (line: string) => void;
}

const PLATFORM = 'rtr-9000';
const COMMUNITY = 'demo-rw';
const TRAP_COMMUNITY = 'demo-traps';
const DEADLINE_MS = 60_000;

const PHASE_NAMES = Object.fromEntries(Object.entries(OPER_STATUS).map(([name, value]) => [value, name]));
const CAUSE_NAMES = Object.fromEntries(Object.entries(FAIL_CAUSES).map(([name, value]) => [value, name]));
const NOTIFICATION_NAMES = Object.fromEntries(Object.keys(NOTIFICATIONS).map((name) => [notificationOid(name as keyof typeof NOTIFICATIONS), name]));
const SCALAR_NAMES = Object.fromEntries(Object.keys(SCALARS).map((name) => [scalarInstanceOid(name as ScalarName), name]));

/** Runs the demo and returns true when the device ends up set to boot the new image with its digest verified. */
export async function runDemo(options: DemoOptions): Promise<boolean> {
  const { print } = options;
  // The images are read first, so a wrong --old or --new fails before anything is made or printed.
  const images = await loadImages(options);
  const work = await mkdtemp(join(tmpdir(), 'snmp-upgrade-demo-'));
  const cleanups: Array<() => Promise<unknown>> = [];

  try {
    print(`work folder ${work}`);

    // Vendor: a signing key, two releases and the signed patch between them.
    const key = generateKeyPair();
    await writeKeyPair(join(work, 'vendor'), key);
    print(`vendor: made signing key ${key.keyId} (vendor.key, vendor.pub)`);
    print(`vendor: old image ${images.oldLabel} (${images.old.length.toLocaleString('en-US')} bytes), new image ${images.newLabel} (${images.new.length.toLocaleString('en-US')} bytes)`);
    const patch = await createPatch({
      source: images.old,
      target: images.new,
      platform: PLATFORM,
      sourceVersion: '1.0.0',
      targetVersion: '1.1.0',
      securityCounter: 2n,
      codec: codecByName('delta') ?? codecByName('full')!,
      keys: [key],
    });
    const patchDir = join(work, 'patches');
    await mkdir(patchDir);
    await writeFile(join(patchDir, patch.fileName), patch.bytes);
    print(`vendor: created ${patch.fileName}, ${patch.bytes.length.toLocaleString('en-US')} bytes (${((patch.bytes.length * 100) / images.new.length).toFixed(1)}% of the new image)`);

    // Management station: the patch server over TFTP and a trap listener.
    const server = await startPatchServer({ root: patchDir, tftp: { host: '127.0.0.1', port: await freeUdpPort() }, log: (line) => print(`server: ${line}`) });
    cleanups.push(() => server.close());
    const tftp = server.tftpAddress!;
    print(`station: serving ${patchDir} over TFTP on ${tftp.host}:${tftp.port}`);
    const traps = await startTrapListener((line) => print(`trap: ${line}`));
    cleanups.push(() => traps.close());
    print(`station: listening for traps on 127.0.0.1:${traps.port}`);

    // Device: a flash holding the old image, trusting the vendor key, and its SNMP agent.
    const oldPath = join(work, 'old.bin');
    await writeFile(oldPath, images.old);
    const flashDir = join(work, 'flash');
    await FlashStore.init(flashDir, {
      capacityBytes: 16 * 1024 * 1024,
      platform: PLATFORM,
      imageName: 'core.bin',
      version: '1.0.0',
      fromFile: oldPath,
      trustedKeys: [Buffer.from(key.publicKey).toString('hex')],
    });
    const device = await FlashDevice.open(flashDir);
    const agent = await startAgent({
      device,
      stateFile: join(flashDir, 'agent-state.json'),
      listen: { host: '127.0.0.1', port: await freeUdpPort() },
      roCommunities: [],
      rwCommunities: [COMMUNITY],
      users: [],
      sinks: [{ host: '127.0.0.1', port: traps.port, version: '2c', community: TRAP_COMMUNITY, inform: false }],
      informRetries: 0,
      informTimeoutMs: 1000,
    });
    cleanups.push(() => agent.close());
    print(`device: flash ${flashDir} runs core.bin 1.0.0; SNMP agent on 127.0.0.1:${agent.address.port}`);

    // Operator: write the URL prefix and the trigger over SNMP, then follow the device.
    const session = snmp.createSession('127.0.0.1', COMMUNITY, { port: agent.address.port, version: snmp.Version2c, timeout: 2000, retries: 2 });
    cleanups.push(async () => session.close());
    const urlPrefix = `tftp://${tftp.host}:${tftp.port}/`;
    const spinLock = (await get(session, ['upgradeSpinLock']))[0] as number;
    await set(session, [
      { oid: scalarInstanceOid('upgradeUrlPrefix'), type: snmp.ObjectType.OctetString, value: urlPrefix },
      { oid: scalarInstanceOid('upgradeSpinLock'), type: snmp.ObjectType.Integer, value: spinLock },
      { oid: scalarInstanceOid('upgradeAction'), type: snmp.ObjectType.Integer, value: 2 },
    ]);
    print(`operator: SET upgradeUrlPrefix.0 = "${urlPrefix}", upgradeSpinLock.0 = ${spinLock}, upgradeAction.0 = upgrade(2)`);

    const finalPhase = await followProgress(session, print);
    const [bootVersion, bootImage, failCause, failReason] = await get(session, ['upgradeBootVersion', 'upgradeBootImage', 'upgradeFailCause', 'upgradeFailReason']);
    await traps.waitFor(finalPhase === 'installedPendingReload' ? 'upgradeCompleted' : 'upgradeFailed', 5000);

    // The result, checked against the bytes on flash.
    const store = await FlashStore.open(flashDir);
    const { bootImage: bootName, images: records } = store.state();
    const bootDigest = createHash('sha256').update(await readFile(store.imagePath(bootName))).digest('hex');
    const expectedDigest = createHash('sha256').update(images.new).digest('hex');
    if (finalPhase !== 'installedPendingReload') {
      print(`result: upgrade failed: ${CAUSE_NAMES[failCause as number]}: ${String(failReason)}`);
      return false;
    }
    print(`result: upgradeBootVersion.0 = ${String(bootVersion)}, upgradeBootImage.0 = ${String(bootImage)}`);
    print(`result: boot image ${bootName} sha256 ${bootDigest} (${records.find((record) => record.name === bootName)?.size.toLocaleString('en-US')} bytes)`);
    const verified = bootDigest === expectedDigest;
    print(verified ? 'result: the digest equals the new image; the device boots 1.1.0 at its next reload' : `result: digest mismatch, expected ${expectedDigest}`);
    return verified;
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    if (options.keep) print(`kept ${work}`);
    else await rm(work, { recursive: true, force: true });
  }
}

async function loadImages(options: DemoOptions): Promise<{ old: Buffer; new: Buffer; oldLabel: string; newLabel: string }> {
  if ((options.oldImage === undefined) !== (options.newImage === undefined)) {
    throw new InvalidArgumentError('--old and --new go together: expected both files or neither');
  }
  if (options.oldImage && options.newImage) {
    const read = async (path: string) =>
      readFile(path).catch((error: Error) => {
        throw new InvalidArgumentError(`cannot read image ${path}: ${error.message}`, { cause: error });
      });
    return { old: await read(options.oldImage), new: await read(options.newImage), oldLabel: options.oldImage, newLabel: options.newImage };
  }
  const generated = makeDemoImages();
  return { ...generated, oldLabel: '1.0.0 (generated)', newLabel: '1.1.0 (generated)' };
}

/** Polls the status objects as a manager would and prints each phase change; returns the final phase. */
async function followProgress(session: Session, print: (line: string) => void): Promise<string> {
  const deadline = Date.now() + DEADLINE_MS;
  let lastPhase = '';
  while (Date.now() < deadline) {
    const [status, progress, done, total] = await get(session, ['upgradeOperStatus', 'upgradeProgress', 'upgradeBytesDone', 'upgradeBytesTotal']);
    const phase = PHASE_NAMES[status as number] ?? `unknown(${String(status)})`;
    if (phase !== lastPhase) {
      const bytes = (total as number) > 0 ? `, ${(done as number).toLocaleString('en-US')}/${(total as number).toLocaleString('en-US')} bytes` : '';
      print(`device: upgradeOperStatus.0 = ${phase}, upgradeProgress.0 = ${String(progress)}%${bytes}`);
      lastPhase = phase;
    }
    if (phase === 'installedPendingReload' || phase === 'failed') return phase;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the upgrade did not finish within ${DEADLINE_MS / 1000} s; last status ${lastPhase}`);
}

function get(session: Session, names: ScalarName[]): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    session.get(
      names.map((name) => scalarInstanceOid(name)),
      (error: Error | null, varbinds: Varbind[]) => {
        if (error) return reject(error);
        const failed = varbinds.find((varbind) => snmp.isVarbindError(varbind));
        if (failed) return reject(new Error(snmp.varbindError(failed)));
        resolve(varbinds.map((varbind) => (Buffer.isBuffer(varbind.value) ? varbind.value.toString('utf8') : varbind.value)));
      },
    );
  });
}

function set(session: Session, varbinds: Varbind[]): Promise<void> {
  return new Promise((resolve, reject) => {
    session.set(varbinds, (error: Error | null) => (error ? reject(error) : resolve()));
  });
}

interface TrapListener {
  port: number;
  waitFor(name: string, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/** A v2c trap receiver on 127.0.0.1 that prints upgrade notifications by their MIB names. */
async function startTrapListener(print: (line: string) => void): Promise<TrapListener> {
  const received = new Set<string>();
  const waiters: Array<{ name: string; resolve: () => void }> = [];
  const port = await freeUdpPort();
  const receiver = snmp.createReceiver(
    { port, address: '127.0.0.1', transport: 'udp4', disableAuthorization: true },
    (error: Error | null, notification: { pdu: { varbinds: Varbind[] } }) => {
      if (error) return print(`dropped: ${error.message}`);
      const varbinds = notification.pdu.varbinds;
      const trapOid = varbinds.find((varbind) => varbind.oid === '1.3.6.1.6.3.1.1.4.1.0')?.value as string | undefined;
      const name = (trapOid && NOTIFICATION_NAMES[trapOid]) ?? trapOid ?? 'unknown';
      const fields = varbinds
        .filter((varbind) => SCALAR_NAMES[varbind.oid] && !/Time$/.test(SCALAR_NAMES[varbind.oid]!))
        .map((varbind) => `${SCALAR_NAMES[varbind.oid]}=${describeValue(SCALAR_NAMES[varbind.oid]!, varbind.value)}`);
      print(`${name} ${fields.join(' ')}`);
      received.add(name);
      for (const waiter of waiters.filter((candidate) => candidate.name === name)) waiter.resolve();
    },
  );
  return {
    port,
    waitFor: (name, timeoutMs) =>
      received.has(name)
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`no ${name} trap within ${timeoutMs} ms`)), timeoutMs);
            waiters.push({ name, resolve: () => (clearTimeout(timer), resolve()) });
          }),
    close: async () => receiver.close(),
  };
}

function describeValue(name: string, value: unknown): string {
  if (name === 'upgradeOperStatus') return PHASE_NAMES[value as number] ?? String(value);
  if (name === 'upgradeFailCause') return CAUSE_NAMES[value as number] ?? String(value);
  return JSON.stringify(Buffer.isBuffer(value) ? value.toString('utf8') : value);
}

/**
 * Picks a UDP port that is free on 127.0.0.1 now. net-snmp treats port 0 as "use the SNMP default" (161 or 162),
 * so the demo chooses its ports itself rather than asking for 0.
 */
function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}
