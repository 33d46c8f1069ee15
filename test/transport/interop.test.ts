import { expect } from 'chai';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, copyFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { FileNotFoundError } from '../../errors/index.js';
import { defaultFetcher, joinPatchUrl, startPatchServer, type FetchOptions, type PatchServer } from '../../transport/index.js';
import { FIRMWARE_DIR, freeTcpPort, freeUdpPort, makeTempDir, requirePeer, requireTftpdHpa } from '../support/index.js';
import { expectRejection, sha256File, writeRandomFile } from './helpers.js';

const run = promisify(execFile);
const ATFTPD_CANDIDATES = ['/usr/sbin/atftpd'];
/** Over 32 MiB, so at blksize 512 the block number wraps past 65,535. */
const BIG_BYTES = 34_000_000;

/** Starts a peer TFTP server in the foreground and returns a function that stops it. */
async function startPeerServer(program: string, args: string[]): Promise<() => Promise<void>> {
  const child: ChildProcess = spawn(program, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  // The server needs a moment to bind; a request sent before that is resent by the client after its timeout.
  await new Promise((resolve) => setTimeout(resolve, 200));
  if (child.exitCode !== null) throw new Error(`${program} exited at start with status ${child.exitCode}: ${stderr}`);
  return async () => {
    child.kill('SIGTERM');
    await exited;
  };
}

describe('transport interop with real peers', function () {
  this.timeout(60_000);
  let dir: { path: string; remove: () => Promise<void> };
  let root: string;
  let bigDigest: string;
  let smallDigest: string;
  const expectedDigests = new Map<string, string>();
  const options = (extra: Partial<FetchOptions> = {}): FetchOptions => ({ maxBytes: 100_000_000, timeoutMs: 50_000, ...extra });

  before(async () => {
    dir = await makeTempDir();
    root = join(dir.path, 'patches');
    await mkdir(root);
    // in.tftpd and atftpd may switch to another user; the folder must stay readable for it.
    await chmod(dir.path, 0o755);
    smallDigest = await writeRandomFile(join(root, 'small.bin'), 3_000_017);
    bigDigest = await writeRandomFile(join(root, 'big.bin'), BIG_BYTES);
    for (const name of ['iwlwifi-cc-a0-67.ucode', 'iwlwifi-cc-a0-68.ucode']) {
      await copyFile(join(FIRMWARE_DIR, name), join(root, name));
    }
    for (const line of (await readFile(join(FIRMWARE_DIR, 'SHA256SUMS'), 'utf8')).split('\n')) {
      const [digest, name] = line.trim().split(/\s+\*?/);
      if (digest && name) expectedDigests.set(name, digest);
    }
  });
  after(() => dir?.remove());

  describe('this client against tftpd-hpa', () => {
    let stop: (() => Promise<void>) | undefined;
    let base: string;

    before(async function () {
      const program = requireTftpdHpa(this);
      const port = await freeUdpPort();
      stop = await startPeerServer(program, ['-L', '-a', `127.0.0.1:${port}`, '-s', root, '-u', 'root', '-B', '65464']);
      base = `tftp://127.0.0.1:${port}`;
    });
    after(() => stop?.());

    for (const blksize of [512, 1468]) {
      it(`fetches at blksize ${blksize}`, async () => {
        const staging = join(dir.path, `hpa-${blksize}`);
        const result = await defaultFetcher.fetchToFile(`${base}/small.bin`, staging, options({ tftp: { blksize } }));
        expect(result.bytes).to.equal(3_000_017);
        expect(await sha256File(staging)).to.equal(smallDigest);
      });
    }

    it('fetches a file over 32 MB at blksize 512', async () => {
      const staging = join(dir.path, 'hpa-big');
      await defaultFetcher.fetchToFile(`${base}/big.bin`, staging, options({ tftp: { blksize: 512 } }));
      expect(await sha256File(staging)).to.equal(bigDigest);
    });

    it('fetches the real firmware image', async () => {
      const staging = join(dir.path, 'hpa-fw');
      const url = joinPatchUrl(base, 'iwlwifi-cc-a0-68.ucode');
      const result = await defaultFetcher.fetchToFile(url, staging, options());
      expect(result.bytes).to.equal(1_314_392);
      expect(await sha256File(staging)).to.equal(expectedDigests.get('iwlwifi-cc-a0-68.ucode'));
    });

    it('maps its file-not-found error', async () => {
      await expectRejection(
        defaultFetcher.fetchToFile(`${base}/missing.bin`, join(dir.path, 'hpa-missing'), options()),
        FileNotFoundError,
        /not found: the server sent ERROR 1 "File not found"/,
      );
    });
  });

  describe('this client against atftpd', () => {
    let stop: (() => Promise<void>) | undefined;
    let base: string;

    before(async function () {
      const program = requirePeer(this, 'atftpd', ATFTPD_CANDIDATES);
      const port = await freeUdpPort();
      stop = await startPeerServer(program, ['--daemon', '--no-fork', '--port', String(port), '--bind-address', '127.0.0.1', '--user', 'root', '--group', 'root', '--logfile', '/dev/null', root]);
      base = `tftp://127.0.0.1:${port}`;
    });
    after(() => stop?.());

    for (const [blksize, windowsize] of [[512, 1], [1468, 1], [1468, 8]]) {
      it(`fetches at blksize ${blksize} windowsize ${windowsize}`, async () => {
        const staging = join(dir.path, `atftpd-${blksize}-${windowsize}`);
        const sizes: Array<number | undefined> = [];
        await defaultFetcher.fetchToFile(`${base}/small.bin`, staging, options({ tftp: { blksize, windowsize }, onSize: (size) => void sizes.push(size) }));
        expect(sizes).to.deep.equal([3_000_017]);
        expect(await sha256File(staging)).to.equal(smallDigest);
      });
    }
  });

  describe('peer clients against this server', () => {
    let server: PatchServer;
    let port: number;
    let log: string[];

    before(async () => {
      log = [];
      server = await startPatchServer({ root, tftp: { host: '127.0.0.1', port: 0 }, log: (line) => log.push(line) });
      port = server.tftpAddress!.port;
    });
    after(() => server?.close());

    // tftp-hpa 5.2's client has no blksize option: it always transfers 512 byte blocks.
    it('serves tftp-hpa a file over 32 MB', async function () {
      const tftp = requirePeer(this, 'tftp', ['/usr/bin/tftp']);
      const local = join(dir.path, 'tftp-hpa-big');
      await run(tftp, ['-m', 'binary', '127.0.0.1', String(port), '-c', 'get', 'big.bin', local]);
      expect(await sha256File(local)).to.equal(bigDigest);
      expect(log.at(-1)).to.match(/file="big\.bin" bytes=34000000 duration_ms=\d+ result=ok$/);
    });

    for (const [blksize, windowsize] of [[512, 1], [1468, 1], [1468, 8]]) {
      it(`serves atftp at blksize ${blksize} windowsize ${windowsize}`, async function () {
        const atftp = requirePeer(this, 'atftp', ['/usr/bin/atftp']);
        const local = join(dir.path, `atftp-${blksize}-${windowsize}`);
        const extra = windowsize > 1 ? ['--option', `windowsize ${windowsize}`] : [];
        await run(atftp, ['--option', `blksize ${blksize}`, ...extra, '-g', '-r', 'small.bin', '-l', local, '127.0.0.1', String(port)]);
        expect(await sha256File(local)).to.equal(smallDigest);
      });
    }

    it('serves atftp a file over 32 MB at blksize 1468', async function () {
      const atftp = requirePeer(this, 'atftp', ['/usr/bin/atftp']);
      const local = join(dir.path, 'atftp-big');
      await run(atftp, ['--option', 'blksize 1468', '-g', '-r', 'big.bin', '-l', local, '127.0.0.1', String(port)]);
      expect(await sha256File(local)).to.equal(bigDigest);
    });
  });

  describe('real firmware through snmp-upgrade serve', () => {
    let server: PatchServer;
    before(async () => {
      server = await startPatchServer({ root, tftp: { host: '127.0.0.1', port: await freeUdpPort() }, http: { host: '127.0.0.1', port: await freeTcpPort() } });
    });
    after(() => server?.close());

    for (const scheme of ['tftp', 'http']) {
      for (const name of ['iwlwifi-cc-a0-67.ucode', 'iwlwifi-cc-a0-68.ucode']) {
        it(`fetches ${name} over ${scheme}`, async () => {
          const address = scheme === 'tftp' ? server.tftpAddress! : server.httpAddress!;
          const url = joinPatchUrl(`${scheme}://127.0.0.1:${address.port}/`, name);
          const staging = join(dir.path, `${scheme}-${name}`);
          await defaultFetcher.fetchToFile(url, staging, options());
          expect(await sha256File(staging)).to.equal(expectedDigests.get(name));
        });
      }
    }
  });
});
