import { expect } from 'chai';

import { FlashStore } from '../../flash/index.js';
import { FlashDevice, type UpgradeStatus } from '../../upgrade/index.js';
import { makeTempDir } from '../support/index.js';
import { makeBench, publishPatch, type Bench } from './fixtures.js';

describe('flash device', function () {
  this.timeout(60_000);
  let temp: { path: string; remove: () => Promise<void> };
  let bench: Bench;

  beforeEach(async () => {
    temp = await makeTempDir();
    bench = await makeBench(temp.path);
    await publishPatch(bench, { from: 0, to: 1, sourceVersion: '1.0', counter: 5n });
  });
  afterEach(async () => temp.remove());

  it('shows the operation right after start', async () => {
    const device = await FlashDevice.open(bench.flashDir);
    await device.updateSettings({ urlPrefix: bench.urlPrefix });
    device.start('check');
    expect(device.status().phase).to.equal('fetching');
    expect(device.status().action).to.equal('check');
    const outcome = await device.settled();
    expect(outcome?.result, outcome?.failReason).to.equal('checked');
  });

  it('names the patch in the started event', async () => {
    const device = await FlashDevice.open(bench.flashDir);
    await device.updateSettings({ urlPrefix: bench.urlPrefix });
    const started = new Promise<UpgradeStatus>((resolve) => device.on('started', resolve));
    device.start('upgrade');
    const status = await started;
    expect(status.patchName).to.equal('rtr-9000_1.0.patch');
    expect(status.sourceVersion).to.equal('1.0');
    await device.settled();
  });

  it('sees flash changes made by another process', async () => {
    const device = await FlashDevice.open(bench.flashDir);
    await device.updateSettings({ urlPrefix: bench.urlPrefix });
    device.start('upgrade');
    await device.settled();

    // `snmp-upgrade flash reload` in another process: the agent's device must report the new running image.
    await (await FlashStore.open(bench.flashDir)).reload();
    const inventory = await device.inventory();
    expect(inventory.runningImage).to.equal('rtr-9000_1.1.bin');
    expect(inventory.runningVersion).to.equal('1.1');
  });

  it('rejects a URL prefix of the wrong scheme or length', async () => {
    const device = await FlashDevice.open(bench.flashDir);
    expect(() => device.validateUrlPrefix('ftp://127.0.0.1/')).to.throw(/scheme/);
    expect(() => device.validateUrlPrefix('')).to.throw(/expected 1 to 255 characters, got 0/);
    expect(() => device.validateUrlPrefix(`http://127.0.0.1/${'a'.repeat(250)}/`)).to.throw(/got 268/);

    const refused = await device.updateSettings({ flashImage: '../x' }).then(() => undefined, (error: Error) => error);
    expect(refused?.message).to.match(/invalid image name/);
    expect((await device.settings()).flashImage).to.equal('');
  });

  it('clears the URL prefix with an empty one', async () => {
    const device = await FlashDevice.open(bench.flashDir);
    await device.updateSettings({ urlPrefix: bench.urlPrefix });
    expect((await device.settings()).urlPrefix).to.equal(bench.urlPrefix);

    await device.updateSettings({ urlPrefix: '' });
    expect((await device.settings()).urlPrefix).to.equal('');
  });
});
