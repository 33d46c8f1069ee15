import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';

import {
  AccessViolationError,
  BadUrlError,
  FileNotFoundError,
  InvalidArgumentError,
  TransferError,
  TransferTimeoutError,
  TransferTruncatedError,
  UpgradeError,
  formatBytes,
} from '../errors/index.js';
import type { Transfer } from './staging.js';
import { redactUrl } from './url.js';

// NOTE: this client uses node:http and node:https rather than Node's fetch. Node 20's fetch takes neither a CA file
// nor a connect timeout without the undici package, which is not a dependency of this project. node:http(s) give
// both, and expose the socket for the idle timeout.

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_REDIRECTS = 3;
const DEFAULT_RESUME_ATTEMPTS = 3;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Validators of the representation being downloaded; a resumed piece must carry the same ones. */
interface Validators {
  etag: string | undefined;
  lastModified: string | undefined;
}

/** Body stream that stopped before its end; the download may be resumed after it. */
class Interruption extends Error {}

interface HttpSettings {
  ca: Buffer | undefined;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  maxRedirects: number;
  resumeAttempts: number;
  authorization: string | undefined;
}

/**
 * Downloads an http: or https: URL into the staging file. A body that stops early is resumed with a Range request
 * (If-Range carrying the validator) when the server sent an ETag or Last-Modified. The resumed piece is used only
 * when it is a 206 for the same representation starting at the right byte, and anything else starts over.
 */
export async function fetchHttp(transfer: Transfer): Promise<void> {
  const settings = readSettings(transfer);
  let redirectsLeft = settings.maxRedirects;
  let url = new URL(transfer.url);
  let validators: Validators | undefined;
  let expectedTotal: number | undefined;
  let attemptsLeft = settings.resumeAttempts;
  let lastInterruption: Interruption | undefined;

  for (;;) {
    transfer.throwIfStopped();
    const resumeFrom = validators && transfer.bytesDone > 0 ? transfer.bytesDone : undefined;
    const headers: OutgoingHttpHeaders = { 'accept-encoding': 'identity', 'user-agent': 'snmp-upgrade' };
    if (resumeFrom !== undefined && validators) {
      headers.range = `bytes=${resumeFrom}-`;
      headers['if-range'] = validators.etag ?? validators.lastModified;
    }

    const followed = await requestFollowingRedirects(transfer, url, headers, settings, redirectsLeft);
    const response = followed.response;
    url = followed.url;
    redirectsLeft = followed.redirectsLeft;

    try {
      if (response.statusCode === 206 && resumeFrom !== undefined && validators && expectedTotal !== undefined) {
        if (!isSameResumedPiece(response, validators, resumeFrom, expectedTotal)) {
          // A 206 for another version of the file (the ETag changed, or a server that ignored If-Range) would
          // splice two images together, so what was fetched is dropped and the whole file requested again.
          response.destroy();
          validators = undefined;
          await transfer.restart();
          continue;
        }
      } else if (response.statusCode === 200) {
        if (transfer.bytesDone > 0) await transfer.restart();
        expectedTotal = contentLength(response, transfer);
        await transfer.announceSize(expectedTotal);
        validators = readValidators(response);
      } else {
        throw statusError(response, transfer);
      }

      if (response.headers['content-encoding'] && response.headers['content-encoding'] !== 'identity') {
        throw new TransferError(
          `${transfer.shownUrl} came back with content-encoding ${response.headers['content-encoding']}: expected the file as it is (identity)`,
        );
      }

      await copyBody(response, transfer, settings.idleTimeoutMs);
      if (expectedTotal === undefined || transfer.bytesDone === expectedTotal) return;
      if (transfer.bytesDone > expectedTotal) {
        throw new TransferError(`${transfer.shownUrl} sent more than announced: expected ${formatBytes(expectedTotal)}, got ${formatBytes(transfer.bytesDone)}`);
      }
      lastInterruption = new Interruption(`connection closed after ${formatBytes(transfer.bytesDone)}`);
    } catch (error) {
      response.destroy();
      if (!(error instanceof Interruption)) throw error;
      lastInterruption = error;
    }

    if (attemptsLeft === 0) throw interruptionError(transfer, expectedTotal, lastInterruption);
    attemptsLeft -= 1;
  }
}

function readSettings(transfer: Transfer): HttpSettings {
  const options = transfer.options.http ?? {};
  let ca: Buffer | undefined;
  if (options.caFile !== undefined) {
    try {
      ca = readFileSync(options.caFile);
    } catch (error) {
      throw new InvalidArgumentError(`CA file ${options.caFile} cannot be read: ${(error as Error).message}`, { cause: error });
    }
    // Node would take a file without a certificate and fail only at the handshake, as if the server were at fault.
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) {
      throw new InvalidArgumentError(`CA file ${options.caFile} contains no certificate: expected PEM text with -----BEGIN CERTIFICATE-----`);
    }
  }

  const url = new URL(transfer.url);
  let authorization: string | undefined;
  if (url.username !== '' || url.password !== '') {
    const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    authorization = `Basic ${Buffer.from(credentials).toString('base64')}`;
  }

  return {
    ca,
    connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    maxRedirects: options.maxRedirects ?? DEFAULT_MAX_REDIRECTS,
    resumeAttempts: options.resumeAttempts ?? DEFAULT_RESUME_ATTEMPTS,
    authorization,
  };
}

/** Sends GET requests, following at most `redirectsLeft` redirects, and returns the first other response. */
async function requestFollowingRedirects(
  transfer: Transfer,
  startUrl: URL,
  headers: OutgoingHttpHeaders,
  settings: HttpSettings,
  redirectsLeft: number,
): Promise<{ response: IncomingMessage; url: URL; redirectsLeft: number }> {
  const origin = new URL(transfer.url).origin;
  let url = startUrl;

  for (;;) {
    // Credentials from the URL go only to the origin they were written for, never to a redirect target elsewhere.
    const requestHeaders = { ...headers };
    if (settings.authorization && url.origin === origin) requestHeaders.authorization = settings.authorization;

    const response = await sendRequest(transfer, url, requestHeaders, settings);
    const status = response.statusCode ?? 0;
    if (!REDIRECT_STATUSES.has(status)) return { response, url, redirectsLeft };

    response.resume();
    const location = response.headers.location;
    if (!location) {
      throw new TransferError(`${redactUrl(url.href)} returned HTTP ${status} without a Location header: expected a redirect target`);
    }
    if (redirectsLeft === 0) {
      throw new TransferError(`${transfer.shownUrl} redirected too often: expected at most ${settings.maxRedirects} redirects`);
    }

    const next = new URL(location, url);
    if (next.protocol !== 'http:' && next.protocol !== 'https:') {
      throw new BadUrlError(`${redactUrl(url.href)} redirected to ${redactUrl(next.href)}: expected an http: or https: target`);
    }
    // A downgrade would let anyone on the path replace the image that TLS was chosen to protect.
    if (url.protocol === 'https:' && next.protocol === 'http:') {
      throw new BadUrlError(`${redactUrl(url.href)} redirected to ${redactUrl(next.href)}: expected https:, a redirect may not drop TLS`);
    }
    url = next;
    redirectsLeft -= 1;
  }
}

/** Sends one GET request and resolves with its response headers, applying the connect and idle timeouts. */
function sendRequest(transfer: Transfer, url: URL, headers: OutgoingHttpHeaders, settings: HttpSettings): Promise<IncomingMessage> {
  const shown = redactUrl(url.href);
  const secure = url.protocol === 'https:';
  const send = secure ? httpsRequest : httpRequest;

  return new Promise((resolve, reject) => {
    const request = send(url, {
      method: 'GET',
      headers,
      agent: false,
      signal: transfer.signal,
      ca: secure ? settings.ca : undefined,
      rejectUnauthorized: true,
      timeout: settings.idleTimeoutMs,
    });

    const connectTimer = setTimeout(() => {
      request.destroy(new TransferTimeoutError(`connecting to ${url.host} for ${shown} timed out after ${settings.connectTimeoutMs} ms`));
    }, settings.connectTimeoutMs);
    request.once('socket', (socket) => {
      socket.once(secure ? 'secureConnect' : 'connect', () => clearTimeout(connectTimer));
    });
    request.once('close', () => clearTimeout(connectTimer));

    const onHeadersTimeout = () => {
      request.destroy(new TransferTimeoutError(`${shown} sent nothing for ${settings.idleTimeoutMs} ms: expected response headers`));
    };
    request.once('timeout', onHeadersTimeout);
    request.once('response', (response) => {
      clearTimeout(connectTimer);
      // From here copyBody() watches the socket, and a stalled body is an interruption that may be resumed.
      request.off('timeout', onHeadersTimeout);
      resolve(response);
    });
    request.once('error', (error) => {
      clearTimeout(connectTimer);
      reject(requestError(error, shown));
    });
    request.end();
  });
}

/** Writes a response body into the staging file; a body that stops early throws Interruption. */
async function copyBody(response: IncomingMessage, transfer: Transfer, idleTimeoutMs: number): Promise<void> {
  response.socket.setTimeout(idleTimeoutMs, () => {
    response.destroy(new Interruption(`no body bytes for ${idleTimeoutMs} ms after ${formatBytes(transfer.bytesDone)}`));
  });

  let ended = false;
  response.once('end', () => {
    ended = true;
  });
  try {
    for await (const chunk of response) {
      await transfer.write(chunk as Buffer);
    }
  } catch (error) {
    if (error instanceof UpgradeError || transfer.signal.aborted) throw error;
    if (error instanceof Interruption) throw error;
    // Node reports a peer that closed in the middle of a framed body as `aborted` or ECONNRESET.
    const closed = (error as Error).message === 'aborted' || (error as NodeJS.ErrnoException).code === 'ECONNRESET';
    const detail = closed ? '' : `: ${(error as Error).message}`;
    throw new Interruption(`connection closed after ${formatBytes(transfer.bytesDone)}${detail}`);
  }

  // Node can end the stream without an error when the connection closes in the middle of a body, and only
  // `complete` then shows that the body was cut short.
  if (!response.complete || !ended) {
    throw new Interruption(`connection closed after ${formatBytes(transfer.bytesDone)}`);
  }
}

function isSameResumedPiece(response: IncomingMessage, validators: Validators, resumeFrom: number, expectedTotal: number): boolean {
  const received = readValidators(response);
  if (received === undefined) return false;
  if (validators.etag !== undefined) {
    if (received.etag !== validators.etag || validators.etag.startsWith('W/')) return false;
  } else if (received.lastModified !== validators.lastModified) {
    return false;
  }

  const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.headers['content-range'] ?? '');
  if (!range) return false;
  return Number(range[1]) === resumeFrom && Number(range[2]) === expectedTotal - 1 && Number(range[3]) === expectedTotal;
}

function readValidators(response: IncomingMessage): Validators | undefined {
  const etag = response.headers.etag;
  const lastModified = response.headers['last-modified'];
  if (etag === undefined && lastModified === undefined) return undefined;
  return { etag, lastModified };
}

function contentLength(response: IncomingMessage, transfer: Transfer): number | undefined {
  const header = response.headers['content-length'];
  if (header === undefined) return undefined;
  if (!/^\d+$/.test(header)) {
    throw new TransferError(`${transfer.shownUrl} sent an invalid Content-Length ${JSON.stringify(header)}: expected a byte count`);
  }
  return Number(header);
}

function statusError(response: IncomingMessage, transfer: Transfer): UpgradeError {
  const status = response.statusCode ?? 0;
  const text = `HTTP ${status}${response.statusMessage ? ` ${response.statusMessage}` : ''}`;
  if (status === 404 || status === 410) {
    return new FileNotFoundError(`${transfer.shownUrl} not found: the server returned ${text}`);
  }
  if (status === 401 || status === 403) {
    return new AccessViolationError(`${transfer.shownUrl} access denied: the server returned ${text}`);
  }
  return new TransferError(`${transfer.shownUrl} failed: expected HTTP 200, the server returned ${text}`);
}

function requestError(error: Error, shownUrl: string): Error {
  if (error instanceof UpgradeError || error.name === 'AbortError') return error;
  const code = (error as NodeJS.ErrnoException).code ?? '';
  // OpenSSL's messages can end in a line break, and an error is one line in logs and on the terminal.
  const message = error.message.replace(/\s+/g, ' ').trim();
  if (code.startsWith('ERR_TLS') || /certificate|self.signed|SSL/i.test(`${code} ${message}`)) {
    return new TransferError(`TLS verification of ${shownUrl} failed: ${message} (${code}); pass a CA file if the server uses a private CA`, { cause: error });
  }
  return new TransferError(`request for ${shownUrl} failed: ${message}`, { cause: error });
}

function interruptionError(transfer: Transfer, expectedTotal: number | undefined, interruption: Interruption | undefined): UpgradeError {
  const reason = interruption?.message ?? 'connection closed';
  if (expectedTotal !== undefined) {
    return new TransferTruncatedError(
      `${transfer.shownUrl} was truncated: expected ${formatBytes(expectedTotal)}, got ${formatBytes(transfer.bytesDone)} (${reason})`,
    );
  }
  return new TransferError(`${transfer.shownUrl} failed: ${reason}`);
}
