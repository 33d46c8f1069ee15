import { expect } from 'chai';
import { readFile, rm, writeFile } from 'node:fs/promises';

import { FlashStore, type FlashIo } from '../../flash/index.js';
import { FlashDevice, runUpgrade, type UpgradeOutcome, type UpgradeRequest, type UpgradeStatus } from '../../upgrade/index.js';
import { generateKeyPair } from '../../verifier/index.js';
import { makeTempDir } from '../support/index.js';
import { makeBench, publishPatch, sha256, snapshotFlash, type Bench } from './fixtures.js';

async function upgrade(bench: Bench, overrides: Partial<UpgradeRequest> = {}, io?: FlashIo): Promise<{ outcome: UpgradeOutcome; statuses: UpgradeStatus[] }> {
  const store = await FlashStore.open(bench.flashDir, io ? { io } : {});
  const lock = await store.lock();
  const statuses: UpgradeStatus[] = [];
  try {
    const outcome = await runUpgrade(
      store,
      { action: 'upgrade', image: 'core.bin', urlPrefix: bench.urlPrefix, ...overrides },
      { onStatus: (status) => statuses.push(status) },
    );
    return { outcome, statuses };
  } finally {
    await lock.release();
  }
}

/** Runs an upgrade that must fail with `cause`, and checks that flash is byte for byte as it was. */
async function expectFailureLeavesFlash(bench: Bench, cause: string, reason: RegExp, overrides: Partial<UpgradeRequest> = {}, io?: FlashIo) {
  const before = await snapshotFlash(bench.flashDir);
  const { outcome, statuses } = await upgrade(bench, overrides, io);
  expect(outcome.result, outcome.failReason).to.equal(cause === 'aborted' ? 'aborted' : 'failed');
  expect(outcome.failCause).to.equal(cause);
  expect(outcome.failReason).to.match(reason);
  expect(statuses.at(-1)?.phase).to.equal('failed');
  expect(await snapshotFlash(bench.flashDir)).to.deep.equal(before);
  return outcome;
}

/** Stores a spare image so that exactly `leaveFree` bytes of flash stay free. */
async function fillFlash(bench: Bench, leaveFree: number): Promise<void> {
  const store = await FlashStore.open(bench.flashDir);
  const filler = Buffer.alloc((await store.freeBytes()) - leaveFree, 0x5a);
  const lock = await store.lock();
  try {
    const writer = await store.createStagingWriter('image');
    await writer.write(filler);
    await writer.finish();
    await store.installImage(writer.path, { name: 'spare.bin', platform: 'rtr-9000', version: '0.9', size: filler.length, sha256: sha256(filler) });
  } finally {
    await lock.release();
  }
  expect(await store.freeBytes()).to.equal(leaveFree);
}

describe('upgrade engine', function () {
  this.timeout(60_000);
  let temp: { path: string; remove: () => Promise<void> };
  let bench: Bench;

  beforeEach(async () => {
    temp = await makeTempDir();
    bench = await makeBench(temp.path);
  });
  afterEach(async () => temp.remove());

  it('installs the target and sets it to boot', async () => {
    await publishPatch(bench, { from: 0, to: 1, sourceVersion: '1.0', counter: 5n });
    const { outcome, statuses } = await upgrade(bench);
    expect(outcome.result, outcome.failReason).to.equal('installed');
    expect(outcome.patchName).to.equal('rtr-9000_1.0.patch');
    expect(outcome.bootImage).to.equal('rtr-9000_1.1.bin');

    const store = await FlashStore.open(bench.flashDir);
    const state = store.state();
    expect(state.bootImage).to.equal('rtr-9000_1.1.bin');
    expect(state.runningImage).to.equal('core.bin');
    expect(state.settings.securityCounter).to.equal(5n);
    expect(sha256(await readFile(store.imagePath('rtr-9000_1.1.bin')))).to.equal(sha256(bench.images[1]!));
    expect(sha256(await readFile(store.imagePath('core.bin')))).to.equal(sha256(bench.images[0]!));

    const phases = [...new Set(statuses.map((status) => status.phase))];
    expect(phases).to.deep.equal(['fetching', 'verifying', 'checkingSpace', 'applying', 'installing', 'installedPendingReload']);
  });

  it('reports already at target on a second run', async () => {
    await publishPatch(bench, { from: 0, to: 1, sourceVersion: '1.0', counter: 5n });
    expect((await upgrade(bench)).outcome.result).to.equal('installed');
    const before = await snapshotFlash(bench.flashDir);
    const { outcome } = await upgrade(bench);
    expect(outcome.result).to.equal('alreadyAtTarget');
    expect(await snapshotFlash(bench.flashDir)).to.deep.equal(before);
  });

  it('stores the counter when already at target', async () => {
    // The state a power loss leaves between the boot switch and storing the counter.
    await publishPatch(bench, { from: 0, to: 1, sourceVersion: '1.0', counter: 5n });
    const store = await FlashStore.open(bench.flashDir);
    const lock = await store.lock();
    const writer = await store.createStagingWriter('image');
    await writer.write(bench.images[1]!);
    await writer.finish();
    const target = bench.images[1]!;
    await store.installImage(writer.path, { name: 'rtr-9000_1.1.bin', platform: 'rtr-9000', version: '1.1', size: target.length, sha256: sha256(target) });
    await store.setBootImage('rtr-9000_1.1.bin');
    await lock.release();
    expect(store.state().settings.securityCounter).to.equal(0n);

    const { outcome } = await upgrade(bench);
    expect(outcome.result).to.equal('alreadyAtTarget');
    expect((await FlashStore.open(bench.flashDir)).state().settings.securityCounter).to.equal(5n);
  });

  it('check runs every test and writes nothing', async () => {
    await publishPatch(bench, { from: 0, to: 1, sourceVersion: '1.0', counter: 5n });
    const before = await snapshotFlash(bench.flashDir);
    const { outcome } = await upgrade(bench, { action: 'check' });
    expect(outcome.result, outcome.failReason).to.equal('checked');
    expect(await snapshotFlash(bench.flashDir)).to.deep.equal(before);
  });

  it('rejects a patch for another platform', async () => {
    // Same version string and same file name, but made for another device class.
    await publishPatch(bench, { from: 0, to: 1, sourceVersion: '1.0', counter: 5n, platform: 'sw-48', saveAs: 'rtr-9000_1.0.patch' });
    await expectFailureLeavesFlash(bench, 'wrongPlatform', /wrong platform: device is rtr-9000, patch is for sw-48/);
  });

  it('rejects a misnamed patch by its source digest', async () => {
    // The 1.1 -> 1.2 patch, saved under the name the 1.0 device asks for.
    await publishPatch(bench, { from: 1, to: 2, sourceVersion: '1.0', counter: 5n });
    await expectFailureLeavesFlash(bench, 'sourceMismatch', /source image mismatch: patch expects sha256 [0-9a-f]{64} \(65,536 bytes\)|\(66,536 bytes\)/);
  });

  it('rejects a source image with one flipped byte', async () => {
    await publishPatch(bench, { from: 0, to: 1, sourceVersion: '1.0', counter: 5n });
    const store = await FlashStore.open(bench.flashDir);
    const imagePath = store.imagePath('core.bin');
    const damaged = await readFile(imagePath);
    damaged[1234]! ^= 0x20;
    await writeFile(imagePath, damaged);
    await expectFailureLeavesFlash(bench, 'sourceMismatch', /flash:core\.bin is [0-9a-f]{64} \(65,536 bytes\)/);
  });

  it('rejects a signed downgrade', async () => {
    await (await FlashStore.open(bench.flashDir)).updateSettings({ securityCounter: 9n });
    await publishPatch(bench, { from: 0, to: 1, sourceVersion: '1.0', counter: 8n });
    await expectFailureLeavesFlash(bench, 'downgradeRefused', /security counter 8, flash has accepted 9/);
  });

  it('rejects an old patch replayed after the upgrade', async () => {
    await publishPatch(bench, { from: 0, to: 1, sourceVersion: '1.0', counter: 5n });
    expect((await upgrade(bench)).outcome.result).to.equal('installed');
    await (await FlashStore.open(bench.flashDir)).reload();

    // The device now runs 1.1; an attacker serves the old 1.0 -> 1.1 patch under the 1.1 name.
    await publishPatch(bench, { from: 0, to: 1, sourceVersion: '1.0', counter: 5n, saveAs: 'rtr-9000_1.1.patch' });
    await expectFailureLeavesFlash(bench, 'sourceMismatch', /source image mismatch/, { image: 'rtr-9000_1.1.bin' });

    // And a validly signed patch back to 1.0's content with a lower counter is a downgrade.
    bench.images[3] = bench.images[0]!;
    await publishPatch(bench, { from: 1, to: 3, sourceVersion: '1.1', targetVersion: '1.0-rebuild', counter: 4n });
    await expectFailureLeavesFlash(bench, 'downgradeRefused', /counter 4, flash has accepted 5/, { image: 'rtr-9000_1.1.bin' });
  });

  it('rejects a patch by an untrusted key', async () => {
    await publishPatch(bench, { from: 0, to: 1, sourceVersion: '1.0', counter: 5n, key: generateKeyPair() });
    await expectFailureLeavesFlash(bench, 'untrustedKey', /not signed by a trusted key/);
  });

  it('rejects a patch by a revoked key', async () => {
    await (await FlashStore.open(bench.flashDir)).updateSettings({ revokedKeyIds: [bench.key.keyId] });
    await publishPatch(bench, { from: 0, to: 1, sourceVersion: '1.0', counter: 5n });
    await expectFailureLeavesFlash(bench, 'revokedKey', /is revoked/);
  });

  it('reports a missing patch as file not found', async () => {
    await expectFailureLeavesFlash(bench, 'fileNotFound', /rtr-9000_1\.0\.patch/);
  });

  it('rejects an image that is not on flash', async () => {
    await expectFailureLeavesFlash(bench, 'imageNotFound', /nosuch\.bin/, { image: 'nosuch.bin' });
  });

  for (const image of ['../x', '/etc/passwd', 'images/core.bin']) {
    it(`rejects the image name ${image}`, async () => {
      await expectFailureLeavesFlash(bench, 'invalidArgument', /invalid image name/, { image });
    });
  }

  it('rejects a URL prefix with a scheme not allowed', async () => {
    await expectFailureLeavesFlash(bench, 'badUrl', /scheme/, { urlPrefix: 'ftp://127.0.0.1/patches/' });
  });

  it('refuses flash one byte too small', async () => {
    const { bytes } = await publishPatch(bench, { from: 0, to: 1, sourceVersion: '1.0', counter: 5n });
    const needed = bytes.length + bench.images[1]!.length;
    await fillFlash(bench, needed - 1);

    const outcome = await expectFailureLeavesFlash(
      bench,
      'insufficientFlash',
      new RegExp(`need ${bench.images[1]!.length.toLocaleString('en-US')} bytes for the target image, ${(bench.images[1]!.length - 1).toLocaleString('en-US')} bytes free`),
    );
    expect(outcome.failReason).to.match(/deleting spare images \(spare\.bin\) would free/);

    // Asked explicitly, the engine deletes the spare image and the upgrade fits.
    const { outcome: withRoom } = await upgrade(bench, { makeRoom: true });
    expect(withRoom.result, withRoom.failReason).to.equal('installed');
    const after = (await FlashStore.open(bench.flashDir)).state();
    expect(after.images.map((record) => record.name).sort()).to.deep.equal(['core.bin', 'rtr-9000_1.1.bin']);
  });

  it('installs when flash has exactly the room', async () => {
    const { bytes } = await publishPatch(bench, { from: 0, to: 1, sourceVersion: '1.0', counter: 5n });
    await fillFlash(bench, bytes.length + bench.images[1]!.length);
    const { outcome } = await upgrade(bench);
    expect(outcome.result, outcome.failReason).to.equal('installed');
    expect(await (await FlashStore.open(bench.flashDir)).freeBytes()).to.equal(bytes.length);
  });

  it('fails cleanly on ENOSPC after N bytes of the new image', async () => {
    await publishPatch(bench, { from: 0, to: 1, sourceVersion: '1.0', counter: 5n });
    let imageBytes = 0;
    const failing: FlashIo = {
      async write(handle, data, position) {
        // The patch download goes through the transport; only image staging writes come here after it.
        imageBytes += data.length;
        if (imageBytes > 20_000) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
        const { bytesWritten } = await handle.write(data, 0, data.length, position);
        return bytesWritten;
      },
    };
    await expectFailureLeavesFlash(bench, 'flashWriteError', /ENOSPC/, {}, failing);
  });

  it('removes a staging file left by a crash and then upgrades', async () => {
    await publishPatch(bench, { from: 0, to: 1, sourceVersion: '1.0', counter: 5n });
    const store = await FlashStore.open(bench.flashDir);
    await writeFile(store.stagingPath('image'), Buffer.alloc(5000, 1));
    const { outcome } = await upgrade(bench);
    expect(outcome.result, outcome.failReason).to.equal('installed');
  });

  it('aborts at the next safe point and cleans staging', async () => {
    await publishPatch(bench, { from: 0, to: 1, sourceVersion: '1.0', counter: 5n });
    const controller = new AbortController();
    controller.abort();
    await expectFailureLeavesFlash(bench, 'aborted', /aborted/, { signal: controller.signal });
  });

  it('refuses a second operation as busy', async () => {
    await publishPatch(bench, { from: 0, to: 1, sourceVersion: '1.0', counter: 5n });
    const holder = await FlashStore.open(bench.flashDir);
    const lock = await holder.lock();
    try {
      const device = await FlashDevice.open(bench.flashDir);
      const finished = new Promise<UpgradeOutcome>((resolve) => device.on('finished', resolve));
      device.start('upgrade');
      const outcome = await finished;
      expect(outcome.failCause).to.equal('busy');
      expect(device.status().phase).to.equal('failed');
    } finally {
      await lock.release();
    }

    const device = await FlashDevice.open(bench.flashDir);
    await device.updateSettings({ urlPrefix: bench.urlPrefix });
    device.start('upgrade');
    expect(() => device.start('upgrade')).to.throw(/already running/);
    const outcome = await device.settled();
    expect(outcome?.result, outcome?.failReason).to.equal('installed');
  });

  it('leaves no staging after a failed fetch', async () => {
    await rm(bench.patchDir, { recursive: true });
    await expectFailureLeavesFlash(bench, 'fileNotFound', /not found/);
  });
});
