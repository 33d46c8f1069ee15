import { expect } from 'chai';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { FIRMWARE_DIR, freeTcpPort, makeTempDir, runProgram } from '../support/index.js';

const OLD = join(FIRMWARE_DIR, 'iwlwifi-cc-a0-67.ucode');
const NEW = join(FIRMWARE_DIR, 'iwlwifi-cc-a0-68.ucode');
const NEW_SHA256 = '8b240d104f021260e9f4d359b16404682d44d0d6a1fbfdbfd329afbbbfd42c7f';

describe('upgrade command', function () {
  this.timeout(120_000);
  let dir: { path: string; remove: () => Promise<void> };
  let flash: string;
  let prefix: string;

  before(async () => {
    dir = await makeTempDir();
    flash = join(dir.path, 'flash');
    const patches = join(dir.path, 'patches');
    prefix = `${pathToFileURL(patches).href}/`;
    const steps = [
      ['keygen', '--out', join(dir.path, 'vendor')],
      ['patch', 'create', '--old', OLD, '--new', NEW, '--platform', 'iwlwifi-cc-a0', '--from', '67', '--to', '68', '--counter', '68',
        '--key', join(dir.path, 'vendor.key'), '--out', patches],
      ['flash', 'init', '--flash', flash, '--size', '16M', '--platform', 'iwlwifi-cc-a0', '--image', 'iwlwifi-cc-a0.ucode',
        '--version', '67', '--from', OLD, '--trust-key', join(dir.path, 'vendor.pub')],
    ];
    for (const step of steps) {
      const result = await runProgram(step);
      expect(result.status, `${step.join(' ')}: ${result.stderr}`).to.equal(0);
    }
  });
  after(async () => dir.remove());

  it('check passes and writes nothing', async () => {
    const before = await runProgram(['flash', 'show', '--flash', flash, '--json']);
    const checked = await runProgram(['upgrade', 'iwlwifi-cc-a0.ucode', prefix, '--flash', flash, '--check']);
    expect(checked.status, checked.stderr).to.equal(0);
    expect(checked.stdout).to.match(/^check passed: iwlwifi-cc-a0_67\.patch \(67 -> 68\) is signed, matches the image and fits on flash/);
    const after = await runProgram(['flash', 'show', '--flash', flash, '--json']);
    expect(after.stdout).to.equal(before.stdout);
  });

  it('upgrades the real pair over file:', async () => {
    // The prefix without its final slash: the device adds it, and so does the line that reports the patch.
    const upgraded = await runProgram(['upgrade', 'iwlwifi-cc-a0.ucode', prefix.slice(0, -1), '--flash', flash]);
    expect(upgraded.status, upgraded.stderr).to.equal(0);
    expect(upgraded.stdout).to.equal(`installed iwlwifi-cc-a0_68.bin (67 -> 68) from ${prefix}iwlwifi-cc-a0_67.patch; it boots at the next reload\n`);

    const shown = await runProgram(['flash', 'show', '--flash', flash, '--json']);
    const state = JSON.parse(shown.stdout);
    expect(state.bootSha256).to.equal(NEW_SHA256);
    expect(state.bootVersion).to.equal('68');
    expect(state.runningVersion).to.equal('67');
    expect(state.securityCounter).to.equal('68');
  });

  it('reports already at target when run again', async () => {
    const again = await runProgram(['upgrade', 'iwlwifi-cc-a0.ucode', prefix, '--flash', flash, '--json']);
    expect(again.status, again.stderr).to.equal(0);
    const lines = again.stdout.trim().split('\n').map((line) => JSON.parse(line));
    const result = lines.at(-1);
    expect(result.event).to.equal('result');
    expect(result.result).to.equal('alreadyAtTarget');
    expect(lines.slice(0, -1).every((line) => line.event === 'status')).to.equal(true);
  });

  it('names the cause of a failure in one line', async () => {
    const failed = await runProgram(['upgrade', 'iwlwifi-cc-a0.ucode', `${pathToFileURL(dir.path).href}/empty/`, '--flash', flash]);
    expect(failed.status).to.equal(1);
    expect(failed.stderr).to.match(/snmp-upgrade: upgrade failed: .*iwlwifi-cc-a0_67\.patch.* \(cause: fileNotFound\)/);
  });

  it('hides credentials of the URL prefix', async () => {
    // Nothing listens on the port: the fetch fails, and neither the status lines nor the error show the password.
    const port = await freeTcpPort();
    const failed = await runProgram(['upgrade', 'iwlwifi-cc-a0.ucode', `http://operator:s3cret@127.0.0.1:${port}/patches/`, '--flash', flash, '--json', '--timeout', '5']);
    expect(failed.status).to.equal(1);
    expect(failed.stdout + failed.stderr).to.not.include('s3cret');
  });
});
