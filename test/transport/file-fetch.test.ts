import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import {
  AbortedError,
  AccessViolationError,
  FileNotFoundError,
  FileTooLargeError,
  InsufficientFlashError,
  InvalidArgumentError,
} from '../../errors/index.js';
import { defaultFetcher } from '../../transport/index.js';
import { makeTempDir } from '../support/index.js';
import { expectRejection } from './helpers.js';

describe('file: fetch', () => {
  let dir: { path: string; remove: () => Promise<void> };
  const content = randomBytes(3 * 1024 * 1024 + 17);

  beforeEach(async () => {
    dir = await makeTempDir();
    await writeFile(join(dir.path, 'a.patch'), content);
  });
  afterEach(() => dir.remove());

  const source = () => pathToFileURL(join(dir.path, 'a.patch')).href;
  const staging = () => join(dir.path, 'staging.bin');

  it('copies the file and reports size first', async () => {
    const events: string[] = [];
    let lastDone = 0;
    const result = await defaultFetcher.fetchToFile(source(), staging(), {
      maxBytes: 10_000_000,
      timeoutMs: 10_000,
      onSize: (total) => {
        events.push(`size ${total}`);
        expect(existsSync(staging())).to.equal(false);
      },
      onProgress: (done, total) => {
        lastDone = done;
        expect(total).to.equal(content.length);
      },
    });

    expect(result).to.deep.equal({ bytes: content.length, path: staging() });
    expect(events).to.deep.equal([`size ${content.length}`]);
    expect(lastDone).to.equal(content.length);
    expect((await readFile(staging())).equals(content)).to.equal(true);
  });

  it('rejects a file over maxBytes before copying', async () => {
    let sizeCalls = 0;
    const attempt = defaultFetcher.fetchToFile(source(), staging(), {
      maxBytes: 1000,
      timeoutMs: 10_000,
      onSize: () => {
        sizeCalls += 1;
      },
    });
    await expectRejection(attempt, FileTooLargeError, /at most 1,000 bytes, the server announced 3,145,745 bytes/);
    expect(sizeCalls).to.equal(0);
    expect(existsSync(staging())).to.equal(false);
  });

  it('lets onSize stop the transfer', async () => {
    const attempt = defaultFetcher.fetchToFile(source(), staging(), {
      maxBytes: 10_000_000,
      timeoutMs: 10_000,
      onSize: () => {
        throw new InsufficientFlashError('not enough flash');
      },
    });
    await expectRejection(attempt, InsufficientFlashError, /not enough flash/);
    expect(existsSync(staging())).to.equal(false);
  });

  it('reports a missing file', async () => {
    const missing = pathToFileURL(join(dir.path, 'missing.patch')).href;
    await expectRejection(defaultFetcher.fetchToFile(missing, staging(), { maxBytes: 1e6, timeoutMs: 10_000 }), FileNotFoundError, /not found/);
    expect(existsSync(staging())).to.equal(false);
  });

  it('reports a folder as not a file', async () => {
    const folder = pathToFileURL(dir.path).href;
    await expectRejection(defaultFetcher.fetchToFile(folder, staging(), { maxBytes: 1e6, timeoutMs: 10_000 }), FileNotFoundError, /not a regular file/);
  });

  it('reports an unreadable file', async function () {
    if (process.getuid?.() === 0) this.skip(); // root reads any file regardless of its mode
    await chmod(join(dir.path, 'a.patch'), 0o000);
    await expectRejection(defaultFetcher.fetchToFile(source(), staging(), { maxBytes: 1e7, timeoutMs: 10_000 }), AccessViolationError, /permission denied/);
  });

  it('removes the partial file on abort', async () => {
    const controller = new AbortController();
    const attempt = defaultFetcher.fetchToFile(source(), staging(), {
      maxBytes: 1e7,
      timeoutMs: 10_000,
      signal: controller.signal,
      onProgress: (done) => {
        if (done > 0) controller.abort();
      },
    });
    await expectRejection(attempt, AbortedError, /aborted/);
    expect(existsSync(staging())).to.equal(false);
  });

  it('rejects invalid limits', async () => {
    await expectRejection(defaultFetcher.fetchToFile(source(), staging(), { maxBytes: -1, timeoutMs: 10_000 }), InvalidArgumentError, /maxBytes/);
    await expectRejection(defaultFetcher.fetchToFile(source(), staging(), { maxBytes: 1, timeoutMs: 0 }), InvalidArgumentError, /timeoutMs/);
  });
});
