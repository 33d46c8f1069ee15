import { existsSync } from 'node:fs';
import { readdir, readFile, rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { expect } from 'chai';

import {
  FlashWriteError,
  ImageNotFoundError,
  InvalidArgumentError,
  TargetDigestMismatchError,
  UpgradeError,
  WrongPlatformError,
} from '../../errors/index.js';
import { FlashStore, parseSize, type FlashIo } from '../../flash/index.js';
import { digestFile } from '../../verifier/index.js';
import { makeTempDir } from '../support/index.js';
import { makeFlash, PLATFORM, stageImage, writeImageFile } from './fixtures.js';

/** Awaits a promise that must reject with `type`, and returns the error. */
async function rejection<T extends UpgradeError>(promise: Promise<unknown>, type: abstract new (...args: never[]) => T): Promise<T> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(type);
    return error as T;
  }
  expect.fail(`expected a ${type.name}, but the call succeeded`);
}

function thrown<T extends UpgradeError>(call: () => unknown, type: abstract new (...args: never[]) => T): T {
  try {
    call();
  } catch (error) {
    expect(error).to.be.instanceOf(type);
    return error as T;
  }
  expect.fail(`expected a ${type.name}, but the call succeeded`);
}

describe('parseSize', () => {
  const valid: Array<[string, number]> = [
    ['1310076', 1_310_076],
    ['64K', 65_536],
    ['16M', 16_777_216],
    ['1G', 1_073_741_824],
    ['16m', 16_777_216],
  ];
  for (const [text, bytes] of valid) {
    it(`parses ${text}`, () => {
      expect(parseSize(text)).to.equal(bytes);
    });
  }

  for (const text of ['', '16MB', '-1', '1.5M', '0', 'abc', '16 M', '99999999999G']) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      const error = thrown(() => parseSize(text), InvalidArgumentError);
      expect(error.message).to.include(JSON.stringify(text));
    });
  }
});

describe('FlashStore', function () {
  let work: { path: string; remove: () => Promise<void> };

  beforeEach(async () => {
    work = await makeTempDir('snmp-upgrade-flash-');
  });

  afterEach(async () => {
    await work.remove();
  });

  describe('init and open', () => {
    it('creates a flash whose single image runs and boots', async () => {
      const { store, running } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 100_000 });
      const state = store.state();

      expect(state.platform).to.equal(PLATFORM);
      expect(state.runningImage).to.equal(running.name);
      expect(state.bootImage).to.equal(running.name);
      expect(state.images).to.deep.equal([running]);
      expect(state.settings.securityCounter).to.equal(0n);
      expect(await digestFile(store.imagePath(running.name))).to.deep.equal({ size: running.size, sha256: running.sha256 });
    });

    it('rejects a directory that already contains a flash', async () => {
      const { dir, trustedKey } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });
      const before = await readFile(join(dir, 'nvram.json'), 'utf8');

      const error = await rejection(
        FlashStore.init(dir, { capacityBytes: 1024 * 1024, platform: PLATFORM, imageName: 'x.bin', version: '2', fromFile: join(work.path, 'a.bin'), trustedKeys: [trustedKey] }),
        InvalidArgumentError,
      );
      expect(error.message).to.include('already contains a flash');
      expect(await readFile(join(dir, 'nvram.json'), 'utf8')).to.equal(before);
    });

    it('rejects an image one byte larger than the flash', async () => {
      const record = await writeImageFile(join(work.path, 'big.bin'), 'big.bin', '1', 4097);
      const dir = join(work.path, 'flash');

      const error = await rejection(
        FlashStore.init(dir, { capacityBytes: 4096, platform: PLATFORM, imageName: record.name, version: '1', fromFile: join(work.path, 'big.bin'), trustedKeys: ['ab'.repeat(32)] }),
        UpgradeError,
      );
      expect(error.code).to.equal('insufficientFlash');
      expect(error.message).to.include('4,097 bytes');
      expect(error.message).to.include('4,096 bytes');
      expect(existsSync(dir)).to.equal(false);
    });

    it('removes what a failed init wrote', async () => {
      const record = await writeImageFile(join(work.path, 'a.bin'), 'a.bin', '1', 200_000);
      const dir = join(work.path, 'flash');
      const io: FlashIo = {
        async write() {
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        },
      };

      const error = await rejection(
        FlashStore.init(dir, { capacityBytes: 1024 * 1024, platform: PLATFORM, imageName: record.name, version: '1', fromFile: join(work.path, 'a.bin'), trustedKeys: ['ab'.repeat(32)] }, { io }),
        FlashWriteError,
      );
      expect(error.message).to.include('ENOSPC');
      expect(existsSync(dir)).to.equal(false);
    });

    it('rejects a directory that is not a flash', async () => {
      const error = await rejection(FlashStore.open(work.path), InvalidArgumentError);
      expect(error.message).to.include('nvram.json not found');
    });

    it('rejects an NVRAM image name that leaves images/', async () => {
      const { dir } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });
      const nvram = JSON.parse(await readFile(join(dir, 'nvram.json'), 'utf8')) as { images: Array<{ name: string }> };
      nvram.images[0]!.name = '../../etc/passwd';
      await writeFile(join(dir, 'nvram.json'), JSON.stringify(nvram));

      const error = await rejection(FlashStore.open(dir), InvalidArgumentError);
      expect(error.message).to.include('invalid flash NVRAM');
      expect(error.message).to.include('../../etc/passwd');
    });

    it('rejects an NVRAM security counter that is not decimal', async () => {
      const { dir } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });
      const nvram = JSON.parse(await readFile(join(dir, 'nvram.json'), 'utf8')) as { settings: { securityCounter: unknown } };
      nvram.settings.securityCounter = 5;
      await writeFile(join(dir, 'nvram.json'), JSON.stringify(nvram));

      const error = await rejection(FlashStore.open(dir), InvalidArgumentError);
      expect(error.message).to.include('settings.securityCounter: expected a string, got 5');
    });

    it('rejects a threshold above the number of keys', async () => {
      await writeImageFile(join(work.path, 'a.bin'), 'a.bin', '1', 10);
      const error = await rejection(
        FlashStore.init(join(work.path, 'flash'), { capacityBytes: 4096, platform: PLATFORM, imageName: 'a.bin', version: '1', fromFile: join(work.path, 'a.bin'), trustedKeys: ['ab'.repeat(32)], threshold: 2 }),
        InvalidArgumentError,
      );
      expect(error.message).to.include('threshold 2');
    });
  });

  describe('freeBytes', () => {
    it('is the capacity minus images and staging files', async () => {
      const { store, running } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 100_000 });
      expect(await store.freeBytes()).to.equal(1024 * 1024 - running.size);

      await writeFile(store.stagingPath('patch'), Buffer.alloc(5000));
      expect(await store.freeBytes()).to.equal(1024 * 1024 - running.size - 5000);
    });

    it('never exceeds the host file system free space', async () => {
      const { store } = await makeFlash(work.path, { capacityBytes: Number.MAX_SAFE_INTEGER, imageBytes: 1000 });
      const host = await statfs(work.path);

      expect(await store.freeBytes()).to.be.at.most(host.bavail * host.bsize + 1024 * 1024);
      expect(await store.freeBytes()).to.be.below(Number.MAX_SAFE_INTEGER - 1000);
    });

    it('stops a staged image one byte too large', async () => {
      const image = 200_000;
      const { store, dir } = await makeFlash(work.path, { capacityBytes: image * 2 - 1, imageBytes: image });
      const nvramBefore = await readFile(join(dir, 'nvram.json'), 'utf8');
      expect(await store.freeBytes()).to.equal(image - 1);

      const error = await rejection(stageImage(store, 'b.bin', '2.0', image), FlashWriteError);
      expect(error.message).to.include('ENOSPC');
      expect(await readdir(join(dir, 'staging'))).to.deep.equal([]);
      expect(await readFile(join(dir, 'nvram.json'), 'utf8')).to.equal(nvramBefore);
    });

    it('lets an image that fits exactly be installed', async () => {
      const image = 200_000;
      const { store } = await makeFlash(work.path, { capacityBytes: image * 2, imageBytes: image });

      const record = await stageImage(store, 'b.bin', '2.0', image);
      await store.installImage(store.stagingPath('image'), record);
      expect(await store.freeBytes()).to.equal(0);
    });
  });

  describe('installImage', () => {
    it('installs, boots and reloads a new image', async () => {
      const { store, dir, running } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 100_000 });
      const record = await stageImage(store, 'b.bin', '2.0', 120_000);

      await store.installImage(store.stagingPath('image'), record);
      await store.setBootImage('b.bin');
      const reopened = await FlashStore.open(dir);
      expect(reopened.state().bootImage).to.equal('b.bin');
      expect(reopened.state().runningImage).to.equal(running.name);
      expect(reopened.image('b.bin')).to.deep.equal(record);
      expect(await readdir(join(dir, 'staging'))).to.deep.equal([]);

      await reopened.reload();
      expect((await FlashStore.open(dir)).state().runningImage).to.equal('b.bin');
    });

    it('rejects a staged image whose digest differs', async () => {
      const { store, dir } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });
      const record = await stageImage(store, 'b.bin', '2.0', 5000);
      const nvramBefore = await readFile(join(dir, 'nvram.json'), 'utf8');

      const error = await rejection(store.installImage(store.stagingPath('image'), { ...record, sha256: '0'.repeat(64) }), TargetDigestMismatchError);
      expect(error.message).to.include(record.sha256);
      expect(existsSync(join(dir, 'images', 'b.bin'))).to.equal(false);
      expect(await readdir(join(dir, 'staging'))).to.deep.equal([]);
      expect(await readFile(join(dir, 'nvram.json'), 'utf8')).to.equal(nvramBefore);
    });

    it('never replaces the running or the boot image', async () => {
      const { store, running } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });
      const spare = await stageImage(store, 'b.bin', '2.0', 1000);
      await store.installImage(store.stagingPath('image'), spare);
      await store.setBootImage('b.bin');

      for (const name of [running.name, 'b.bin']) {
        const record = await stageImage(store, name, '3.0', 1000);
        const error = await rejection(store.installImage(store.stagingPath('image'), record), InvalidArgumentError);
        expect(error.message).to.include(`cannot install over image ${name}`);
        expect(await digestFile(store.imagePath(name))).to.deep.equal({ size: store.image(name).size, sha256: store.image(name).sha256 });
      }
    });

    it('rejects an image for another platform', async () => {
      const { store } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });
      const record = await stageImage(store, 'b.bin', '2.0', 1000);

      await rejection(store.installImage(store.stagingPath('image'), { ...record, platform: 'otherbox' }), WrongPlatformError);
    });

    it('rejects a staging path outside staging/', async () => {
      const { store } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });
      const record = await writeImageFile(join(work.path, 'b.bin'), 'b.bin', '2.0', 1000);

      const error = await rejection(store.installImage(join(work.path, 'b.bin'), record), InvalidArgumentError);
      expect(error.message).to.include('invalid staging path');
    });
  });

  describe('image names', () => {
    for (const name of ['../x', '/abs', 'a/b', '..', '']) {
      it(`rejects ${JSON.stringify(name)}`, async () => {
        const { store } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });

        thrown(() => store.image(name), InvalidArgumentError);
        thrown(() => store.imagePath(name), InvalidArgumentError);
        await rejection(store.setBootImage(name), InvalidArgumentError);
        await rejection(store.removeImage(name), InvalidArgumentError);
        const record = await stageImage(store, 'b.bin', '2.0', 100);
        await rejection(store.installImage(store.stagingPath('image'), { ...record, name }), InvalidArgumentError);
      });
    }

    it('reports an unknown image as not found', async () => {
      const { store } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });

      const error = thrown(() => store.image('missing.bin'), ImageNotFoundError);
      expect(error.message).to.include('a.bin');
      await rejection(store.setBootImage('missing.bin'), ImageNotFoundError);
    });
  });

  describe('write failures', () => {
    /** Returns a write call that fails with ENOSPC once `limit` bytes have been written through it while armed. */
    function failingIo(limit: number): FlashIo & { armed: boolean } {
      let written = 0;
      return {
        armed: false,
        async write(handle, data, position) {
          if (this.armed && written + data.length > limit) {
            throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
          }
          if (this.armed) written += data.length;
          const result = await handle.write(data, 0, data.length, position);
          return result.bytesWritten;
        },
      };
    }

    it('removes a staging file when ENOSPC hits after N bytes', async () => {
      const io = failingIo(150_000);
      const { store, dir } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000, open: { io } });
      const nvramBefore = await readFile(join(dir, 'nvram.json'), 'utf8');
      io.armed = true;

      const error = await rejection(stageImage(store, 'b.bin', '2.0', 300_000), FlashWriteError);
      expect(error.message).to.include('ENOSPC');
      expect(error.message).to.include('after 131072 bytes');
      expect(await readdir(join(dir, 'staging'))).to.deep.equal([]);
      expect(await readFile(join(dir, 'nvram.json'), 'utf8')).to.equal(nvramBefore);
    });

    it('keeps nvram.json when its rewrite fails', async () => {
      const io = failingIo(0);
      const { store, dir } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000, open: { io } });
      const nvramBefore = await readFile(join(dir, 'nvram.json'), 'utf8');
      io.armed = true;

      const error = await rejection(store.updateSettings({ urlPrefix: 'tftp://127.0.0.1/patches/' }), FlashWriteError);
      expect(error.message).to.include('ENOSPC');
      expect(await readFile(join(dir, 'nvram.json'), 'utf8')).to.equal(nvramBefore);
      expect(await readdir(dir)).to.have.members(['images', 'staging', 'nvram.json']);
      expect(store.state().settings.urlPrefix).to.equal('');
    });
  });

  describe('recovery at open', () => {
    it('removes staging and temporary leftovers', async () => {
      const { dir, running } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });
      await writeFile(join(dir, 'staging', 'image.part'), Buffer.alloc(3000));
      await writeFile(join(dir, 'nvram.json.4242.tmp'), '{"trunc');
      await writeFile(join(dir, 'images', 'orphan.bin'), Buffer.alloc(100));

      const store = await FlashStore.open(dir);
      expect(await readdir(join(dir, 'staging'))).to.deep.equal([]);
      expect(await readdir(join(dir, 'images'))).to.deep.equal([running.name]);
      expect(await readdir(dir)).to.have.members(['images', 'staging', 'nvram.json']);
      expect(store.recovery.ran).to.equal(true);
      expect(store.recovery.actions).to.have.length(3);
      expect(store.recovery.actions[0]).to.include('staging/image.part (3000 bytes)');
    });

    it('drops the record of a missing spare image', async () => {
      const { store, dir } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });
      await store.installImage(store.stagingPath('image'), await stageImage(store, 'b.bin', '2.0', 1000));
      await rm(join(dir, 'images', 'b.bin'));

      const reopened = await FlashStore.open(dir);
      expect(reopened.state().images.map((image) => image.name)).to.deep.equal(['a.bin']);
      expect(reopened.recovery.actions.join('\n')).to.include('dropped image b.bin');
    });

    it('keeps the record of a missing running image', async () => {
      const { dir, running } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });
      await rm(join(dir, 'images', running.name));

      const reopened = await FlashStore.open(dir);
      expect(reopened.state().runningImage).to.equal(running.name);
      expect(reopened.image(running.name)).to.deep.equal(running);
      expect(reopened.recovery.actions.join('\n')).to.include(`running image ${running.name}: its file is missing`);
    });

    it('boots the running image when the boot image is corrupt', async () => {
      const { store, dir, running } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });
      await store.installImage(store.stagingPath('image'), await stageImage(store, 'b.bin', '2.0', 1000));
      await store.setBootImage('b.bin');
      await writeFile(join(dir, 'images', 'b.bin'), Buffer.alloc(1000));

      const reopened = await FlashStore.open(dir);
      expect(reopened.state().bootImage).to.equal(running.name);
      expect(reopened.recovery.bootFallback?.from).to.equal('b.bin');
      expect(reopened.recovery.bootFallback?.to).to.equal(running.name);
      expect(reopened.recovery.bootFallback?.reason).to.include('has sha256');
      expect((await FlashStore.open(dir)).state().bootImage).to.equal(running.name);
    });

    it('refuses a reload into a corrupt boot image', async () => {
      const { store, dir, running } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });
      await store.installImage(store.stagingPath('image'), await stageImage(store, 'b.bin', '2.0', 1000));
      await store.setBootImage('b.bin');
      await writeFile(join(dir, 'images', 'b.bin'), Buffer.alloc(1000));

      const error = await rejection(store.reload(), TargetDigestMismatchError);
      expect(error.message).to.include('reload rejected');
      expect(store.state().runningImage).to.equal(running.name);
      expect(store.state().bootImage).to.equal(running.name);
    });
  });

  describe('removeImage', () => {
    it('rejects the running and the boot image', async () => {
      const { store, running } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });
      await store.installImage(store.stagingPath('image'), await stageImage(store, 'b.bin', '2.0', 1000));
      await store.setBootImage('b.bin');

      const runningError = await rejection(store.removeImage(running.name), InvalidArgumentError);
      expect(runningError.message).to.include('running image');
      const bootError = await rejection(store.removeImage('b.bin'), InvalidArgumentError);
      expect(bootError.message).to.include('boot image');
      expect(store.state().images).to.have.length(2);
    });

    it('removes a spare image and its file', async () => {
      const { store, dir } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });
      await store.installImage(store.stagingPath('image'), await stageImage(store, 'b.bin', '2.0', 1000));

      await store.removeImage('b.bin');
      expect(store.state().images.map((image) => image.name)).to.deep.equal(['a.bin']);
      expect(existsSync(join(dir, 'images', 'b.bin'))).to.equal(false);
    });
  });

  describe('updateSettings', () => {
    it('persists settings across open', async () => {
      const { store, dir, trustedKey } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });
      const secondKey = 'cd'.repeat(32);

      await store.updateSettings({ urlPrefix: 'tftp://127.0.0.1/p/', flashImage: 'a.bin', trustedKeys: [trustedKey, secondKey.toUpperCase()], threshold: 2, securityCounter: 2n ** 63n, revokedKeyIds: ['00112233445566AA'] });
      const settings = (await FlashStore.open(dir)).state().settings;
      expect(settings).to.deep.equal({
        urlPrefix: 'tftp://127.0.0.1/p/',
        flashImage: 'a.bin',
        trustedKeys: [trustedKey, secondKey],
        revokedKeyIds: ['00112233445566aa'],
        threshold: 2,
        securityCounter: 2n ** 63n,
      });
    });

    it('reaches another store after refresh', async () => {
      const { store, dir } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });
      const other = await FlashStore.open(dir);

      await store.updateSettings({ securityCounter: 3n });
      expect(other.state().settings.securityCounter).to.equal(0n);
      await other.refresh();
      expect(other.state().settings.securityCounter).to.equal(3n);
    });

    const invalid: Array<[string, object, string]> = [
      ['a lower security counter', { securityCounter: 0n }, 'can only grow'],
      ['a threshold above the keys', { threshold: 2 }, 'threshold 2'],
      ['a threshold of zero', { threshold: 0 }, 'threshold 0'],
      ['no trusted keys', { trustedKeys: [] }, 'at least one key'],
      ['a short key', { trustedKeys: ['abcd'] }, '64 lowercase hex digits'],
      ['a key listed twice', { trustedKeys: ['ab'.repeat(32), 'AB'.repeat(32)], threshold: 2 }, 'listed twice'],
      ['a bad revoked key id', { revokedKeyIds: ['xyz'] }, '16 lowercase hex digits'],
      ['a flash image with a slash', { flashImage: '../a.bin' }, 'invalid image name'],
      ['a URL prefix with a newline', { urlPrefix: 'tftp://127.0.0.1/\nforged' }, 'control characters'],
    ];
    for (const [label, update, message] of invalid) {
      it(`rejects ${label}`, async () => {
        const { store, dir } = await makeFlash(work.path, { capacityBytes: 1024 * 1024, imageBytes: 1000 });
        await store.updateSettings({ securityCounter: 1n });
        const nvramBefore = await readFile(join(dir, 'nvram.json'), 'utf8');

        const error = await rejection(store.updateSettings(update), InvalidArgumentError);
        expect(error.message).to.include(message);
        expect(await readFile(join(dir, 'nvram.json'), 'utf8')).to.equal(nvramBefore);
      });
    }
  });
});
