import { randomBytes } from 'node:crypto';
import { link, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';

import { BusyError, InvalidArgumentError, UpgradeError } from '../errors/index.js';
import { asFlashWriteError, DEFAULT_FLASH_IO, linkExclusively, type FlashIo } from './io.js';

export const LOCK_FILE = '.lock';

/**
 * How long a lock file that does not parse counts as one still being written. Without hard links the lock file is
 * created empty and then written, so another process can read it in between. An older one was left unfinished.
 */
const UNFINISHED_LOCK_GRACE_MS = 5000;

/** Content of the lock file: who holds it, and a token so that a holder only ever removes its own lock. */
interface LockRecord {
  /** Host name of the holder, for locks in folders that several hosts share (see acquireFileLock). */
  host: string | undefined;
  pid: number;
  /** Start time of the process in clock ticks since boot (Linux /proc), so a reused pid is not taken for the holder. */
  processStart: string | undefined;
  token: string;
  acquiredAt: string;
}

export interface FlashLock {
  release(): Promise<void>;
}

// Lock files held by this process. A lock file naming our own pid that is not in this set was left by an earlier
// process that had the same pid, which happens often in containers where the device process is pid 1.
const heldInThisProcess = new Set<string>();

/**
 * Takes the lock file at `path`. Throws BusyError while a live process holds it; a lock left by a process that
 * no longer runs is taken over.
 */
export async function acquireLock(path: string, io: FlashIo = DEFAULT_FLASH_IO): Promise<FlashLock> {
  try {
    // The flash belongs to one device, whose host name may change between boots (a container gets a new one each
    // start), so the holder's pid and start time decide alone.
    return await takeLock(path, io.link ?? link, 'flash', false);
  } catch (error) {
    throw asFlashWriteError(error, `taking the flash lock ${path}`);
  }
}

/**
 * Takes the lock file at `path` for some other file, named by `subject` in the BusyError a live holder causes
 * (`patch FILE is busy: ...`). The folder may be shared by several hosts, and a holder on another host cannot be
 * checked from here, so its lock is never taken over as stale. Failing to create the lock file is an
 * InvalidArgumentError that names it.
 */
export async function acquireFileLock(path: string, subject: string): Promise<FlashLock> {
  try {
    return await takeLock(path, link, subject, true);
  } catch (error) {
    if (error instanceof UpgradeError) throw error;
    throw new InvalidArgumentError(`cannot take the lock file ${path}: ${(error as Error).message}`, { cause: error });
  }
}

type LinkFile = (existingPath: string, newPath: string) => Promise<void>;

async function takeLock(path: string, linkFile: LinkFile, subject: string, sharedFolder: boolean): Promise<FlashLock> {
  const own: LockRecord = { host: hostname(), pid: process.pid, processStart: await processStartTime(process.pid), token: randomBytes(8).toString('hex'), acquiredAt: new Date().toISOString() };
  const content = `${JSON.stringify(own)}\n`;

  // Three rounds are enough: each round either takes the lock, finds a live holder, or removes one stale lock.
  for (let round = 0; round < 3; round++) {
    if (await createExclusively(path, content, linkFile)) {
      heldInThisProcess.add(path);
      return { release: () => releaseLock(path, own.token) };
    }

    const holderText = await readFile(path, 'utf8').catch(() => undefined);
    if (holderText === undefined) continue;
    const holder = parseLockRecord(holderText);
    if (holder && (await isHolderAlive(path, holder, sharedFolder))) {
      const holderName = holder.host === undefined || holder.host === hostname() ? `process ${holder.pid}` : `process ${holder.pid} on ${holder.host}`;
      throw new BusyError(`${subject} is busy: ${holderName} has held ${path} since ${holder.acquiredAt}; retry when its operation has finished`);
    }
    if (!holder && (await isRecent(path))) {
      throw new BusyError(`${subject} is busy: another process is writing the lock file ${path}; retry in a few seconds`);
    }

    await removeStaleLock(path, holderText, linkFile);
  }
  throw new BusyError(`${subject} is busy: could not take ${path}, other processes keep taking it`);
}

/**
 * Creates the lock file with its full content in one step: a temporary file is linked to the lock name, and
 * link(2) fails when the name exists. A reader therefore never reads a half-written lock file. On a file system
 * without hard links (FAT, some network mounts) the lock file is copied exclusively, so it exists before its
 * content does, and readers wait out a lock file that does not parse yet (UNFINISHED_LOCK_GRACE_MS).
 */
async function createExclusively(path: string, content: string, linkFile: LinkFile): Promise<boolean> {
  const tempPath = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tempPath, content, { flag: 'wx' });
  try {
    return await linkExclusively(tempPath, path, linkFile);
  } finally {
    await rm(tempPath, { force: true });
  }
}

/** Tells whether the file at `path` was modified within UNFINISHED_LOCK_GRACE_MS; false when it is gone. */
async function isRecent(path: string): Promise<boolean> {
  const modified = await stat(path).then(
    (info) => info.mtimeMs,
    () => undefined,
  );
  return modified !== undefined && Date.now() - modified < UNFINISHED_LOCK_GRACE_MS;
}

/**
 * Removes a stale lock without removing a fresh one another process made in the meantime: the lock is first
 * renamed to a private name (only one process can win that rename), then checked to still be the stale one.
 */
async function removeStaleLock(path: string, staleText: string, linkFile: LinkFile): Promise<void> {
  const privatePath = `${path}.stale.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await rename(path, privatePath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }

  const movedText = await readFile(privatePath, 'utf8');
  if (movedText !== staleText) {
    // A live process took the lock between our read and our rename: give it back. link(2) does not replace a
    // lock a third process may have made meanwhile.
    // NOTE: in that three-process race the second live holder's lock is lost. It needs three processes to
    // start on one flash within microseconds of a dead holder's lock being found.
    await linkExclusively(privatePath, path, linkFile).catch(() => false);
  }
  await rm(privatePath, { force: true });
}

async function releaseLock(path: string, token: string): Promise<void> {
  heldInThisProcess.delete(path);
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text !== undefined && parseLockRecord(text)?.token === token) {
    await rm(path, { force: true });
  }
}

function parseLockRecord(text: string): LockRecord | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockRecord>;
    if (typeof value.pid !== 'number' || !Number.isInteger(value.pid) || value.pid <= 0) return undefined;
    return {
      host: typeof value.host === 'string' ? value.host : undefined,
      pid: value.pid,
      processStart: typeof value.processStart === 'string' ? value.processStart : undefined,
      token: typeof value.token === 'string' ? value.token : '',
      acquiredAt: typeof value.acquiredAt === 'string' ? value.acquiredAt : 'an unknown time',
    };
  } catch {
    return undefined;
  }
}

async function isHolderAlive(path: string, holder: LockRecord, sharedFolder: boolean): Promise<boolean> {
  if (sharedFolder && holder.host !== undefined && holder.host !== hostname()) return true;
  if (holder.pid === process.pid) return heldInThisProcess.has(path);
  if (!isProcessAlive(holder.pid)) return false;

  if (holder.processStart === undefined) return true;
  const start = await processStartTime(holder.pid);
  return start === undefined || start === holder.processStart;
}

/**
 * Returns the temporary lock files (`.lock.PID.*.tmp`) in `dir` whose process has exited. A process killed
 * while taking or breaking the lock leaves one. Files of live processes are in use, so they are not returned.
 */
export async function findLeftoverLockFiles(dir: string): Promise<string[]> {
  const leftovers: string[] = [];
  for (const entry of await readdir(dir)) {
    const match = /^\.lock\.(?:stale\.)?([0-9]+)\..*tmp$/.exec(entry);
    if (match && !isProcessAlive(Number(match[1]))) leftovers.push(entry);
  }
  return leftovers;
}

function isProcessAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user, so it is alive.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Start time of a process (field 22 of /proc/PID/stat), or undefined where /proc is not available. */
async function processStartTime(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return undefined;

  // The command name (field 2) is in parentheses and may itself contain spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19];
}
