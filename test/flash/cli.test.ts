import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { expect } from 'chai';

import { FlashStore } from '../../flash/index.js';
import { FIRMWARE_DIR, makeTempDir, runProgram } from '../support/index.js';
import { makeVendorKey, stageImage, startLockHolder } from './fixtures.js';

const OLD_IMAGE = join(FIRMWARE_DIR, 'rpi4-recovery-2026-05-17.bin');
const OLD_IMAGE_BYTES = 100_140;

describe('flash CLI', () => {
  let work: { path: string; remove: () => Promise<void> };
  let flashDir: string;
  let keyPath: string;
  let keyId: string;

  function initArgs(overrides: Record<string, string> = {}): string[] {
    const options: Record<string, string> = { flash: flashDir, size: '1M', platform: 'rpi4', image: 'recovery.bin', version: '2026-05-17', from: OLD_IMAGE, 'trust-key': keyPath, ...overrides };
    return ['flash', 'init', ...Object.entries(options).flatMap(([name, value]) => [`--${name}`, value])];
  }

  beforeEach(async () => {
    work = await makeTempDir('snmp-upgrade-flash-cli-');
    flashDir = join(work.path, 'flash');
    ({ publicPath: keyPath, keyId } = await makeVendorKey(work.path));
  });

  afterEach(async () => {
    await work.remove();
  });

  it('initializes a flash and shows it as text', async () => {
    const init = await runProgram(initArgs());
    expect(init.stderr).to.equal('');
    expect(init.status).to.equal(0);
    expect(init.stdout).to.include('image recovery.bin version 2026-05-17');

    const show = await runProgram(['flash', 'show', '--flash', flashDir]);
    expect(show.status).to.equal(0);
    expect(show.stdout).to.match(/^platform +rpi4$/m);
    expect(show.stdout).to.match(/^running image +recovery\.bin \(version 2026-05-17\)$/m);
    expect(show.stdout).to.match(/^boot image +recovery\.bin \(version 2026-05-17\)$/m);
    expect(show.stdout).to.match(/^capacity +1,048,576 bytes$/m);
    expect(show.stdout).to.match(/^free +948,436 bytes$/m);
    expect(show.stdout).to.match(/^security counter +0$/m);
    expect(show.stdout).to.include(keyId);
    expect(show.stdout).to.include('100,140 bytes');
  });

  it('shows a flash as JSON', async () => {
    expect((await runProgram(initArgs())).status).to.equal(0);
    const expectedSha = (await readFile(join(FIRMWARE_DIR, 'SHA256SUMS'), 'utf8')).split('\n').find((line) => line.includes('rpi4-recovery-2026-05-17'))!.split(/\s+/)[0];

    const show = await runProgram(['flash', 'show', '--flash', flashDir, '--json']);
    expect(show.status).to.equal(0);
    const shown = JSON.parse(show.stdout) as Record<string, unknown>;
    expect(shown).to.include({
      platform: 'rpi4',
      runningImage: 'recovery.bin',
      runningVersion: '2026-05-17',
      bootImage: 'recovery.bin',
      bootVersion: '2026-05-17',
      bootSha256: expectedSha,
      capacityBytes: 1_048_576,
      freeBytes: 1_048_576 - OLD_IMAGE_BYTES,
      securityCounter: '0',
    });
    expect(shown.images).to.deep.equal([{ name: 'recovery.bin', platform: 'rpi4', version: '2026-05-17', size: OLD_IMAGE_BYTES, sha256: expectedSha }]);
    expect(shown.trustedKeyIds).to.deep.equal([keyId]);
  });

  it('reloads into the boot image', async () => {
    expect((await runProgram(initArgs())).status).to.equal(0);
    const store = await FlashStore.open(flashDir);
    await store.installImage(store.stagingPath('image'), await stageImage(store, 'next.bin', '2026-08-04', 2000));
    await store.setBootImage('next.bin');

    const reload = await runProgram(['flash', 'reload', '--flash', flashDir]);
    expect(reload.stderr).to.equal('');
    expect(reload.status).to.equal(0);
    expect(reload.stdout).to.include('was recovery.bin, now running image next.bin version 2026-08-04');
    const shown = JSON.parse((await runProgram(['flash', 'show', '--flash', flashDir, '--json'])).stdout) as Record<string, unknown>;
    expect(shown.runningImage).to.equal('next.bin');
  });

  it('reports recovery actions of show', async () => {
    expect((await runProgram(initArgs())).status).to.equal(0);
    await writeFile(join(flashDir, 'staging', 'image.part'), Buffer.alloc(10));

    const show = await runProgram(['flash', 'show', '--flash', flashDir]);
    expect(show.status).to.equal(0);
    expect(show.stderr).to.equal('snmp-upgrade: recovery: removed staging/image.part (10 bytes) left by an interrupted install\n');
  });

  const rejected: Array<[string, Record<string, string>, string, string]> = [
    ['an image one byte too large', { size: String(OLD_IMAGE_BYTES - 1) }, 'insufficientFlash', 'needs 100,140 bytes, the flash size is 100,139 bytes'],
    ['an invalid size', { size: '16MB' }, 'invalidArgument', 'invalid size "16MB"'],
    ['a negative size', { size: '-1M' }, 'invalidArgument', 'invalid size "-1M"'],
    ['an image name with a slash', { image: '../x' }, 'invalidArgument', 'invalid image name "../x"'],
    ['an absolute image name', { image: '/abs' }, 'invalidArgument', 'invalid image name "/abs"'],
    ['a bad platform', { platform: 'rpi 4' }, 'invalidArgument', 'invalid platform "rpi 4"'],
    ['a missing key file', { 'trust-key': 'missing.pub' }, 'invalidArgument', 'cannot read key file missing.pub'],
    ['a missing image file', { from: 'missing.bin' }, 'invalidArgument', 'cannot read image file missing.bin'],
    ['a threshold above the keys', { threshold: '2' }, 'invalidArgument', 'invalid threshold 2'],
  ];
  for (const [label, overrides, cause, message] of rejected) {
    it(`init rejects ${label}`, async () => {
      const result = await runProgram(initArgs(overrides), { cwd: work.path });

      expect(result.status).to.equal(1);
      expect(result.stdout).to.equal('');
      expect(result.stderr.split('\n')).to.have.length(2);
      expect(result.stderr).to.include(message);
      expect(result.stderr).to.include(`(cause: ${cause})`);
      expect(existsSync(join(flashDir, 'nvram.json'))).to.equal(false);
    });
  }

  it('init rejects an existing flash', async () => {
    expect((await runProgram(initArgs())).status).to.equal(0);
    const before = await readFile(join(flashDir, 'nvram.json'), 'utf8');

    const again = await runProgram(initArgs({ image: 'other.bin' }));
    expect(again.status).to.equal(1);
    expect(again.stderr).to.include('already contains a flash');
    expect(again.stderr).to.include('(cause: invalidArgument)');
    expect(await readFile(join(flashDir, 'nvram.json'), 'utf8')).to.equal(before);
  });

  it('reload rejects a busy flash', async () => {
    expect((await runProgram(initArgs())).status).to.equal(0);
    const holder = await startLockHolder(flashDir);
    try {
      const reload = await runProgram(['flash', 'reload', '--flash', flashDir]);

      expect(reload.status).to.equal(1);
      expect(reload.stderr).to.include(`process ${holder.pid} has held`);
      expect(reload.stderr).to.include('(cause: busy)');
    } finally {
      holder.kill('SIGKILL');
      await once(holder, 'exit');
    }
  });

  it('show rejects a directory without a flash', async () => {
    const show = await runProgram(['flash', 'show', '--flash', work.path]);

    expect(show.status).to.equal(1);
    expect(show.stderr).to.include('nvram.json not found');
    expect(show.stderr).to.include('(cause: invalidArgument)');
  });
});
