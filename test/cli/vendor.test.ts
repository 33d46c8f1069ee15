import { expect } from 'chai';
import { mkdir, readdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { acquireFileLock } from '../../flash/index.js';
import { FIRMWARE_DIR, makeTempDir, runProgram } from '../support/index.js';

const OLD = join(FIRMWARE_DIR, 'iwlwifi-cc-a0-67.ucode');
const NEW = join(FIRMWARE_DIR, 'iwlwifi-cc-a0-68.ucode');

describe('vendor commands', function () {
  this.timeout(120_000);
  let dir: { path: string; remove: () => Promise<void> };
  let patchPath: string;

  before(async () => {
    dir = await makeTempDir();
    for (const name of ['vendor', 'second']) {
      const keygen = await runProgram(['keygen', '--out', join(dir.path, name)]);
      expect(keygen.status, keygen.stderr).to.equal(0);
    }
    const created = await runProgram([
      'patch', 'create', '--old', OLD, '--new', NEW, '--platform', 'iwlwifi-cc-a0', '--from', '67', '--to', '68',
      '--counter', '68', '--key', join(dir.path, 'vendor.key'), '--out', join(dir.path, 'patches'),
    ]);
    expect(created.status, created.stderr).to.equal(0);
    patchPath = created.stdout.trim();
  });
  after(async () => dir.remove());

  it('keygen writes a secret key only its owner can read', async () => {
    const mode = (await stat(join(dir.path, 'vendor.key'))).mode & 0o777;
    expect(mode).to.equal(0o600);
    expect(await readFile(join(dir.path, 'vendor.pub'), 'utf8')).to.match(/^snmp-upgrade-ed25519-public [0-9a-f]{64}\n$/);
  });

  it('keygen refuses to overwrite a key', async () => {
    const again = await runProgram(['keygen', '--out', join(dir.path, 'vendor')]);
    expect(again.status).to.equal(1);
    expect(again.stderr).to.match(/vendor\.key already exists.*\(cause: invalidArgument\)/);
  });

  it('keygen into a missing folder writes nothing', async () => {
    const base = join(dir.path, 'missing', 'vendor');
    const result = await runProgram(['keygen', '--out', base]);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.match(/^snmp-upgrade: cannot write key file .*missing\/vendor\.key: ENOENT.*\(cause: invalidArgument\)\n$/);
    expect(await readdir(dir.path)).not.to.include('missing');
  });

  for (const out of ['', 'keys/']) {
    it(`keygen rejects --out ${JSON.stringify(out)}`, async () => {
      const result = await runProgram(['keygen', '--out', out], { cwd: dir.path });
      expect(result.status).to.equal(1);
      expect(result.stderr).to.include(`invalid --out ${JSON.stringify(out)}: expected a path ending in a base name, such as keys/vendor`);
      expect(await readdir(dir.path)).not.to.include('.key');
    });
  }

  it('keygen leaves no secret key when the public one exists', async () => {
    const base = join(dir.path, 'half');
    await writeFile(`${base}.pub`, 'someone else\'s key\n');
    const result = await runProgram(['keygen', '--out', base]);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.match(/half\.pub already exists; choose another --out \(cause: invalidArgument\)/);
    expect(await readdir(dir.path)).not.to.include('half.key');
    expect(await readFile(`${base}.pub`, 'utf8')).to.equal('someone else\'s key\n');
  });

  for (const command of [['inspect'], ['verify', '--trust-key', 'KEY.pub'], ['sign', '--key', 'KEY.key']]) {
    it(`${command[0]} names a missing patch file`, async () => {
      const missing = join(dir.path, 'no-such.patch');
      const args = command.map((arg) => arg.replace('KEY', join(dir.path, 'vendor')));
      const result = await runProgram(['patch', args[0], missing, ...args.slice(1)]);
      expect(result.status).to.equal(1);
      expect(result.stderr).to.match(/^snmp-upgrade: cannot read patch file .*no-such\.patch: ENOENT.*\(cause: invalidArgument\)\n$/);
    });
  }

  it('create names the patch for platform and source version', () => {
    expect(patchPath).to.equal(join(dir.path, 'patches', 'iwlwifi-cc-a0_67.patch'));
  });

  it('create refuses to replace a patch', async () => {
    const original = await readFile(patchPath);
    const again = await runProgram([
      'patch', 'create', '--old', OLD, '--new', NEW, '--platform', 'iwlwifi-cc-a0', '--from', '67', '--to', '68',
      '--counter', '69', '--key', join(dir.path, 'second.key'), '--out', join(dir.path, 'patches'),
    ]);
    expect(again.status).to.equal(1);
    expect(again.stderr).to.match(/iwlwifi-cc-a0_67\.patch already exists: expected a folder without it, or --force to replace it \(cause: invalidArgument\)/);
    expect((await readFile(patchPath)).equals(original), 'patch unchanged').to.equal(true);
  });

  it('create keeps a patch that appears meanwhile', async () => {
    // A dangling link passes the check before the encode, as a patch written by a second create meanwhile would.
    const folder = join(dir.path, 'taken');
    await mkdir(folder);
    const existing = join(folder, 'iwlwifi-cc-a0_67.patch');
    await symlink('patch-of-another-create', existing);
    const result = await runProgram([
      'patch', 'create', '--old', OLD, '--new', NEW, '--platform', 'iwlwifi-cc-a0', '--from', '67', '--to', '68',
      '--counter', '70', '--key', join(dir.path, 'vendor.key'), '--out', folder,
    ]);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.match(/iwlwifi-cc-a0_67\.patch already exists: expected a folder without it, or --force to replace it \(cause: invalidArgument\)/);
    expect(await readlink(existing)).to.equal('patch-of-another-create');
    expect(await readdir(folder), 'no temporary file left').to.deep.equal(['iwlwifi-cc-a0_67.patch']);
  });

  it('create --force replaces a patch', async () => {
    const folder = join(dir.path, 'replaced');
    const args = [
      'patch', 'create', '--old', OLD, '--new', NEW, '--platform', 'iwlwifi-cc-a0', '--from', '67', '--to', '68',
      '--key', join(dir.path, 'vendor.key'), '--out', folder,
    ];
    const first = await runProgram([...args, '--counter', '1']);
    expect(first.status).to.equal(0);
    const cosigned = await runProgram(['patch', 'sign', first.stdout.trim(), '--key', join(dir.path, 'second.key')]);
    expect(cosigned.status, cosigned.stderr).to.equal(0);
    const [, secondKeyId] = await signers(first.stdout.trim());

    const replaced = await runProgram([...args, '--counter', '2', '--force']);
    expect(replaced.status, replaced.stderr).to.equal(0);
    const inspected = await runProgram(['patch', 'inspect', replaced.stdout.trim(), '--json']);
    expect(JSON.parse(inspected.stdout).securityCounter).to.equal('2');
    expect(replaced.stderr).to.equal(
      `snmp-upgrade: note: replaced ${replaced.stdout.trim()}, whose signatures by ${secondKeyId} are gone; those keys sign the new patch with patch sign\n`,
    );
  });

  it('inspect shows the header and the signer', async () => {
    const inspected = await runProgram(['patch', 'inspect', patchPath, '--json']);
    expect(inspected.status, inspected.stderr).to.equal(0);
    const header = JSON.parse(inspected.stdout);
    expect(header.platform).to.equal('iwlwifi-cc-a0');
    expect(header.sourceSize).to.equal(1_310_076);
    expect(header.targetSize).to.equal(1_314_392);
    expect(header.targetSha256).to.equal('8b240d104f021260e9f4d359b16404682d44d0d6a1fbfdbfd329afbbbfd42c7f');
    expect(header.securityCounter).to.equal('68');
    expect(header.signers).to.have.length(1);
  });

  it('verify with the source passes on the real pair', async () => {
    const verified = await runProgram(['patch', 'verify', patchPath, '--trust-key', join(dir.path, 'vendor.pub'), '--source', OLD]);
    expect(verified.status, verified.stderr).to.equal(0);
    expect(verified.stdout).to.match(/^OK: iwlwifi-cc-a0 67 -> 68, .*gives sha256 8b240d10/);
  });

  it('verify names the cause when the source differs', async () => {
    const verified = await runProgram(['patch', 'verify', patchPath, '--trust-key', join(dir.path, 'vendor.pub'), '--source', NEW]);
    expect(verified.status).to.equal(1);
    expect(verified.stderr.trim().split('\n')).to.have.length(1);
    expect(verified.stderr).to.match(/source image mismatch: patch expects sha256 e05dacdc.* \(cause: sourceMismatch\)/);
  });

  it('verify fails with an untrusted key', async () => {
    const verified = await runProgram(['patch', 'verify', patchPath, '--trust-key', join(dir.path, 'second.pub')]);
    expect(verified.status).to.equal(1);
    expect(verified.stderr).to.match(/\(cause: untrustedKey\)/);
  });

  it('verify refuses a patch whose signer is revoked in upper case', async () => {
    const [keyId] = await signers(patchPath);
    const result = await runProgram(['patch', 'verify', patchPath, '--trust-key', join(dir.path, 'vendor.pub'), '--revoked-key-id', keyId.toUpperCase()]);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.match(new RegExp(`key ${keyId} is revoked.*\\(cause: revokedKey\\)`));
  });

  it('verify rejects a revoked key id that is not one', async () => {
    const result = await runProgram(['patch', 'verify', patchPath, '--trust-key', join(dir.path, 'vendor.pub'), '--revoked-key-id', '7b48']);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.equal('snmp-upgrade: invalid --revoked-key-id "7b48": expected a key id of 16 hex digits, as keygen prints (cause: invalidArgument)\n');
  });

  /** Returns the key ids of a patch file's signers, as `patch inspect --json` lists them. */
  async function signers(path: string): Promise<string[]> {
    const inspected = await runProgram(['patch', 'inspect', path, '--json']);
    expect(inspected.status, inspected.stderr).to.equal(0);
    return JSON.parse(inspected.stdout).signers;
  }

  it('sign keeps both signatures of concurrent signers', async () => {
    for (const name of ['third', 'fourth']) {
      const keygen = await runProgram(['keygen', '--out', join(dir.path, name)]);
      expect(keygen.status, keygen.stderr).to.equal(0);
    }
    for (let round = 0; round < 3; round++) {
      const copy = join(dir.path, `concurrent-${round}.patch`);
      await writeFile(copy, await readFile(patchPath));
      const results = await Promise.all(
        ['third', 'fourth'].map((name) => runProgram(['patch', 'sign', copy, '--key', join(dir.path, `${name}.key`)])),
      );
      for (const result of results) expect(result.status, result.stderr).to.equal(0);
      expect(await signers(copy), `signers after round ${round}`).to.have.length(3);
      expect(await readdir(dir.path)).not.to.include(`concurrent-${round}.patch.lock`);
    }
  });

  it('sign waits while another process holds the patch lock', async () => {
    const copy = join(dir.path, 'locked.patch');
    await writeFile(copy, await readFile(patchPath));
    const lock = await acquireFileLock(`${copy}.lock`, `patch ${copy}`);
    let signing;
    try {
      signing = runProgram(['patch', 'sign', copy, '--key', join(dir.path, 'second.key')]);
      await delay(1500);
      expect(await signers(copy), 'signers while the lock is held').to.have.length(1);
    } finally {
      await lock.release();
    }
    const signed = await signing;
    expect(signed.status, signed.stderr).to.equal(0);
    expect(await signers(copy)).to.have.length(2);
  });

  it('sign adds a second signer for a threshold of two', async () => {
    const copy = join(dir.path, 'two-signers.patch');
    await writeFile(copy, await readFile(patchPath));
    const trustBoth = ['--trust-key', join(dir.path, 'vendor.pub'), '--trust-key', join(dir.path, 'second.pub'), '--threshold', '2'];

    const before = await runProgram(['patch', 'verify', copy, ...trustBoth]);
    expect(before.stderr).to.match(/\(cause: thresholdNotMet\)/);

    const signed = await runProgram(['patch', 'sign', copy, '--key', join(dir.path, 'second.key')]);
    expect(signed.status, signed.stderr).to.equal(0);
    expect(signed.stdout).to.match(/now carries 2 signature/);

    const after = await runProgram(['patch', 'verify', copy, ...trustBoth]);
    expect(after.status, after.stderr).to.equal(0);

    const twice = await runProgram(['patch', 'sign', copy, '--key', join(dir.path, 'second.key')]);
    expect(twice.stderr).to.match(/already signed by key/);

    const unreachable = await runProgram(['patch', 'verify', copy, ...trustBoth.slice(0, -1), '3']);
    expect(unreachable.status, 'exit status').to.equal(1);
    expect(unreachable.stderr).to.match(/invalid signature threshold 3: expected at most the number of distinct trusted keys, 2 \(cause: invalidArgument\)/);
  });

  for (const [field, value] of [['--platform', 'a/b'], ['--platform', 'x\\y'], ['--from', '..'], ['--from', '%2e%2e'], ['--to', 'v\u0007'], ['--to', 'x'.repeat(65)]]) {
    it(`create refuses ${field} ${JSON.stringify(value)}`, async () => {
      const args = { '--platform': 'p', '--from': '1', '--to': '2', [field]: value };
      const created = await runProgram([
        'patch', 'create', '--old', OLD, '--new', NEW, '--counter', '1', '--key', join(dir.path, 'vendor.key'),
        '--out', join(dir.path, 'refused'), ...Object.entries(args).flat(),
      ]);
      expect(created.status).to.equal(1);
      expect(created.stderr).to.match(/invalid (platform|version).*\(cause: invalidArgument\)/);
    });
  }

  /** Runs patch create on the iwlwifi pair from version 1 to 2, with `extra` options added or replacing these. */
  function createWith(extra: Record<string, string | string[]>, flags: string[] = []): ReturnType<typeof runProgram> {
    const options: Record<string, string | string[]> = {
      old: OLD, new: NEW, platform: 'p', from: '1', to: '2', counter: '1', key: join(dir.path, 'vendor.key'), out: join(dir.path, 'out'), ...extra,
    };
    const args = Object.entries(options).flatMap(([name, value]) => (Array.isArray(value) ? value : [value]).flatMap((item) => [`--${name}`, item]));
    return runProgram(['patch', 'create', ...args, ...flags]);
  }

  it('create rejects a file as the output folder', async () => {
    const file = join(dir.path, 'not-a-folder');
    await writeFile(file, 'kept\n');
    const result = await createWith({ out: file });
    expect(result.status).to.equal(1);
    expect(result.stderr).to.match(/invalid --out .*not-a-folder: expected a folder for the patch, got a file \(cause: invalidArgument\)/);
    expect(await readFile(file, 'utf8')).to.equal('kept\n');
  });

  it('create --force leaves a folder of the patch name', async () => {
    const out = join(dir.path, 'folder-named');
    await mkdir(join(out, 'p_1.patch'), { recursive: true });
    const result = await createWith({ out }, ['--force']);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.match(/cannot write patch file .*p_1\.patch: EISDIR.*\(cause: invalidArgument\)/);
    expect((await stat(join(out, 'p_1.patch'))).isDirectory()).to.equal(true);
    expect(await readdir(out)).to.deep.equal(['p_1.patch']);
  });

  it('create rejects one signing key given twice', async () => {
    const key = join(dir.path, 'vendor.key');
    const result = await createWith({ key: [key, key], out: join(dir.path, 'twice') });
    expect(result.status).to.equal(1);
    expect(result.stderr).to.match(/signing key [0-9a-f]{16} given twice: expected each key once/);
    expect(await readdir(dir.path)).not.to.include('twice');
  });

  it('create rejects a character device as an image', async () => {
    const result = await createWith({ old: '/dev/zero', out: join(dir.path, 'endless') });
    expect(result.status).to.equal(1);
    expect(result.stderr).to.include('invalid source image /dev/zero: expected a file, got a character device (cause: invalidArgument)');
  });

  it('create rejects a key file without end', async () => {
    const result = await createWith({ key: '/dev/zero', out: join(dir.path, 'endless') });
    expect(result.status).to.equal(1);
    expect(result.stderr).to.include('invalid key file /dev/zero: expected one line of at most 4096 bytes, got more (cause: invalidArgument)');
  });

  it('create rejects a target version equal to the source', async () => {
    const result = await createWith({ to: '1', out: join(dir.path, 'same') });
    expect(result.status).to.equal(1);
    expect(result.stderr).to.match(/target version 1 is the source version: expected a patch to another version \(cause: invalidArgument\)/);
    expect(await readdir(dir.path)).not.to.include('same');
  });

  it('inspect names a folder given as the patch', async () => {
    const result = await runProgram(['patch', 'inspect', dir.path]);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.match(/^snmp-upgrade: cannot read patch file .*: EISDIR.*\(cause: invalidArgument\)\n$/);
  });

  it('verify names a folder given as the source', async () => {
    const result = await runProgram(['patch', 'verify', patchPath, '--trust-key', join(dir.path, 'vendor.pub'), '--source', dir.path]);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.match(/invalid source image .*: expected a file, got a folder or another kind of entry \(cause: invalidArgument\)/);
  });

  it('create refuses a counter beyond 64 bits', async () => {
    const created = await runProgram([
      'patch', 'create', '--old', OLD, '--new', NEW, '--platform', 'p', '--from', '1', '--to', '2',
      '--counter', '18446744073709551616', '--key', join(dir.path, 'vendor.key'), '--out', join(dir.path, 'refused'),
    ]);
    expect(created.stderr).to.match(/invalid --counter "18446744073709551616": expected a whole number from 0 to 2\^64-1/);
  });
});
