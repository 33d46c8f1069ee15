import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { AccessViolationError, FileNotFoundError, InvalidArgumentError, UpgradeError } from '../errors/index.js';
import { openServedFile, type ServedFile } from './served-file.js';

/** One finished HTTP or TFTP transfer, as the patch server logs it. */
export interface TransferRecord {
  protocol: 'http' | 'tftp';
  client: string;
  file: string;
  bytes: number;
  durationMs: number;
  result: string;
}

/** Formats a client's address and port, with IPv6 addresses in brackets as in URLs. */
export function formatEndpoint(address: string | undefined, port: number | undefined): string {
  const host = address?.includes(':') ? `[${address}]` : address;
  return `${host}:${port}`;
}

/** Formats a transfer as the single log line the patch server writes for it. */
export function formatTransferRecord(record: TransferRecord): string {
  return `${record.protocol} client=${record.client} file=${JSON.stringify(record.file)} bytes=${record.bytes} duration_ms=${record.durationMs} result=${record.result}`;
}

/** A byte range to send, both ends included. */
interface ByteRange {
  start: number;
  end: number;
}

/**
 * Starts the read-only HTTP side of the patch server: GET and HEAD of files below `root`, single byte ranges
 * (RFC 9110 section 14) with If-Range, and a strong ETag so a resuming client can tell the file did not change.
 */
export async function startHttpServer(
  root: string,
  address: { host: string; port: number },
  record: (entry: TransferRecord) => void,
): Promise<{ address: { host: string; port: number }; close(): Promise<void> }> {
  const server: Server = createServer((request, response) => {
    void serve(root, request, response, record);
  });
  // Slow or idle clients must not hold sockets forever on a station that serves many routers.
  server.requestTimeout = 60_000;
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    const fail = (error: Error) => reject(listenFailure('HTTP', address, error));
    server.once('error', fail);
    server.listen(address.port, address.host, () => {
      server.off('error', fail);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;

  return {
    address: { host: bound.address, port: bound.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function serve(root: string, request: IncomingMessage, response: ServerResponse, record: (entry: TransferRecord) => void): Promise<void> {
  const started = Date.now();
  const client = formatEndpoint(request.socket.remoteAddress, request.socket.remotePort);
  let name = request.url ?? '';
  let bytesSent = 0;

  const finish = (result: string) => {
    record({ protocol: 'http', client, file: name, bytes: bytesSent, durationMs: Date.now() - started, result });
  };

  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { allow: 'GET, HEAD', 'content-length': 0 }).end();
    finish(`rejected: method ${request.method} not allowed`);
    return;
  }

  let file: ServedFile;
  try {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname);
    // The log names the file as a TFTP request does, without the path's leading slash.
    name = path.startsWith('/') ? path.slice(1) : path;
    file = await openServedFile(root, path);
  } catch (error) {
    let status = 500;
    if (error instanceof FileNotFoundError) status = 404;
    else if (error instanceof AccessViolationError || error instanceof URIError) status = 403;
    response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(`${statusText(status)}\n`);
    finish(`rejected: ${error instanceof UpgradeError || error instanceof Error ? error.message : String(error)}`);
    return;
  }

  const headers: Record<string, string | number> = {
    'content-type': 'application/octet-stream',
    'accept-ranges': 'bytes',
    etag: file.etag,
    'last-modified': file.mtime.toUTCString(),
  };

  const range = chooseRange(request, file);
  if (range === 'unsatisfiable') {
    await file.handle.close();
    response.writeHead(416, { ...headers, 'content-range': `bytes */${file.size}`, 'content-length': 0 }).end();
    finish(`rejected: unsatisfiable range ${request.headers.range}`);
    return;
  }

  const { start, end } = range ?? { start: 0, end: file.size - 1 };
  const length = Math.max(0, end - start + 1);
  if (range) {
    response.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${end}/${file.size}`, 'content-length': length });
  } else {
    response.writeHead(200, { ...headers, 'content-length': file.size });
  }

  if (request.method === 'HEAD' || length === 0) {
    await file.handle.close();
    response.end();
    finish('ok');
    return;
  }

  const stream = file.handle.createReadStream({ start, end, highWaterMark: 256 * 1024, autoClose: true });
  stream.on('data', (chunk) => {
    bytesSent += chunk.length;
  });
  stream.pipe(response);

  // `close` fires both after a complete response and when the client goes away; only the first is a success.
  response.once('close', () => {
    stream.destroy();
    if (!response.writableFinished) finish('client closed the connection');
    else if (range) finish(`ok range=${start}-${end}`);
    else finish('ok');
  });
  stream.once('error', (error) => {
    response.destroy(error);
  });
}

/**
 * Returns the single range to send, undefined to send the whole file, or 'unsatisfiable'. A request for several
 * ranges gets the whole file, which RFC 9110 allows, and so does a Range whose If-Range validator is stale.
 */
function chooseRange(request: IncomingMessage, file: ServedFile): ByteRange | 'unsatisfiable' | undefined {
  const header = request.headers.range;
  if (header === undefined) return undefined;

  const ifRange = request.headers['if-range'];
  if (ifRange !== undefined && ifRange !== file.etag && ifRange !== file.mtime.toUTCString()) return undefined;

  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;

  let start: number;
  let end: number;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, file.size - suffix);
    end = file.size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? file.size - 1 : Math.min(Number(match[2]), file.size - 1);
    if (end < start) return match[2] === '' || start >= file.size ? 'unsatisfiable' : undefined;
  }
  if (start >= file.size) return 'unsatisfiable';
  return { start, end };
}

function statusText(status: number): string {
  if (status === 404) return 'not found';
  if (status === 403) return 'forbidden';
  return 'internal error';
}

/** Names the address a server could not listen on (in use, or a host name that does not resolve), and why. */
export function listenFailure(protocol: string, address: { host: string; port: number }, error: Error): InvalidArgumentError {
  return new InvalidArgumentError(`cannot serve ${protocol} on ${formatEndpoint(address.host, address.port)}: ${error.message}`, { cause: error });
}
