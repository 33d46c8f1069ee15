import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { expect } from 'chai';

import { InvalidArgumentError } from '../../errors/index.js';
import { readInputFile } from '../../input/index.js';
import { makeTempDir } from '../support/index.js';

const execFileAsync = promisify(execFile);

async function readError(path: string): Promise<Error> {
  const error = await readInputFile(path, 'source image').catch((caught: unknown) => caught);
  expect(error).to.be.instanceOf(InvalidArgumentError);
  return error as Error;
}

describe('input files', () => {
  let dir: { path: string; remove: () => Promise<void> };

  beforeEach(async () => {
    dir = await makeTempDir();
  });

  afterEach(async () => {
    await dir.remove();
  });

  it('reads a regular file whole', async () => {
    const path = join(dir.path, 'image.bin');
    await writeFile(path, Buffer.from([1, 2, 3]));
    expect(await readInputFile(path, 'source image')).to.deep.equal(Buffer.from([1, 2, 3]));
  });

  it('rejects a missing file', async () => {
    const error = await readError(join(dir.path, 'missing.bin'));
    expect(error.message).to.match(/^cannot read source image .*missing\.bin: ENOENT/);
  });

  it('rejects a directory', async () => {
    const error = await readError(dir.path);
    expect(error.message).to.equal(`invalid source image ${dir.path}: expected a file, got a directory`);
  });

  it('rejects a character device', async () => {
    const error = await readError('/dev/zero');
    expect(error.message).to.equal('invalid source image /dev/zero: expected a file, got a character device');
  });

  it('rejects a FIFO without blocking', async () => {
    // Opening a FIFO for reading waits for a writer, which never comes here.
    const path = join(dir.path, 'pipe');
    await execFileAsync('mkfifo', [path]);
    const error = await readError(path);
    expect(error.message).to.equal(`invalid source image ${path}: expected a file, got a FIFO`);
  });
});
