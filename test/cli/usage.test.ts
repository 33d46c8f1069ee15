import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { FIRMWARE_DIR, makeTempDir, runProgram } from '../support/index.js';

describe('command line usage', function () {
  this.timeout(30_000);

  it('rejects an unknown option before acting', async () => {
    const dir = await makeTempDir();
    try {
      await runProgram(['keygen', '--out', join(dir.path, 'k')]);
      const flash = join(dir.path, 'flash');
      const result = await runProgram([
        'flash', 'init', '--flash', flash, '--size', '16M', '--platform', 'p', '--image', 'a.bin', '--version', '1',
        '--from', join(FIRMWARE_DIR, 'rpi4-recovery-2026-05-17.bin'), '--trust-key', join(dir.path, 'k.pub'), '--bogus',
      ]);
      expect(result.status).to.equal(2);
      expect(result.stderr).to.equal('snmp-upgrade: Unknown argument: bogus\n');
      expect(existsSync(flash)).to.equal(false);
    } finally {
      await dir.remove();
    }
  });

  it('rejects an option given twice', async () => {
    const result = await runProgram(['flash', 'show', '--flash', 'a', '--flash', 'b']);
    expect(result.status).to.equal(2);
    expect(result.stderr).to.equal('snmp-upgrade: option --flash given more than once: expected one value, got a, b\n');
  });

  it('names the text given for a number option', async () => {
    const result = await runProgram(['manager', 'upgrade', '--inventory', 'devices.csv', '--poll', 'abc']);
    expect(result.status).to.equal(2);
    expect(result.stderr).to.equal('snmp-upgrade: invalid --poll: expected a number, got "abc"\n');
  });

  it('rejects a kebab-case option given twice', async () => {
    const result = await runProgram(['manager', 'upgrade', '--inventory', 'devices.csv', '--phase-timeout', '5', '--phase-timeout', '6']);
    expect(result.status).to.equal(2);
    expect(result.stderr).to.equal('snmp-upgrade: option --phase-timeout given more than once: expected one value, got 5, 6\n');
  });

  it('asks for a command when given none', async () => {
    const result = await runProgram([]);
    expect(result.status).to.equal(2);
    expect(result.stderr).to.match(/a command is required/);
  });

  it('names an unknown option given without a command', async () => {
    const result = await runProgram(['--versoin']);
    expect(result.status).to.equal(2);
    expect(result.stderr).to.equal('snmp-upgrade: Unknown argument: versoin\n');
  });

  it('lists every role in its help', async () => {
    const result = await runProgram(['--help']);
    expect(result.status).to.equal(0);
    for (const command of ['keygen', 'patch', 'flash', 'upgrade', 'agent', 'serve', 'manager', 'demo']) {
      expect(result.stdout).to.match(new RegExp(`snmp-upgrade ${command}`));
    }
  });

  it('lists only patch subcommands in patch help', async () => {
    const result = await runProgram(['patch', '--help']);
    expect(result.status).to.equal(0);
    for (const command of ['create', 'sign', 'inspect', 'verify']) {
      expect(result.stdout).to.match(new RegExp(`snmp-upgrade patch ${command}`));
    }
    expect(result.stdout).not.to.match(/snmp-upgrade agent/);
  });

  it('rejects a misspelt patch subcommand', async () => {
    const result = await runProgram(['patch', 'creat']);
    expect(result.status).to.equal(2);
    expect(result.stderr).to.equal('snmp-upgrade: Unknown argument: creat\n');
  });

  it('asks for a patch subcommand', async () => {
    const result = await runProgram(['patch']);
    expect(result.status).to.equal(2);
    expect(result.stderr).to.equal('snmp-upgrade: a patch command is required: create, sign, inspect or verify\n');
  });

  it('prints a failure as JSON with --json', async () => {
    const result = await runProgram(['manager', 'status', '--inventory', '/nonexistent/devices.csv', '--json']);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.match(/^snmp-upgrade: cannot read inventory \/nonexistent\/devices.csv: .* \(cause: invalidArgument\)\n$/);
    const line = JSON.parse(result.stdout);
    expect(line.event).to.equal('error');
    expect(line.exitStatus).to.equal(1);
    expect(line.cause).to.equal('invalidArgument');
    expect(line.message).to.match(/^cannot read inventory \/nonexistent\/devices.csv: /);
  });

  it('prints a usage error as JSON with --json', async () => {
    const result = await runProgram(['manager', 'status', '--inventory', 'devices.csv', '--json', '--bogus']);
    expect(result.status).to.equal(2);
    expect(result.stderr).to.equal('snmp-upgrade: Unknown argument: bogus\n');
    const line = JSON.parse(result.stdout);
    expect(line.event).to.equal('error');
    expect(line.exitStatus).to.equal(2);
    expect(line.message).to.equal('Unknown argument: bogus');
    expect(line).not.to.have.property('cause');
  });

  describe('option values', () => {
    let dir: { path: string; remove: () => Promise<void> };
    let inventory: string;

    before(async () => {
      dir = await makeTempDir();
      inventory = join(dir.path, 'devices.csv');
      await writeFile(inventory, 'host,port,community\n127.0.0.1,1161,private\n');
    });
    after(async () => dir.remove());

    const cases: Array<[string, string[], string]> = [
      ['manager status --timeout 0', ['manager', 'status', '--timeout', '0'], 'invalid --timeout: expected a number of seconds above 0 and at most 86400 (one day), got 0'],
      ['manager status --timeout 1e12', ['manager', 'status', '--timeout', '1e12'], 'got 1000000000000'],
      ['manager upgrade --phase-timeout 1e9', ['manager', 'upgrade', '--url', 'file:///srv/patches/', '--phase-timeout', '1e9'], 'invalid --phase-timeout'],
      ['manager upgrade --image ../x', ['manager', 'upgrade', '--url', 'file:///srv/patches/', '--image', '../x'], 'invalid image name "../x"'],
      ['manager upgrade --target-version "a b"', ['manager', 'upgrade', '--url', 'file:///srv/patches/', '--target-version', 'a b'], 'invalid version "a b"'],
    ];
    for (const [name, args, message] of cases) {
      it(`rejects ${name}`, async () => {
        const result = await runProgram([...args, '--inventory', inventory]);
        expect(result.status).to.equal(1);
        expect(result.stderr).to.include(message);
        expect(result.stderr).to.match(/\(cause: invalidArgument\)\n$/);
      });
    }

    it('rejects upgrade --blksize 70000 for a file: prefix too', async () => {
      const result = await runProgram(['upgrade', 'core.bin', 'file:///srv/patches/', '--flash', join(dir.path, 'no-flash'), '--blksize', '70000']);
      expect(result.status).to.equal(1);
      expect(result.stderr).to.include('invalid TFTP blksize 70000: expected an integer from 8 to 65464');
    });

    it('rejects upgrade --timeout 1e9 before opening the flash', async () => {
      const result = await runProgram(['upgrade', 'core.bin', 'file:///srv/patches/', '--flash', join(dir.path, 'no-flash'), '--timeout', '1e9']);
      expect(result.status).to.equal(1);
      expect(result.stderr).to.include('invalid --timeout: expected a number of seconds above 0 and at most 86400 (one day), got 1000000000');
    });
  });

  it('rejects a misspelt command', async () => {
    const result = await runProgram(['pacth', 'create']);
    expect(result.status).to.equal(2);
    expect(result.stderr).to.equal('snmp-upgrade: Unknown arguments: pacth, create\n');
  });
});
