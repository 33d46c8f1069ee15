/**
 * Transports: the device-side fetch clients (file:, tftp:, http:, https:) and the management station's patch
 * server. Other folders import only this module.
 */
import { BadUrlError, InvalidArgumentError } from '../errors/index.js';
import { fetchFile } from './file-fetch.js';
import { fetchHttp } from './http-fetch.js';
import { fetchTftp } from './tftp-client.js';
import { Transfer } from './staging.js';
import type { FetchOptions, FetchResult, Fetcher } from './types.js';
import { redactUrl, validateUrlPrefix } from './url.js';

export type { FetchOptions, FetchResult, Fetcher, HttpFetchOptions, TftpFetchOptions } from './types.js';
export { joinPatchUrl, redactUrl, validateFileName, validateUrlPrefix } from './url.js';
export { startPatchServer, type PatchServer, type PatchServerOptions } from './patch-server.js';
export { checkTftpOptions } from './tftp-client.js';
export type { TftpServerSettings } from './tftp-server.js';

type ProtocolClient = (transfer: Transfer) => Promise<void>;

const CLIENTS: Record<string, ProtocolClient> = {
  'file:': fetchFile,
  'tftp:': fetchTftp,
  'http:': fetchHttp,
  'https:': fetchHttp,
};

/**
 * Fetches a URL into destinationPath with the client for its scheme. On any failure the destination file is
 * removed and one of the transport errors from errors/ is thrown, with the URL redacted in its message.
 */
async function fetchToFile(url: string, destinationPath: string, options: FetchOptions): Promise<FetchResult> {
  validateUrlPrefix(url);
  const protocol = new URL(url).protocol;
  const client = CLIENTS[protocol];
  if (!client) {
    throw new BadUrlError(`unsupported URL scheme in ${redactUrl(url)}: ${protocol} has no client`);
  }
  if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes < 0) {
    throw new InvalidArgumentError(`invalid maxBytes ${options.maxBytes}: expected a non-negative integer`);
  }
  if (!Number.isFinite(options.timeoutMs) || options.timeoutMs <= 0) {
    throw new InvalidArgumentError(`invalid timeoutMs ${options.timeoutMs}: expected a positive number of milliseconds`);
  }

  const transfer = new Transfer(url, destinationPath, options);
  try {
    transfer.throwIfStopped();
    await client(transfer);
    transfer.throwIfStopped();
    const bytes = await transfer.finish();
    return { bytes, path: destinationPath };
  } catch (error) {
    await transfer.discard();
    throw transfer.failure(error);
  } finally {
    transfer.dispose();
  }
}

/** The fetcher the upgrade engine uses: dispatches on the URL scheme. */
export const defaultFetcher: Fetcher = { fetchToFile };
