import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

import { expect } from 'chai';

import { BusyError } from '../../errors/index.js';
import { acquireFileLock, DEFAULT_FLASH_IO, FlashStore, type FlashIo } from '../../flash/index.js';
import { makeTempDir } from '../support/index.js';
import { makeFlash, startLockHolder } from './fixtures.js';

/** Returns the pid of a process that has already exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await once(child, 'exit');
  return child.pid!;
}

describe('FlashStore lock', () => {
  let work: { path: string; remove: () => Promise<void> };
  const children: ChildProcess[] = [];

  beforeEach(async () => {
    work = await makeTempDir('snmp-upgrade-lock-');
  });

  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    }
    await work.remove();
  });

  it('rejects a second store in this process', async () => {
    const { store, dir } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });
    const other = await FlashStore.open(dir);
    const held = await store.lock();

    const error = await other.lock().then(() => undefined, (caught: unknown) => caught);
    expect(error).to.be.instanceOf(BusyError);
    const settingsError = await other.updateSettings({ urlPrefix: 'x' }).then(() => undefined, (caught: unknown) => caught);
    expect(settingsError).to.be.instanceOf(BusyError);

    await held.release();
    const again = await other.lock();
    await again.release();
  });

  it('works without hard links', async () => {
    // FAT and some network file systems refuse link(2) with EPERM.
    const noLinks: FlashIo = {
      ...DEFAULT_FLASH_IO,
      link: () => Promise.reject(Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM' })),
    };
    const { dir } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });
    const first = await FlashStore.open(dir, { io: noLinks });
    const second = await FlashStore.open(dir, { io: noLinks });

    const firstLock = await first.lock();
    expect(JSON.parse(await readFile(join(dir, '.lock'), 'utf8')).pid).to.equal(process.pid);
    const error = await second.lock().then(() => undefined, (caught: unknown) => caught);
    expect(error).to.be.instanceOf(BusyError);

    await firstLock.release();
    const secondLock = await second.lock();
    await secondLock.release();
  });

  it('waits out a lock file still being written', async () => {
    const { store, dir } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });
    const lockPath = join(dir, '.lock');
    await writeFile(lockPath, '');

    const error = await store.lock().then(() => undefined, (caught: unknown) => caught);
    expect(error).to.be.instanceOf(BusyError);
    expect((error as Error).message).to.include('writing the lock file');

    // Older than the grace period, an empty lock file was left by a process that stopped while writing it.
    const past = new Date(Date.now() - 60_000);
    await utimes(lockPath, past, past);
    const takenOver = await store.lock();
    await takenOver.release();
  });

  it('rejects a lock held by a live process', async () => {
    const { dir } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });
    const holder = await startLockHolder(dir);
    children.push(holder);
    await writeFile(join(dir, 'staging', 'patch.part'), 'in progress');

    const store = await FlashStore.open(dir);
    expect(store.recovery.ran).to.equal(false);
    expect(store.recovery.actions[0]).to.include(`process ${holder.pid}`);

    const error = await store.lock().then(() => undefined, (caught: unknown) => caught);
    expect(error).to.be.instanceOf(BusyError);
    expect((error as BusyError).message).to.include(`process ${holder.pid}`);
    const reloadError = await store.reload().then(() => undefined, (caught: unknown) => caught);
    expect(reloadError).to.be.instanceOf(BusyError);
  });

  it('takes over the lock of a killed process', async () => {
    const { dir } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });
    const holder = await startLockHolder(dir);
    holder.kill('SIGKILL');
    await once(holder, 'exit');
    await writeFile(join(dir, 'staging', 'patch.part'), 'left by the killed process');

    const store = await FlashStore.open(dir);
    expect(store.recovery.ran).to.equal(true);
    expect(store.recovery.actions[0]).to.include('staging/patch.part');
    const held = await store.lock();
    await held.release();
  });

  it('takes over a lock naming an exited pid', async () => {
    const { store, dir } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });
    await writeFile(join(dir, '.lock'), `${JSON.stringify({ pid: await deadPid(), processStart: '1', token: 'stale', acquiredAt: '2026-01-01T00:00:00Z' })}\n`);

    const held = await store.lock();
    await held.release();
  });

  it('takes over a lock of an exited pid under another host name', async () => {
    // A device in a container gets a new host name with each start, so the flash lock ignores the name.
    const { store, dir } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });
    const record = { host: `not-${hostname()}`, pid: await deadPid(), token: 'earlier', acquiredAt: '2026-01-01T00:00:00Z' };
    await writeFile(join(dir, '.lock'), `${JSON.stringify(record)}\n`);

    const held = await store.lock();
    await held.release();
  });

  it('keeps a file lock of another host with an exited pid', async () => {
    const path = join(work.path, 'p_1.patch.lock');
    const record = { host: `not-${hostname()}`, pid: await deadPid(), token: 'remote', acquiredAt: '2026-01-01T00:00:00Z' };
    await writeFile(path, `${JSON.stringify(record)}\n`);

    let caught: unknown;
    try {
      await acquireFileLock(path, 'patch p_1.patch');
    } catch (error) {
      caught = error;
    }
    expect(caught).to.be.instanceOf(BusyError);
    expect((caught as Error).message).to.include(`patch p_1.patch is busy: process ${record.pid} on not-${hostname()} has held`);
    expect(JSON.parse(await readFile(path, 'utf8')).token).to.equal('remote');
  });

  it('takes over a lock naming this pid from an earlier process', async () => {
    const { store, dir } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });
    await writeFile(join(dir, '.lock'), `${JSON.stringify({ pid: process.pid, token: 'earlier', acquiredAt: '2026-01-01T00:00:00Z' })}\n`);

    const held = await store.lock();
    await held.release();
  });
});
