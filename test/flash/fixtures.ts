import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { FlashStore, type FlashOpenOptions, type ImageRecord } from '../../flash/index.js';
import { generateKeyPair, writeKeyPair } from '../../verifier/index.js';
import { REPO_ROOT } from '../support/index.js';

export const PLATFORM = 'testbox';

/** Writes `size` random bytes to `path` and returns the record they would have as image `name`. */
export async function writeImageFile(path: string, name: string, version: string, size: number): Promise<ImageRecord> {
  const bytes = randomBytes(size);
  await writeFile(path, bytes);
  return { name, platform: PLATFORM, version, size, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** Creates a vendor key pair in `dir` and returns the public key file and the key in hex. */
export async function makeVendorKey(dir: string, base = 'vendor'): Promise<{ publicPath: string; publicHex: string; keyId: string }> {
  const key = generateKeyPair();
  const { publicPath } = await writeKeyPair(join(dir, base), key);
  return { publicPath, publicHex: Buffer.from(key.publicKey).toString('hex'), keyId: key.keyId };
}

export interface TestFlash {
  store: FlashStore;
  dir: string;
  running: ImageRecord;
  trustedKey: string;
}

/** Creates a flash in `work`/flash with one running image of `imageBytes` random bytes. */
export async function makeFlash(work: string, options: { capacityBytes: number; imageBytes: number; open?: FlashOpenOptions }): Promise<TestFlash> {
  const source = join(work, 'a.bin');
  const running = await writeImageFile(source, 'a.bin', '1.0', options.imageBytes);
  const { publicHex } = await makeVendorKey(work);
  const dir = join(work, 'flash');
  const store = await FlashStore.init(
    dir,
    { capacityBytes: options.capacityBytes, platform: PLATFORM, imageName: running.name, version: running.version, fromFile: source, trustedKeys: [publicHex] },
    options.open,
  );
  return { store, dir, running, trustedKey: publicHex };
}

/** Stages a new image of `size` random bytes through the store's staging writer and returns its record for this flash's platform. */
export async function stageImage(store: FlashStore, name: string, version: string, size: number): Promise<ImageRecord> {
  const bytes = randomBytes(size);
  const writer = await store.createStagingWriter('image');
  for (let offset = 0; offset < bytes.length; offset += 64 * 1024) {
    await writer.write(bytes.subarray(offset, offset + 64 * 1024));
  }
  await writer.finish();
  return { name, platform: store.state().platform, version, size, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** Starts a process that opens the flash, takes its lock and keeps it until killed. */
export async function startLockHolder(dir: string): Promise<ChildProcess> {
  const flashModule = join(REPO_ROOT, 'dist/flash/index.js');
  const script = `const { FlashStore } = await import(${JSON.stringify(flashModule)});
const store = await FlashStore.open(${JSON.stringify(dir)});
await store.lock();
process.stdout.write('locked\\n');
setInterval(() => undefined, 60000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  if (line.toString() !== 'locked\n') throw new Error(`lock holder wrote ${JSON.stringify(line.toString())}, expected "locked"`);
  return child;
}
