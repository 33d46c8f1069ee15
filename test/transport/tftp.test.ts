import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import {
  AbortedError,
  AccessViolationError,
  BadUrlError,
  FileNotFoundError,
  FileTooLargeError,
  InsufficientFlashError,
  TransferTimeoutError,
  TransferTruncatedError,
} from '../../errors/index.js';
import { defaultFetcher, startPatchServer, type FetchOptions, type PatchServer } from '../../transport/index.js';
import { freeUdpPort, makePatchFolder, type PatchFolder } from '../support/index.js';
import { expectRejection, sha256File, writeRandomFile } from './helpers.js';
import { RawTftpPeer, ack, data, decode, errorPacket, oack, rrq, wrq } from './tftp-peer.js';
import { startRelay } from './udp-relay.js';

/** Waits until `condition` holds, polling every 20 ms, for at most `timeoutMs`. */
async function waitFor(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Serves `payload` from a raw peer the RFC 1350 way: 512 byte blocks, one ACK each. */
async function servePlain(session: RawTftpPeer, clientPort: number, payload: Buffer): Promise<void> {
  const blocks = Math.floor(payload.length / 512) + 1;
  for (let block = 1; block <= blocks; block += 1) {
    session.send(data(block, payload.subarray((block - 1) * 512, block * 512)), clientPort);
    for (;;) {
      const reply = decode((await session.receive()).message);
      if (reply.opcode === 4 && reply.block === block) break;
    }
  }
}

describe('TFTP transport', function () {
  this.timeout(30_000);
  let dir: PatchFolder;
  let root: string;
  let staging: string;
  const content = randomBytes(3 * 1024 * 1024 + 1001);
  const options = (extra: Partial<FetchOptions> = {}): FetchOptions => ({ maxBytes: 100_000_000, timeoutMs: 20_000, ...extra });

  beforeEach(async () => {
    dir = await makePatchFolder(content);
    ({ root, staging } = dir);
  });
  afterEach(() => dir.remove());

  describe('client and server', () => {
    let server: PatchServer;
    let log: string[];
    let base: string;

    beforeEach(async () => {
      log = [];
      server = await startPatchServer({ root, tftp: { host: '127.0.0.1', port: 0, timeoutMs: 100, retries: 2 }, log: (line) => log.push(line) });
      base = `tftp://127.0.0.1:${server.tftpAddress!.port}`;
    });
    afterEach(() => server.close());

    for (const [blksize, windowsize] of [[1468, 1], [512, 1], [1468, 8], [512, 16]]) {
      it(`fetches at blksize ${blksize} windowsize ${windowsize}`, async () => {
        const sizes: Array<number | undefined> = [];
        const result = await defaultFetcher.fetchToFile(`${base}/a.patch`, staging, options({
          tftp: { blksize, windowsize },
          onSize: (total) => {
            sizes.push(total);
            expect(existsSync(staging)).to.equal(false);
          },
        }));

        expect(result.bytes).to.equal(content.length);
        expect(sizes).to.deep.equal([content.length]);
        expect((await readFile(staging)).equals(content)).to.equal(true);
        await waitFor(() => log.length === 1);
        expect(log[0]).to.match(/^tftp client=127\.0\.0\.1:\d+ file="a\.patch" bytes=3146729 duration_ms=\d+ result=ok$/);
      });
    }

    it('fetches empty and block-aligned files', async () => {
      await writeFile(join(root, 'empty.bin'), Buffer.alloc(0));
      await writeFile(join(root, 'aligned.bin'), content.subarray(0, 1468 * 10));

      const empty = await defaultFetcher.fetchToFile(`${base}/empty.bin`, staging, options());
      expect(empty.bytes).to.equal(0);
      expect(await readFile(staging)).to.have.length(0);

      const aligned = await defaultFetcher.fetchToFile(`${base}/aligned.bin`, staging, options({ tftp: { windowsize: 4 } }));
      expect(aligned.bytes).to.equal(1468 * 10);
      expect((await readFile(staging)).equals(content.subarray(0, 1468 * 10))).to.equal(true);
    });

    it('rejects a file over maxBytes from tsize', async () => {
      let sizeCalls = 0;
      await expectRejection(
        defaultFetcher.fetchToFile(`${base}/a.patch`, staging, options({ maxBytes: 1_000_000, onSize: () => void (sizeCalls += 1) })),
        FileTooLargeError,
        /expected at most 1,000,000 bytes, the server announced 3,146,729 bytes/,
      );
      expect(sizeCalls).to.equal(0);
      expect(existsSync(staging)).to.equal(false);
      await waitFor(() => log.length === 1);
      expect(log[0]).to.match(/bytes=0 .*result=client sent ERROR 3 "client stopped: fileTooLarge" to the OACK$/);
    });

    it('lets onSize stop the transfer', async () => {
      await expectRejection(
        defaultFetcher.fetchToFile(`${base}/a.patch`, staging, options({
          onSize: () => {
            throw new InsufficientFlashError('insufficient flash: expected 3,146,729 bytes free, got 1,000');
          },
        })),
        InsufficientFlashError,
        /insufficient flash/,
      );
      expect(existsSync(staging)).to.equal(false);
    });

    it('reports a missing file with the server text', async () => {
      await expectRejection(defaultFetcher.fetchToFile(`${base}/missing.patch`, staging, options()), FileNotFoundError, /not found: the server sent ERROR 1 "file not found"/);
      expect(existsSync(staging)).to.equal(false);
    });

    it('removes the partial file on abort', async () => {
      const controller = new AbortController();
      await expectRejection(
        defaultFetcher.fetchToFile(`${base}/a.patch`, staging, options({
          signal: controller.signal,
          onProgress: (done) => {
            if (done > 500_000) controller.abort();
          },
        })),
        AbortedError,
        /aborted after/,
      );
      expect(existsSync(staging)).to.equal(false);
      await waitFor(() => log.length === 1);
      expect(log[0]).to.match(/result=client sent ERROR 0 "client stopped: aborted"$/);
    });

    it('keeps requests inside the served folder', async () => {
      await mkdir(join(dir.path, 'patches-old'));
      await writeFile(join(dir.path, 'patches-old', 'secret.bin'), 'secret');
      await symlink(join(dir.path, 'patches-old', 'secret.bin'), join(root, 'link.bin'));
      const client = new RawTftpPeer();
      await client.bind();
      try {
        for (const name of ['../patches-old/secret.bin', '/../patches-old/secret.bin', '..\\patches-old\\secret.bin', 'link.bin', join(dir.path, 'patches-old', 'secret.bin')]) {
          client.send(rrq(name), server.tftpAddress!.port);
          const reply = decode((await client.receive()).message);
          expect(reply.opcode, name).to.equal(5);
          expect(reply.code, name).to.be.oneOf([1, 2]);
        }
      } finally {
        await client.close();
      }
    });

    it('rejects writes and netascii', async () => {
      const client = new RawTftpPeer();
      await client.bind();
      try {
        client.send(wrq('new.patch'), server.tftpAddress!.port);
        expect(decode((await client.receive()).message)).to.deep.include({ opcode: 5, code: 2, text: 'this server is read-only' });

        client.send(rrq('a.patch', 'netascii'), server.tftpAddress!.port);
        expect(decode((await client.receive()).message)).to.deep.include({ opcode: 5, code: 4 });
      } finally {
        await client.close();
      }
      expect(existsSync(join(root, 'new.patch'))).to.equal(false);
    });

    it('resends from the last acknowledged block', async () => {
      const client = new RawTftpPeer();
      await client.bind();
      try {
        client.send(rrq('a.patch', 'octet', { blksize: '512', windowsize: '8' }), server.tftpAddress!.port);
        const first = await client.receive();
        expect(decode(first.message).options).to.deep.equal({ blksize: '512', windowsize: '8' });
        const sessionPort = first.from.port;

        client.send(ack(0), sessionPort);
        const window: number[] = [];
        while (window.length < 8) window.push(decode((await client.receive()).message).block!);
        expect(window).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8]);

        // Block 4 was "lost": the ACK of block 3 must make the server send 4 to 11.
        client.send(ack(3), sessionPort);
        const resent: number[] = [];
        while (resent.length < 8) resent.push(decode((await client.receive()).message).block!);
        expect(resent).to.deep.equal([4, 5, 6, 7, 8, 9, 10, 11]);

        client.send(errorPacket(0, 'test done'), sessionPort);
      } finally {
        await client.close();
      }
    });

    it('serves others when clients vanish or fail', async () => {
      const vanishing = new RawTftpPeer();
      const failing = new RawTftpPeer();
      await vanishing.bind();
      await failing.bind();
      try {
        vanishing.send(rrq('a.patch', 'octet', { blksize: '1468' }), server.tftpAddress!.port);
        failing.send(rrq('a.patch', 'octet', { blksize: '1468' }), server.tftpAddress!.port);
        const offer = await failing.receive();
        failing.send(ack(0), offer.from.port);
        await failing.receive();
        failing.send(errorPacket(0, 'operator cancelled'), offer.from.port);

        const results = await Promise.all(
          Array.from({ length: 4 }, (_, i) => defaultFetcher.fetchToFile(`${base}/a.patch`, join(dir.path, `copy-${i}`), options({ tftp: { windowsize: i * 4 + 1 } }))),
        );
        for (const result of results) {
          expect((await readFile(result.path)).equals(content)).to.equal(true);
        }
        await waitFor(() => log.length === 6);
        expect(log.filter((line) => line.endsWith('result=ok'))).to.have.length(4);
        expect(log.some((line) => /result=timed out/.test(line))).to.equal(true);
        expect(log.some((line) => line.endsWith('result=client sent ERROR 0 "operator cancelled"'))).to.equal(true);
      } finally {
        await vanishing.close();
        await failing.close();
      }
    });

    it('rolls over past block 65,535', async function () {
      this.timeout(90_000);
      // 70 MB at blksize 512 is 136,719 blocks: the block number wraps to 0 twice.
      const digest = await writeRandomFile(join(root, 'big.bin'), 70_000_000);
      const result = await defaultFetcher.fetchToFile(`${base}/big.bin`, staging, options({ tftp: { blksize: 512 }, timeoutMs: 80_000 }));
      expect(result.bytes).to.equal(70_000_000);
      expect(await sha256File(staging)).to.equal(digest);
    });
  });

  it('rejects invalid percent-encoding', async () => {
    await expectRejection(
      defaultFetcher.fetchToFile('tftp://127.0.0.1:9/%zz.patch', staging, options()),
      BadUrlError,
      /invalid percent-encoding in its path/,
    );
  });

  it('works over IPv6 loopback', async () => {
    const log: string[] = [];
    const server = await startPatchServer({ root, tftp: { host: '::1', port: 0 }, http: { host: '::1', port: 0 }, log: (line) => log.push(line) });
    try {
      for (const url of [`tftp://[::1]:${server.tftpAddress!.port}/a.patch`, `http://[::1]:${server.httpAddress!.port}/a.patch`]) {
        await defaultFetcher.fetchToFile(url, staging, options());
        expect((await readFile(staging)).equals(content), url).to.equal(true);
      }
      await waitFor(() => log.length === 2);
      expect(log[0]).to.match(/^tftp client=\[::1\]:\d+ file="a\.patch" bytes=3146729 /);
    } finally {
      await server.close();
    }
  });

  describe('through a lossy relay', () => {
    let server: PatchServer;
    beforeEach(async () => {
      server = await startPatchServer({ root, tftp: { host: '127.0.0.1', port: 0, timeoutMs: 50, retries: 40 } });
      await writeFile(join(root, 'b.patch'), content.subarray(0, 1024 * 1024));
    });
    afterEach(() => server.close());

    for (const windowsize of [1, 4, 16]) {
      it(`survives loss at windowsize ${windowsize}`, async () => {
        const relay = await startRelay(server.tftpAddress!.port, { drop: 0.03, duplicate: 0.02, reorder: 0.03, seed: 1000 + windowsize });
        try {
          await defaultFetcher.fetchToFile(`tftp://127.0.0.1:${relay.port}/b.patch`, staging, options({ tftp: { windowsize, timeoutMs: 100, retries: 40 } }));
          expect((await readFile(staging)).equals(content.subarray(0, 1024 * 1024))).to.equal(true);
          expect(relay.stats.dropped).to.be.above(0);
          expect(relay.stats.duplicated).to.be.above(0);
          expect(relay.stats.reordered).to.be.above(0);
        } finally {
          await relay.close();
        }
      });
    }

    it('fails clearly when the link dies', async () => {
      const relay = await startRelay(server.tftpAddress!.port, { drop: 0, duplicate: 0, reorder: 0, seed: 1 });
      const started = Date.now();
      try {
        await expectRejection(
          defaultFetcher.fetchToFile(`tftp://127.0.0.1:${relay.port}/b.patch`, staging, options({
            tftp: { timeoutMs: 100, retries: 3 },
            onProgress: (done) => {
              if (done > 100_000) relay.blackhole();
            },
          })),
          TransferTimeoutError,
          /stalled: expected block \d+, nothing arrived in 4 waits of 100 ms/,
        );
        expect(Date.now() - started).to.be.below(5000);
        expect(existsSync(staging)).to.equal(false);
      } finally {
        await relay.close();
      }
    });
  });

  describe('against scripted servers', () => {
    let listener: RawTftpPeer;
    let session: RawTftpPeer;
    let url: string;
    const payload = content.subarray(0, 5000);

    beforeEach(async () => {
      listener = new RawTftpPeer();
      session = new RawTftpPeer();
      url = `tftp://127.0.0.1:${await listener.bind()}/a.patch`;
      await session.bind();
    });
    afterEach(async () => {
      await listener.close();
      await session.close();
    });

    it('refuses an OACK granting more blksize', async () => {
      const fetching = defaultFetcher.fetchToFile(url, staging, options({ tftp: { timeoutMs: 300 } }));
      const first = await listener.receive();
      expect(decode(first.message).options).to.deep.equal({ blksize: '1468', tsize: '0' });

      session.send(oack({ blksize: '2000', tsize: String(payload.length) }), first.from.port);
      expect(decode((await session.receive()).message)).to.deep.include({ opcode: 5, code: 8, text: 'blksize 2000 granted, expected 8 to 1468' });

      const second = await listener.receive();
      expect(decode(second.message)).to.deep.include({ name: 'a.patch', options: {} });
      const plain = new RawTftpPeer();
      await plain.bind();
      try {
        await servePlain(plain, second.from.port, payload);
        await fetching;
      } finally {
        await plain.close();
      }
      expect((await readFile(staging)).equals(payload)).to.equal(true);
    });

    it('falls back when options are rejected', async () => {
      const sizes: Array<number | undefined> = [];
      const fetching = defaultFetcher.fetchToFile(url, staging, options({ onSize: (size) => void sizes.push(size) }));
      const first = await listener.receive();
      session.send(errorPacket(8, 'options not supported'), first.from.port);

      const second = await listener.receive();
      expect(decode(second.message).options).to.deep.equal({});
      const plain = new RawTftpPeer();
      await plain.bind();
      try {
        await servePlain(plain, second.from.port, payload);
        await fetching;
      } finally {
        await plain.close();
      }
      expect((await readFile(staging)).equals(payload)).to.equal(true);
      expect(sizes).to.deep.equal([undefined]);
    });

    it('accepts a server that ignores options', async () => {
      const fetching = defaultFetcher.fetchToFile(url, staging, options());
      const first = await listener.receive();
      const sendBlock = async (block: number) => {
        session.send(data(block, payload.subarray((block - 1) * 512, block * 512)), first.from.port);
        for (;;) {
          const reply = decode((await session.receive()).message);
          if (reply.opcode === 4 && reply.block === block) return;
        }
      };
      await sendBlock(1);
      await sendBlock(2);

      // A packet from a stranger's port must get ERROR 5 and leave the transfer alone (RFC 1350 section 4).
      const stranger = new RawTftpPeer();
      await stranger.bind();
      try {
        stranger.send(data(3, Buffer.alloc(512)), first.from.port);
        expect(decode((await stranger.receive()).message)).to.deep.include({ opcode: 5, code: 5 });
      } finally {
        await stranger.close();
      }

      for (let block = 3; block <= Math.floor(payload.length / 512) + 1; block += 1) await sendBlock(block);
      await fetching;
      expect((await readFile(staging)).equals(payload)).to.equal(true);
    });

    it('maps ERROR 2 to access violation', async () => {
      const fetching = defaultFetcher.fetchToFile(url, staging, options());
      const first = await listener.receive();
      session.send(errorPacket(2, 'Permission denied'), first.from.port);
      await expectRejection(fetching, AccessViolationError, /access denied: the server sent ERROR 2 "Permission denied"/);
    });

    it('reports a body shorter than tsize', async () => {
      const fetching = defaultFetcher.fetchToFile(url, staging, options());
      const first = await listener.receive();
      session.send(oack({ blksize: '512', tsize: '9000' }), first.from.port);
      expect(decode((await session.receive()).message)).to.deep.include({ opcode: 4, block: 0 });
      await servePlain(session, first.from.port, payload);
      await expectRejection(fetching, TransferTruncatedError, /expected 9,000 bytes as announced by tsize, got 5,000 bytes/);
      expect(existsSync(staging)).to.equal(false);
    });

    it('gives up when nothing answers', async () => {
      await expectRejection(
        defaultFetcher.fetchToFile(url, staging, options({ tftp: { timeoutMs: 100, retries: 1 } })),
        TransferTimeoutError,
        /no reply from tftp:\/\/127\.0\.0\.1:\d+\/a\.patch to the read request after 2 tries of 100 ms/,
      );
    });

    it('enforces the overall deadline', async () => {
      const port = await freeUdpPort();
      const started = Date.now();
      await expectRejection(
        defaultFetcher.fetchToFile(`tftp://127.0.0.1:${port}/a.patch`, staging, options({ timeoutMs: 400, tftp: { timeoutMs: 100, retries: 100 } })),
        TransferTimeoutError,
        /timed out after 400 ms/,
      );
      expect(Date.now() - started).to.be.below(2000);
    });
  });
});
