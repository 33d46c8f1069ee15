import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';

import {
  AbortedError,
  AccessViolationError,
  BadUrlError,
  FileNotFoundError,
  FileTooLargeError,
  InvalidArgumentError,
  TransferError,
  TransferTimeoutError,
  TransferTruncatedError,
} from '../../errors/index.js';
import { defaultFetcher, startPatchServer, type FetchOptions, type PatchServer } from '../../transport/index.js';
import { makePatchFolder, requirePeer, type PatchFolder } from '../support/index.js';
import { expectRejection } from './helpers.js';

type Handler = (request: IncomingMessage, response: ServerResponse, attempt: number) => void;

/** A deliberately misbehaving HTTP server: each request is handed to the test's handler with its number. */
async function startScriptedServer(handler: Handler): Promise<{ url: string; requests: IncomingMessage[]; close(): Promise<void> }> {
  const requests: IncomingMessage[] = [];
  const server: Server = createServer((incoming, response) => {
    requests.push(incoming);
    handler(incoming, response, requests.length);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Sends a raw GET with the path exactly as given, which URL-based clients would normalize first. */
function rawGet(port: number, path: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer; headers: IncomingMessage['headers'] }> {
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: '127.0.0.1', port, path, method, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks), headers: response.headers }));
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
}

describe('HTTP transport', function () {
  this.timeout(20_000);
  let dir: PatchFolder;
  let root: string;
  let staging: string;
  const content = randomBytes(2 * 1024 * 1024 + 333);
  const options = (extra: Partial<FetchOptions> = {}): FetchOptions => ({ maxBytes: 10_000_000, timeoutMs: 10_000, ...extra });

  beforeEach(async () => {
    dir = await makePatchFolder(content);
    ({ root, staging } = dir);
  });
  afterEach(() => dir.remove());

  describe('against the patch server', () => {
    let server: PatchServer;
    let log: string[];
    let base: string;

    beforeEach(async () => {
      log = [];
      server = await startPatchServer({ root, http: { host: '127.0.0.1', port: 0 }, log: (line) => log.push(line) });
      base = `http://127.0.0.1:${server.httpAddress!.port}`;
    });
    afterEach(() => server.close());

    it('fetches a file and announces its size', async () => {
      const sizes: Array<number | undefined> = [];
      let progressTotal: number | undefined;
      const result = await defaultFetcher.fetchToFile(`${base}/a.patch`, staging, options({
        onSize: (total) => {
          sizes.push(total);
          expect(existsSync(staging)).to.equal(false);
        },
        onProgress: (_done, total) => {
          progressTotal = total;
        },
      }));

      expect(result.bytes).to.equal(content.length);
      expect(sizes).to.deep.equal([content.length]);
      expect(progressTotal).to.equal(content.length);
      expect((await readFile(staging)).equals(content)).to.equal(true);
      expect(log).to.have.length(1);
      expect(log[0]).to.match(/^http client=127\.0\.0\.1:\d+ file="a\.patch" bytes=2097485 duration_ms=\d+ result=ok$/);
    });

    it('rejects a file over maxBytes before the body', async () => {
      let sizeCalls = 0;
      await expectRejection(
        defaultFetcher.fetchToFile(`${base}/a.patch`, staging, options({ maxBytes: 1000, onSize: () => void (sizeCalls += 1) })),
        FileTooLargeError,
        /expected at most 1,000 bytes, the server announced 2,097,485 bytes/,
      );
      expect(sizeCalls).to.equal(0);
      expect(existsSync(staging)).to.equal(false);
    });

    it('reports a missing file', async () => {
      await expectRejection(defaultFetcher.fetchToFile(`${base}/missing.patch`, staging, options()), FileNotFoundError, /not found: the server returned HTTP 404/);
    });

    it('serves many downloads at once', async () => {
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) => defaultFetcher.fetchToFile(`${base}/a.patch`, join(dir.path, `copy-${i}`), options())),
      );
      for (const result of results) {
        expect((await readFile(result.path)).equals(content)).to.equal(true);
      }
    });

    it('keeps requests inside the served folder', async () => {
      await mkdir(join(dir.path, 'patches-old'));
      await writeFile(join(dir.path, 'patches-old', 'secret.bin'), 'secret');
      await writeFile(join(dir.path, 'secret.bin'), 'secret');
      await symlink(join(dir.path, 'patches-old', 'secret.bin'), join(root, 'link.bin'));
      const port = server.httpAddress!.port;

      for (const path of [
        '/../secret.bin',
        '/../patches-old/secret.bin',
        '/%2e%2e/patches-old/secret.bin',
        '/%2E%2E%2Fpatches-old%2Fsecret.bin',
        '/..%5cpatches-old%5csecret.bin',
        '/link.bin',
        `/${join(dir.path, 'secret.bin')}`,
        '/a.patch%00.txt',
      ]) {
        const answer = await rawGet(port, path);
        expect(answer.status, path).to.be.oneOf([403, 404]);
        expect(answer.body.toString(), path).not.to.include('secret');
      }
    });

    it('answers byte ranges', async () => {
      const port = server.httpAddress!.port;
      const whole = await rawGet(port, '/a.patch', 'HEAD');
      expect(whole.status).to.equal(200);
      expect(whole.headers['accept-ranges']).to.equal('bytes');
      const etag = whole.headers.etag!;

      const middle = await rawGet(port, '/a.patch', 'GET', { range: 'bytes=10-19', 'if-range': etag });
      expect(middle.status).to.equal(206);
      expect(middle.headers['content-range']).to.equal(`bytes 10-19/${content.length}`);
      expect(middle.body.equals(content.subarray(10, 20))).to.equal(true);

      const suffix = await rawGet(port, '/a.patch', 'GET', { range: 'bytes=-5' });
      expect(suffix.status).to.equal(206);
      expect(suffix.body.equals(content.subarray(content.length - 5))).to.equal(true);

      const stale = await rawGet(port, '/a.patch', 'GET', { range: 'bytes=10-19', 'if-range': '"other"' });
      expect(stale.status).to.equal(200);
      expect(stale.body.length).to.equal(content.length);

      const beyond = await rawGet(port, '/a.patch', 'GET', { range: `bytes=${content.length}-` });
      expect(beyond.status).to.equal(416);
      expect(beyond.headers['content-range']).to.equal(`bytes */${content.length}`);
    });

    it('rejects methods other than GET and HEAD', async () => {
      const answer = await rawGet(server.httpAddress!.port, '/a.patch', 'PUT');
      expect(answer.status).to.equal(405);
      expect(answer.headers.allow).to.equal('GET, HEAD');
    });
  });

  describe('against a misbehaving server', () => {
    const half = Math.floor(content.length / 2);
    let scripted: Awaited<ReturnType<typeof startScriptedServer>> | undefined;
    afterEach(() => scripted?.close());

    /** Sends `body` with the headers of the whole file but stops after `cut` bytes. */
    const truncated = (response: ServerResponse, body: Buffer, cut: number, headers: Record<string, string> = {}) => {
      response.writeHead(200, { 'content-length': body.length, ...headers });
      response.write(body.subarray(0, cut), () => response.destroy());
    };

    it('reports a body shorter than Content-Length', async () => {
      scripted = await startScriptedServer((_request, response) => truncated(response, content, half));
      const error = await expectRejection(
        defaultFetcher.fetchToFile(`${scripted.url}/a.patch`, staging, options({ http: { resumeAttempts: 2 } })),
        TransferTruncatedError,
        /was truncated: expected 2,097,485 bytes, got 1,048,742 bytes/,
      );
      expect(error.message).to.include('connection closed');
      expect(scripted.requests).to.have.length(3);
      expect(existsSync(staging)).to.equal(false);
    });

    it('resumes with Range after an interruption', async () => {
      scripted = await startScriptedServer((incoming, response, attempt) => {
        if (attempt === 1) return truncated(response, content, half, { etag: '"v1"' });
        const start = Number(/bytes=(\d+)-/.exec(incoming.headers.range ?? '')?.[1]);
        response.writeHead(206, { etag: '"v1"', 'content-range': `bytes ${start}-${content.length - 1}/${content.length}` });
        response.end(content.subarray(start));
      });
      await defaultFetcher.fetchToFile(`${scripted.url}/a.patch`, staging, options());

      expect((await readFile(staging)).equals(content)).to.equal(true);
      expect(scripted.requests).to.have.length(2);
      expect(scripted.requests[1].headers.range).to.equal(`bytes=${half}-`);
      expect(scripted.requests[1].headers['if-range']).to.equal('"v1"');
    });

    it('starts over when Range is ignored', async () => {
      scripted = await startScriptedServer((_request, response, attempt) => {
        if (attempt === 1) return truncated(response, content, half, { etag: '"v1"' });
        response.writeHead(200, { etag: '"v1"', 'content-length': content.length });
        response.end(content);
      });
      const result = await defaultFetcher.fetchToFile(`${scripted.url}/a.patch`, staging, options());

      expect(result.bytes).to.equal(content.length);
      expect((await readFile(staging)).equals(content)).to.equal(true);
      expect(scripted.requests[1].headers.range).to.equal(`bytes=${half}-`);
    });

    it('starts over when the ETag changed', async () => {
      const newer = randomBytes(content.length);
      scripted = await startScriptedServer((incoming, response, attempt) => {
        if (attempt === 1) return truncated(response, content, half, { etag: '"v1"' });
        if (incoming.headers.range) {
          // Ignores If-Range and sends the rest of a different version.
          const start = Number(/bytes=(\d+)-/.exec(incoming.headers.range)?.[1]);
          response.writeHead(206, { etag: '"v2"', 'content-range': `bytes ${start}-${newer.length - 1}/${newer.length}` });
          response.end(newer.subarray(start));
          return;
        }
        response.writeHead(200, { etag: '"v2"', 'content-length': newer.length });
        response.end(newer);
      });
      await defaultFetcher.fetchToFile(`${scripted.url}/a.patch`, staging, options());

      expect((await readFile(staging)).equals(newer)).to.equal(true);
      expect(scripted.requests).to.have.length(3);
      expect(scripted.requests[2].headers.range).to.equal(undefined);
    });

    it('starts over without validators', async () => {
      scripted = await startScriptedServer((_request, response, attempt) => {
        if (attempt === 1) return truncated(response, content, half);
        response.writeHead(200, { 'content-length': content.length });
        response.end(content);
      });
      await defaultFetcher.fetchToFile(`${scripted.url}/a.patch`, staging, options());

      expect((await readFile(staging)).equals(content)).to.equal(true);
      expect(scripted.requests[1].headers.range).to.equal(undefined);
    });

    it('follows a redirect', async () => {
      scripted = await startScriptedServer((incoming, response) => {
        if (incoming.url === '/old/a.patch') {
          response.writeHead(302, { location: '/new/a.patch' }).end();
          return;
        }
        response.writeHead(200, { 'content-length': content.length }).end(content);
      });
      await defaultFetcher.fetchToFile(`${scripted.url}/old/a.patch`, staging, options());

      expect((await readFile(staging)).equals(content)).to.equal(true);
      expect(scripted.requests.map((r) => r.url)).to.deep.equal(['/old/a.patch', '/new/a.patch']);
    });

    it('stops after too many redirects', async () => {
      scripted = await startScriptedServer((_incoming, response, attempt) => {
        response.writeHead(301, { location: `/hop-${attempt}` }).end();
      });
      await expectRejection(
        defaultFetcher.fetchToFile(`${scripted.url}/a.patch`, staging, options({ http: { maxRedirects: 2 } })),
        TransferError,
        /redirected too often: expected at most 2 redirects/,
      );
      expect(scripted.requests).to.have.length(3);
    });

    it('rejects a redirect to another scheme', async () => {
      scripted = await startScriptedServer((_request, response) => {
        response.writeHead(302, { location: 'tftp://127.0.0.1/a.patch' }).end();
      });
      await expectRejection(defaultFetcher.fetchToFile(`${scripted.url}/a.patch`, staging, options()), BadUrlError, /expected an http: or https: target/);
    });

    it('sends URL credentials and hides them', async () => {
      scripted = await startScriptedServer((_request, response) => {
        response.writeHead(401, { 'www-authenticate': 'Basic realm="patches"' }).end();
      });
      const url = scripted.url.replace('http://', 'http://admin:hunter2@');
      const error = await expectRejection(defaultFetcher.fetchToFile(`${url}/a.patch`, staging, options()), AccessViolationError, /access denied: the server returned HTTP 401/);

      expect(error.message).not.to.include('hunter2');
      expect(error.message).not.to.include('admin');
      expect(scripted.requests[0].headers.authorization).to.equal(`Basic ${Buffer.from('admin:hunter2').toString('base64')}`);
    });

    it('maps a server error', async () => {
      scripted = await startScriptedServer((_request, response) => {
        response.writeHead(500).end();
      });
      await expectRejection(defaultFetcher.fetchToFile(`${scripted.url}/a.patch`, staging, options()), TransferError, /expected HTTP 200, the server returned HTTP 500/);
    });

    it('rejects a compressed body', async () => {
      scripted = await startScriptedServer((_request, response) => {
        response.writeHead(200, { 'content-encoding': 'gzip', 'content-length': 4 }).end('abcd');
      });
      await expectRejection(defaultFetcher.fetchToFile(`${scripted.url}/a.patch`, staging, options()), TransferError, /content-encoding gzip: expected the file as it is/);
    });

    it('enforces maxBytes without Content-Length', async () => {
      scripted = await startScriptedServer((_request, response) => {
        response.writeHead(200, { 'transfer-encoding': 'chunked' });
        response.end(content);
      });
      const sizes: Array<number | undefined> = [];
      await expectRejection(
        defaultFetcher.fetchToFile(`${scripted.url}/a.patch`, staging, options({ maxBytes: 100_000, onSize: (size) => void sizes.push(size) })),
        FileTooLargeError,
        /expected at most 100,000 bytes, received more/,
      );
      expect(sizes).to.deep.equal([undefined]);
      expect(existsSync(staging)).to.equal(false);
    });

    it('times out waiting for headers', async () => {
      scripted = await startScriptedServer(() => undefined);
      await expectRejection(
        defaultFetcher.fetchToFile(`${scripted.url}/a.patch`, staging, options({ http: { idleTimeoutMs: 200 } })),
        TransferTimeoutError,
        /sent nothing for 200 ms: expected response headers/,
      );
    });

    it('gives up on a stalled body', async () => {
      scripted = await startScriptedServer((_request, response) => {
        response.writeHead(200, { 'content-length': content.length });
        response.write(content.subarray(0, 1000));
      });
      const error = await expectRejection(
        defaultFetcher.fetchToFile(`${scripted.url}/a.patch`, staging, options({ http: { idleTimeoutMs: 200, resumeAttempts: 1 } })),
        TransferTruncatedError,
        /expected 2,097,485 bytes, got 1,000 bytes/,
      );
      expect(error.message).to.include('no body bytes for 200 ms');
      expect(scripted.requests).to.have.length(2);
    });

    it('enforces the overall deadline', async () => {
      scripted = await startScriptedServer((_request, response) => {
        response.writeHead(200, { 'content-length': content.length });
        response.write(content.subarray(0, 1000));
      });
      const started = Date.now();
      await expectRejection(defaultFetcher.fetchToFile(`${scripted.url}/a.patch`, staging, options({ timeoutMs: 300 })), TransferTimeoutError, /timed out after 300 ms/);
      expect(Date.now() - started).to.be.below(2000);
      expect(existsSync(staging)).to.equal(false);
    });

    it('removes the partial file on abort', async () => {
      scripted = await startScriptedServer((_request, response) => {
        response.writeHead(200, { 'content-length': content.length });
        response.write(content.subarray(0, 300_000));
      });
      const controller = new AbortController();
      const attempt = defaultFetcher.fetchToFile(`${scripted.url}/a.patch`, staging, options({
        signal: controller.signal,
        onProgress: (done) => {
          if (done >= 300_000) controller.abort();
        },
      }));
      await expectRejection(attempt, AbortedError, /aborted after/);
      expect(existsSync(staging)).to.equal(false);
    });
  });

  describe('over TLS', () => {
    let certificates: { ca: string; key: Buffer; cert: Buffer };

    beforeEach(async function () {
      const openssl = requirePeer(this, 'openssl');
      const run = promisify(execFile);
      const at = (name: string) => join(dir.path, name);
      await writeFile(at('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
      await run(openssl, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', at('ca.key'), '-out', at('ca.pem'), '-days', '2', '-subj', '/CN=test patch CA']);
      await run(openssl, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', at('server.key'), '-out', at('server.csr'), '-subj', '/CN=127.0.0.1']);
      await run(openssl, ['x509', '-req', '-in', at('server.csr'), '-CA', at('ca.pem'), '-CAkey', at('ca.key'), '-CAcreateserial', '-out', at('server.pem'), '-days', '2', '-extfile', at('san.ext')]);
      certificates = { ca: at('ca.pem'), key: await readFile(at('server.key')), cert: await readFile(at('server.pem')) };
    });

    async function startTlsServer(handler: Handler): Promise<{ url: string; close(): Promise<void> }> {
      let count = 0;
      const server = createHttpsServer({ key: certificates.key, cert: certificates.cert }, (incoming, response) => handler(incoming, response, ++count));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return {
        url: `https://127.0.0.1:${(server.address() as { port: number }).port}`,
        close: () =>
          new Promise((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
          }),
      };
    }

    it('verifies the server with a CA file', async () => {
      const tls = await startTlsServer((_request, response) => response.writeHead(200, { 'content-length': content.length }).end(content));
      try {
        await defaultFetcher.fetchToFile(`${tls.url}/a.patch`, staging, options({ http: { caFile: certificates.ca } }));
        expect((await readFile(staging)).equals(content)).to.equal(true);
      } finally {
        await tls.close();
      }
    });

    it('rejects an untrusted certificate', async () => {
      const tls = await startTlsServer((_request, response) => response.writeHead(200, { 'content-length': content.length }).end(content));
      try {
        await expectRejection(defaultFetcher.fetchToFile(`${tls.url}/a.patch`, staging, options()), TransferError, /TLS verification of https:\/\/127\.0\.0\.1:\d+\/a\.patch failed/);
        expect(existsSync(staging)).to.equal(false);
      } finally {
        await tls.close();
      }
    });

    it('rejects a redirect from https to http', async () => {
      const tls = await startTlsServer((_request, response) => response.writeHead(302, { location: 'http://127.0.0.1:9/a.patch' }).end());
      try {
        await expectRejection(
          defaultFetcher.fetchToFile(`${tls.url}/a.patch`, staging, options({ http: { caFile: certificates.ca } })),
          BadUrlError,
          /a redirect may not drop TLS/,
        );
      } finally {
        await tls.close();
      }
    });

    it('reports an unreadable CA file', async () => {
      await expectRejection(
        defaultFetcher.fetchToFile('https://127.0.0.1:9/a.patch', staging, options({ http: { caFile: join(dir.path, 'missing.pem') } })),
        InvalidArgumentError,
        /CA file .*missing\.pem cannot be read/,
      );
    });

    it('reports a CA file without a certificate', async () => {
      const garbage = join(dir.path, 'garbage.pem');
      await writeFile(garbage, 'not a certificate\n');
      await expectRejection(
        defaultFetcher.fetchToFile('https://127.0.0.1:9/a.patch', staging, options({ http: { caFile: garbage } })),
        InvalidArgumentError,
        /CA file .*garbage\.pem contains no certificate: expected PEM text with -----BEGIN CERTIFICATE-----/,
      );
    });

    it('times out a stalled handshake', async () => {
      // Accepts TCP connections and never replies to the TLS ClientHello.
      const sockets: Socket[] = [];
      const silent = createTcpServer((socket) => void sockets.push(socket));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      try {
        const port = (silent.address() as { port: number }).port;
        await expectRejection(
          defaultFetcher.fetchToFile(`https://127.0.0.1:${port}/a.patch`, staging, options({ http: { connectTimeoutMs: 200, caFile: certificates.ca } })),
          TransferTimeoutError,
          /connecting to 127\.0\.0\.1:\d+ for https:\/\/127\.0\.0\.1:\d+\/a\.patch timed out after 200 ms/,
        );
      } finally {
        for (const socket of sockets) socket.destroy();
        await new Promise((resolve) => silent.close(resolve));
      }
    });
  });
});
