import { expect } from 'chai';
import { join } from 'node:path';

import { FIRMWARE_DIR, runProgram } from '../support/index.js';

describe('demo command', function () {
  this.timeout(90_000);

  it('upgrades the generated image end to end', async () => {
    const result = await runProgram(['demo']);
    expect(result.status, result.stdout + result.stderr).to.equal(0);
    expect(result.stdout).to.match(/operator: SET upgradeUrlPrefix\.0 = "tftp:\/\/127\.0\.0\.1:\d+\/"/);
    expect(result.stdout).to.match(/trap: upgradeStarted upgradePatchName="rtr-9000_1\.0\.0\.patch"/);
    expect(result.stdout).to.match(/trap: upgradeCompleted .*upgradeTargetVersion="1\.1\.0" upgradeOperStatus=installedPendingReload/);
    expect(result.stdout).to.match(/result: upgradeBootVersion\.0 = 1\.1\.0/);
    expect(result.stdout).to.match(/the digest equals the new image/);
    expect(result.stdout).to.not.match(/127\.0\.0\.1:16[12]\b/);
  });

  it('upgrades real images given with --old and --new', async () => {
    const result = await runProgram([
      'demo', '--old', join(FIRMWARE_DIR, 'rpi4-recovery-2026-05-17.bin'), '--new', join(FIRMWARE_DIR, 'rpi4-recovery-2026-08-04.bin'),
    ]);
    expect(result.status, result.stdout + result.stderr).to.equal(0);
    expect(result.stdout).to.match(/the digest equals the new image/);
  });

  it('rejects --old without --new', async () => {
    const result = await runProgram(['demo', '--old', join(FIRMWARE_DIR, 'rpi4-recovery-2026-05-17.bin')]);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.match(/--old and --new go together.*\(cause: invalidArgument\)/);
    expect(result.stdout, 'nothing made or printed before the error').to.equal('');
  });
});
