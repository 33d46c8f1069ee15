import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';

import { AccessViolationError, FileNotFoundError, InvalidArgumentError } from '../errors/index.js';
import { DatagramQueue, type Datagram } from './datagram-queue.js';
import { formatEndpoint, listenFailure, type TransferRecord } from './http-server.js';
import { openServedFile, type ServedFile } from './served-file.js';
import {
  ERROR_CODE,
  MAX_BLKSIZE,
  MAX_WINDOWSIZE,
  MIN_BLKSIZE,
  OPCODE,
  PLAIN_BLKSIZE,
  decodeOrDrop,
  encodeData,
  encodeError,
  encodeOack,
  type Options,
  type Packet,
  type RequestPacket,
} from './tftp-packets.js';

export interface TftpServerSettings {
  /** Largest blksize granted; requests for more get this much (RFC 2348). Default 65,464. */
  maxBlksize?: number;
  /** Largest windowsize granted (RFC 7440). Default 64. */
  maxWindowsize?: number;
  /** Wait for an ACK before resending, in ms, unless the client asks for another timeout (RFC 2349). Default 1000. */
  timeoutMs?: number;
  /** Resends of one window before the client is given up. Default 5. */
  retries?: number;
  /** Transfers served at once; further requests get ERROR 0 until one ends. Default 256. */
  maxSessions?: number;
}

// File data is read in pieces of this size and cut into blocks, rather than one read per block.
const READ_AHEAD_BYTES = 1024 * 1024;

/**
 * Starts the read-only TFTP side of the patch server. Each read request gets its own socket (its transfer ID,
 * RFC 1350 section 4) and its own loop, so a client that vanishes or sends ERROR ends only its own transfer.
 */
export async function startTftpServer(
  root: string,
  address: { host: string; port: number },
  record: (entry: TransferRecord) => void,
  settings: TftpServerSettings = {},
): Promise<{ address: { host: string; port: number }; close(): Promise<void> }> {
  const family = address.host.includes(':') ? 'udp6' : 'udp4';
  const listener = createSocket(family);
  const sessions = new Map<string, SendSession>();
  const limits = {
    maxBlksize: settings.maxBlksize ?? MAX_BLKSIZE,
    maxWindowsize: settings.maxWindowsize ?? 64,
    timeoutMs: settings.timeoutMs ?? 1000,
    retries: settings.retries ?? 5,
  };
  const maxSessions = settings.maxSessions ?? 256;
  if (!Number.isInteger(limits.maxBlksize) || limits.maxBlksize < MIN_BLKSIZE || limits.maxBlksize > MAX_BLKSIZE) {
    throw new InvalidArgumentError(`invalid TFTP maximum blksize ${settings.maxBlksize}: expected an integer from ${MIN_BLKSIZE} to ${MAX_BLKSIZE}`);
  }
  if (!Number.isInteger(limits.maxWindowsize) || limits.maxWindowsize < 1 || limits.maxWindowsize > MAX_WINDOWSIZE) {
    throw new InvalidArgumentError(`invalid TFTP maximum windowsize ${settings.maxWindowsize}: expected an integer from 1 to ${MAX_WINDOWSIZE}`);
  }

  listener.on('message', (message, from) => {
    const packet = decodeOrDrop(message);
    if (!packet) return;

    const client = formatEndpoint(from.address, from.port);
    if (packet.opcode === OPCODE.WRQ) {
      replyOnce(family, address.host, from, ERROR_CODE.accessViolation, 'this server is read-only');
      record({ protocol: 'tftp', client, file: packet.fileName, bytes: 0, durationMs: 0, result: 'rejected: write request' });
      return;
    }
    // Anything but a request on the listening port belongs to no transfer and is dropped (RFC 1350 section 4).
    if (packet.opcode !== OPCODE.RRQ) return;

    // A client resends its RRQ when our first reply is late, and the session already running handles that.
    if (sessions.has(client)) return;
    if (sessions.size >= maxSessions) {
      replyOnce(family, address.host, from, ERROR_CODE.notDefined, 'server busy, try again later');
      record({ protocol: 'tftp', client, file: packet.fileName, bytes: 0, durationMs: 0, result: 'rejected: server busy' });
      return;
    }

    const session = new SendSession(root, family, address.host, from, packet, limits, record);
    sessions.set(client, session);
    void session.run().finally(() => sessions.delete(client));
  });

  await new Promise<void>((resolve, reject) => {
    const fail = (error: Error) => reject(listenFailure('TFTP', address, error));
    listener.once('error', fail);
    listener.bind(address.port, address.host, () => {
      listener.off('error', fail);
      resolve();
    });
  });
  listener.on('error', () => undefined);
  const bound = listener.address();

  return {
    address: { host: bound.address, port: bound.port },
    close: async () => {
      listener.close();
      const running = [...sessions.values()];
      for (const session of running) session.stop();
      await Promise.all(running.map((session) => session.done));
    },
  };
}

/** Sends one ERROR from a fresh port, for requests that get no transfer. */
function replyOnce(family: 'udp4' | 'udp6', host: string, to: RemoteInfo, code: number, message: string): void {
  const socket = createSocket(family);
  socket.on('error', () => socket.close());
  socket.bind(0, host, () => {
    socket.send(encodeError(code, message), to.port, to.address, () => socket.close());
  });
}

interface SessionLimits {
  maxBlksize: number;
  maxWindowsize: number;
  timeoutMs: number;
  retries: number;
}

/** One client's read request, from the first reply to the last ACK. */
class SendSession {
  done: Promise<void> = Promise.resolve();
  private readonly socket: Socket;
  private readonly queue: DatagramQueue;
  private readonly stopper = new AbortController();
  private readonly started = Date.now();
  private bytesAcknowledged = 0;
  private file: ServedFile | undefined;
  private cache = Buffer.alloc(0);
  private cacheOffset = 0;

  constructor(
    private readonly root: string,
    family: 'udp4' | 'udp6',
    private readonly host: string,
    private readonly client: RemoteInfo,
    private readonly request: RequestPacket,
    private readonly limits: SessionLimits,
    private readonly record: (entry: TransferRecord) => void,
  ) {
    this.socket = createSocket(family);
    this.socket.on('error', () => undefined);
    this.queue = new DatagramQueue(this.socket, this.stopper.signal);
  }

  /** Serves the request and logs its one line; never throws. */
  run(): Promise<void> {
    this.done = this.serve()
      .then((result) => this.finish(result))
      .catch((error: unknown) => this.finish(`failed: ${error instanceof Error ? error.message : String(error)}`));
    return this.done;
  }

  /** Ends the transfer early, telling the client, as when the server shuts down. */
  stop(): void {
    this.stopper.abort();
  }

  private async serve(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.bind(0, this.host, () => {
        this.socket.off('error', reject);
        resolve();
      });
    });

    if (this.request.mode !== 'octet') {
      // netascii would rewrite line ends and change the size announced in tsize; images are binary.
      this.sendError(ERROR_CODE.illegalOperation, `mode ${this.request.mode} not supported, use octet (binary)`);
      return `rejected: mode ${this.request.mode}`;
    }

    try {
      this.file = await openServedFile(this.root, this.request.fileName);
    } catch (error) {
      if (error instanceof FileNotFoundError) {
        this.sendError(ERROR_CODE.fileNotFound, 'file not found');
        return `rejected: ${error.message}`;
      }
      if (error instanceof AccessViolationError) {
        this.sendError(ERROR_CODE.accessViolation, 'access violation');
        return `rejected: ${error.message}`;
      }
      throw error;
    }

    const { granted, blksize, windowsize, timeoutMs } = this.negotiate(this.file.size);
    if (Object.keys(granted).length > 0) {
      const accepted = await this.sendOack(granted, timeoutMs);
      if (accepted !== 'ok') return accepted;
    }
    return this.sendFile(blksize, windowsize, timeoutMs);
  }

  /** Picks the options to grant: only those requested, lowered to this server's limits (RFC 2347 to 2349, 7440). */
  private negotiate(size: number): { granted: Options; blksize: number; windowsize: number; timeoutMs: number } {
    const requested = this.request.options;
    const granted: Options = {};
    let blksize = PLAIN_BLKSIZE;
    let windowsize = 1;
    let timeoutMs = this.limits.timeoutMs;

    const requestedBlksize = Number(requested.blksize);
    if (Number.isInteger(requestedBlksize) && requestedBlksize >= MIN_BLKSIZE) {
      blksize = Math.min(requestedBlksize, this.limits.maxBlksize);
      granted.blksize = String(blksize);
    }
    const requestedWindowsize = Number(requested.windowsize);
    if (Number.isInteger(requestedWindowsize) && requestedWindowsize >= 1) {
      windowsize = Math.min(requestedWindowsize, this.limits.maxWindowsize);
      granted.windowsize = String(windowsize);
    }
    if (requested.tsize !== undefined) granted.tsize = String(size);
    const requestedTimeout = Number(requested.timeout);
    if (Number.isInteger(requestedTimeout) && requestedTimeout >= 1 && requestedTimeout <= 255) {
      timeoutMs = requestedTimeout * 1000;
      granted.timeout = String(requestedTimeout);
    }
    return { granted, blksize, windowsize, timeoutMs };
  }

  /** Sends the OACK until the client acknowledges it with ACK 0; returns 'ok' or the reason the transfer ended. */
  private async sendOack(granted: Options, timeoutMs: number): Promise<string> {
    const oack = encodeOack(granted);
    for (let attempt = 0; attempt <= this.limits.retries; attempt += 1) {
      this.send(oack);
      const deadline = Date.now() + timeoutMs;
      for (let left = timeoutMs; left > 0; left = deadline - Date.now()) {
        const packet = await this.nextFromClient(left);
        if (packet === 'timeout') break;
        if (packet.opcode === OPCODE.ERROR) return `client sent ERROR ${packet.code} "${packet.message}" to the OACK`;
        if (packet.opcode === OPCODE.ACK && packet.block === 0) return 'ok';
      }
    }
    return 'timed out waiting for the ACK of the OACK';
  }

  /**
   * Sends the file in windows of `windowsize` blocks (RFC 7440). An ACK inside the window means the blocks after
   * it were lost, so sending resumes from the block after the acknowledged one. A timeout resends from there too.
   * Block numbers are the block index modulo 2^16, so block 65,536 goes out as 0 (what tftp-hpa and atftp expect).
   */
  private async sendFile(blksize: number, windowsize: number, timeoutMs: number): Promise<string> {
    const size = this.file!.size;
    const totalBlocks = Math.floor(size / blksize) + 1;
    let acknowledged = 0;
    let nextToSend = 1;
    let retriesLeft = this.limits.retries;
    let resentForDuplicate = false;

    while (acknowledged < totalBlocks) {
      while (nextToSend <= totalBlocks && nextToSend <= acknowledged + windowsize) {
        const data = this.cachedBlock(nextToSend, blksize) ?? (await this.readBlock(nextToSend, blksize));
        this.send(encodeData(nextToSend, data));
        nextToSend += 1;
      }

      const packet = this.takeFromClient() ?? (await this.nextFromClient(timeoutMs));
      if (packet === 'timeout') {
        if (retriesLeft === 0) return `timed out: no ACK after ${this.limits.retries + 1} tries, block ${acknowledged + 1} unacknowledged`;
        retriesLeft -= 1;
        nextToSend = acknowledged + 1;
        continue;
      }
      if (packet.opcode === OPCODE.ERROR) return `client sent ERROR ${packet.code} "${packet.message}"`;
      if (packet.opcode !== OPCODE.ACK) continue;

      // The ACK's 16 bit number names the one block in [acknowledged, nextToSend - 1] with those low bits.
      const acked = acknowledged + ((packet.block - acknowledged) & 0xffff);
      if (acked > nextToSend - 1) continue;

      if (acked > acknowledged) {
        acknowledged = acked;
        this.bytesAcknowledged = Math.min(acknowledged * blksize, size);
        retriesLeft = this.limits.retries;
        resentForDuplicate = false;
        if (acked < nextToSend - 1) nextToSend = acked + 1;
      } else if (windowsize > 1 && !resentForDuplicate) {
        // A repeated ACK in windowed mode reports that the first block of the window was lost. Stop-and-wait
        // (windowsize 1) ignores it instead, as resending on duplicate ACKs causes the Sorcerer's Apprentice
        // Syndrome (RFC 1123 section 4.2.3.1).
        nextToSend = acknowledged + 1;
        resentForDuplicate = true;
      }
    }
    return 'ok';
  }

  /** Returns block `index` (1-based) of the file when it is in the read-ahead buffer, else undefined. */
  private cachedBlock(index: number, blksize: number): Buffer | undefined {
    const offset = (index - 1) * blksize;
    const length = Math.max(0, Math.min(blksize, this.file!.size - offset));
    if (offset < this.cacheOffset || offset + length > this.cacheOffset + this.cache.length) return undefined;
    return this.cache.subarray(offset - this.cacheOffset, offset - this.cacheOffset + length);
  }

  /** Reads the file from block `index` on into the read-ahead buffer and returns that block. */
  private async readBlock(index: number, blksize: number): Promise<Buffer> {
    const file = this.file!;
    const offset = (index - 1) * blksize;
    const length = Math.max(0, Math.min(blksize, file.size - offset));
    const readSize = Math.max(READ_AHEAD_BYTES - (READ_AHEAD_BYTES % blksize), blksize);
    const buffer = Buffer.allocUnsafe(Math.min(readSize, Math.max(0, file.size - offset)));
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await file.handle.read(buffer, filled, buffer.length - filled, offset + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    this.cache = buffer.subarray(0, filled);
    this.cacheOffset = offset;
    return this.cache.subarray(0, Math.min(length, filled));
  }

  /** Returns a packet from this client that has already arrived, without waiting. */
  private takeFromClient(): Packet | undefined {
    for (let datagram = this.queue.take(); datagram; datagram = this.queue.take()) {
      const packet = this.fromClient(datagram);
      if (packet) return packet;
    }
    return undefined;
  }

  /** Waits for the next packet from this client's transfer ID. */
  private async nextFromClient(timeoutMs: number): Promise<Packet | 'timeout'> {
    const deadline = Date.now() + timeoutMs;
    for (let left = timeoutMs; left > 0; left = deadline - Date.now()) {
      let datagram;
      try {
        datagram = await this.queue.next(left);
      } catch {
        this.sendError(ERROR_CODE.notDefined, 'server shutting down');
        throw new Error('server shut down during the transfer');
      }
      if (!datagram) return 'timeout';

      const packet = this.fromClient(datagram);
      if (packet) return packet;
    }
    return 'timeout';
  }

  /** Decodes a datagram from this client; others get ERROR 5 (RFC 1350 section 4) and malformed ones are dropped. */
  private fromClient(datagram: Datagram): Packet | undefined {
    if (datagram.from.address !== this.client.address || datagram.from.port !== this.client.port) {
      this.socket.send(encodeError(ERROR_CODE.unknownTransferId, 'unknown transfer ID'), datagram.from.port, datagram.from.address);
      return undefined;
    }
    return decodeOrDrop(datagram.message);
  }

  private send(packet: Buffer): void {
    this.queue.send(packet, this.client.port, this.client.address);
  }

  private sendError(code: number, message: string): void {
    this.send(encodeError(code, message));
  }

  private async finish(result: string): Promise<void> {
    this.queue.detach();
    await this.file?.handle.close().catch(() => undefined);
    await this.queue.flushed();
    this.socket.close();
    this.record({
      protocol: 'tftp',
      client: formatEndpoint(this.client.address, this.client.port),
      file: this.request.fileName,
      bytes: this.bytesAcknowledged,
      durationMs: Date.now() - this.started,
      result,
    });
  }
}
