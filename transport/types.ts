/** Limits and callbacks for one fetch. */
export interface FetchOptions {
  /** Largest file accepted; a larger one fails with FileTooLargeError, before the body when the size is announced. */
  maxBytes: number;
  /** Overall deadline for the whole transfer, retries and redirects included; TransferTimeoutError past it. */
  timeoutMs: number;
  /** Aborting it stops the transfer with AbortedError and removes the partial file. */
  signal?: AbortSignal;
  /**
   * Called once before any body byte is written, with the size the server announced (TFTP tsize, HTTP
   * Content-Length) or undefined. May throw (e.g. InsufficientFlashError) to stop the transfer; the error propagates.
   */
  onSize?(totalBytes: number | undefined): void | Promise<void>;
  onProgress?(bytesDone: number, bytesTotal: number | undefined): void;
  tftp?: TftpFetchOptions;
  http?: HttpFetchOptions;
}

export interface TftpFetchOptions {
  /** Requested block size in bytes (RFC 2348, 8 to 65,464); default 1468, which fits a 1,500 byte Ethernet MTU. */
  blksize?: number;
  /** Requested number of blocks sent before each ACK (RFC 7440, 1 to 65,535); default 1. */
  windowsize?: number;
  /** Retransmissions of one request or ACK before giving up; default 5. */
  retries?: number;
  /** Time to wait for the next packet before retransmitting, in ms; default 1000. */
  timeoutMs?: number;
}

export interface HttpFetchOptions {
  /** PEM file with the certificate authorities trusted for https:, in place of Node's built-in list. */
  caFile?: string;
  /** Time allowed to open the TCP connection (and finish the TLS handshake), in ms; default 10,000. */
  connectTimeoutMs?: number;
  /** Maximum silence while waiting for headers or body bytes, in ms; default 30,000. */
  idleTimeoutMs?: number;
  /** Redirects followed before failing; default 3. */
  maxRedirects?: number;
  /** Further requests made after an interrupted body (resumed with Range when possible); default 3. */
  resumeAttempts?: number;
}

export interface FetchResult {
  /** Size of the fetched file in bytes. */
  bytes: number;
  /** The staging file the body was written to. */
  path: string;
}

/** Downloads one URL into a staging file; the seam the upgrade engine uses and tests replace. */
export interface Fetcher {
  fetchToFile(url: string, destinationPath: string, options: FetchOptions): Promise<FetchResult>;
}
