import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';

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
import { DatagramQueue, type Datagram } from './datagram-queue.js';
import type { Transfer } from './staging.js';
import type { TftpFetchOptions } from './types.js';
import {
  ERROR_CODE,
  MAX_BLKSIZE,
  MAX_WINDOWSIZE,
  MIN_BLKSIZE,
  OPCODE,
  PLAIN_BLKSIZE,
  decodeOrDrop,
  encodeAck,
  encodeError,
  encodeRequest,
  type Options,
} from './tftp-packets.js';

// NOTE: this client and the server are written on node:dgram rather than with the `tftp` package (0.1.2), read
// in node_modules/tftp/lib/protocol. Its reader guesses whether block 0 or 1 follows 65,535, and a comment there
// states that it ignores the rollover option. It never sorts a window that arrived out of order, because the check
// reads a misspelled `_windowsSize`. It takes the server's RFC 2349 timeout, in seconds, as milliseconds. Its sender, after an ACK
// inside the window, sends the unacknowledged blocks together with a full new window instead of resending from
// the acknowledged block.

/** 1,468 bytes of data plus the IP, UDP and TFTP headers fill a 1,500 byte Ethernet MTU without fragments. */
export const DEFAULT_BLKSIZE = 1468;
const DEFAULT_WINDOWSIZE = 1;
const DEFAULT_RETRIES = 5;
const DEFAULT_TIMEOUT_MS = 1000;
const DEFAULT_PORT = 69;

interface Negotiated {
  blksize: number;
  windowsize: number;
  tsize: number | undefined;
}

interface ClientSettings {
  blksize: number;
  windowsize: number;
  retries: number;
  timeoutMs: number;
}

/** Failure the server reported with an ERROR packet. */
class ServerErrorPacket extends Error {
  constructor(readonly code: number, readonly text: string) {
    super(`server sent ERROR ${code}: ${text}`);
  }
}

/**
 * Downloads a tftp: URL into the staging file (RFC 1350 with options from RFC 2347, 2348, 2349 and 7440). The
 * server's tsize is announced before the first DATA block is acknowledged. When the server rejects the options
 * (ERROR 8) or grants more than was requested, the request is sent again without options.
 */
export async function fetchTftp(transfer: Transfer): Promise<void> {
  const settings = readSettings(transfer);
  const url = new URL(transfer.url);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port === '' ? DEFAULT_PORT : Number(url.port);
  let fileName: string;
  try {
    fileName = decodeURIComponent(url.pathname.replace(/^\//, ''));
  } catch {
    throw new BadUrlError(`${transfer.shownUrl} has invalid percent-encoding in its path: expected %XX escapes of UTF-8 bytes`);
  }
  if (fileName === '') {
    throw new BadUrlError(`${transfer.shownUrl} names no file: expected tftp://host/file`);
  }

  const server = await lookup(host);
  const socket = createSocket(server.family === 6 ? 'udp6' : 'udp4');
  const queue = new DatagramQueue(socket, transfer.signal);
  socket.on('error', () => undefined);
  const session = new TftpReceiveSession(transfer, socket, queue, server.address, port, fileName, settings);
  try {
    await session.run();
  } finally {
    queue.detach();
    await queue.flushed();
    socket.close();
  }
}

function readSettings(transfer: Transfer): ClientSettings {
  return checkTftpOptions(transfer.options.tftp ?? {});
}

/**
 * Returns the TFTP client's settings with the defaults filled in, or throws InvalidArgumentError for a value out
 * of range. The device's command checks them before any transfer, whatever the URL's scheme.
 */
export function checkTftpOptions(options: TftpFetchOptions): ClientSettings {
  const settings = {
    blksize: options.blksize ?? DEFAULT_BLKSIZE,
    windowsize: options.windowsize ?? DEFAULT_WINDOWSIZE,
    retries: options.retries ?? DEFAULT_RETRIES,
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  };
  if (!Number.isInteger(settings.blksize) || settings.blksize < MIN_BLKSIZE || settings.blksize > MAX_BLKSIZE) {
    throw new InvalidArgumentError(`invalid TFTP blksize ${settings.blksize}: expected an integer from ${MIN_BLKSIZE} to ${MAX_BLKSIZE}`);
  }
  if (!Number.isInteger(settings.windowsize) || settings.windowsize < 1 || settings.windowsize > MAX_WINDOWSIZE) {
    throw new InvalidArgumentError(`invalid TFTP windowsize ${settings.windowsize}: expected an integer from 1 to ${MAX_WINDOWSIZE}`);
  }
  if (!Number.isInteger(settings.retries) || settings.retries < 0) {
    throw new InvalidArgumentError(`invalid TFTP retries ${settings.retries}: expected a non-negative integer`);
  }
  if (!(settings.timeoutMs > 0)) {
    throw new InvalidArgumentError(`invalid TFTP timeoutMs ${settings.timeoutMs}: expected a positive number of milliseconds`);
  }
  return settings;
}

/** One read request, from the RRQ to the last ACK. */
class TftpReceiveSession {
  /** The server's transfer ID (RFC 1350 section 4): the port its first reply came from. */
  private serverPort: number | undefined;
  private lastAck: Buffer = encodeAck(0);
  private lastAckSentAt = 0;
  /** Ports of sessions given up after refused options; their late packets must not start the next session. */
  private readonly abandonedPorts = new Set<number>();

  constructor(
    private readonly transfer: Transfer,
    private readonly socket: Socket,
    private readonly queue: DatagramQueue,
    private readonly address: string,
    private readonly port: number,
    private readonly fileName: string,
    private readonly settings: ClientSettings,
  ) {}

  async run(): Promise<void> {
    try {
      let first = await this.sendRequest(true);
      if (first === 'optionsRejected') first = await this.sendRequest(false);
      if (first === 'optionsRejected') {
        throw new TransferError(`${this.transfer.shownUrl}: the server rejected a request without options`);
      }
      await this.receive(first.negotiated, first.firstData);
    } catch (error) {
      this.tellServer(error);
      if (error instanceof ServerErrorPacket) throw this.mapServerError(error);
      throw error;
    }
  }

  /**
   * Sends the RRQ, resending it on timeout, and returns what the first reply settled: the options in force and,
   * when the server ignored the options, the first DATA block. Returns 'optionsRejected' for ERROR 8 and for an
   * OACK this client refuses.
   */
  private async sendRequest(withOptions: boolean): Promise<{ negotiated: Negotiated; firstData?: Datagram } | 'optionsRejected'> {
    const requested: Options = {};
    if (withOptions) {
      requested.blksize = String(this.settings.blksize);
      requested.tsize = '0';
      // The RFC 2349 timeout option is not sent: it would set the server's resend timer to whole seconds, far
      // slower than the server's own default on a lossy link, and this client's timer does not depend on it.
      if (this.settings.windowsize > 1) requested.windowsize = String(this.settings.windowsize);
    }
    const request = encodeRequest(OPCODE.RRQ, this.fileName, 'octet', requested);
    this.serverPort = undefined;

    for (let attempt = 0; attempt <= this.settings.retries; attempt += 1) {
      this.socket.send(request, this.port, this.address);
      const deadline = Date.now() + this.settings.timeoutMs;

      for (let left = this.settings.timeoutMs; left > 0; left = deadline - Date.now()) {
        const datagram = await this.queue.next(left);
        if (!datagram) break;
        if (datagram.from.address !== this.address || this.abandonedPorts.has(datagram.from.port)) continue;

        const packet = decodeOrDrop(datagram.message);
        if (!packet) continue;
        this.serverPort = datagram.from.port;

        if (packet.opcode === OPCODE.ERROR) {
          if (withOptions && packet.code === ERROR_CODE.optionsRejected) {
            this.abandonedPorts.add(datagram.from.port);
            return 'optionsRejected';
          }
          throw new ServerErrorPacket(packet.code, packet.message);
        }
        if (packet.opcode === OPCODE.DATA) {
          // A server that ignores options replies with DATA block 1, in RFC 1350's fixed 512 byte blocks.
          await this.transfer.announceSize(undefined);
          return { negotiated: { blksize: PLAIN_BLKSIZE, windowsize: 1, tsize: undefined }, firstData: datagram };
        }
        if (packet.opcode === OPCODE.OACK && withOptions) {
          const negotiated = this.checkOack(packet.options, requested);
          if (negotiated === undefined) return 'optionsRejected';
          await this.transfer.announceSize(negotiated.tsize);
          this.lastAck = encodeAck(0);
          this.send(this.lastAck);
          return { negotiated };
        }
        this.sendError(ERROR_CODE.illegalOperation, `unexpected opcode ${packet.opcode} in reply to RRQ`);
        throw new TransferError(`${this.transfer.shownUrl}: expected DATA or OACK in reply to the request, got opcode ${packet.opcode}`);
      }
    }
    throw new TransferTimeoutError(
      `no reply from ${this.transfer.shownUrl} to the read request after ${this.settings.retries + 1} tries of ${this.settings.timeoutMs} ms`,
    );
  }

  /**
   * Checks an OACK against the request (RFC 2347: a server may only acknowledge requested options, and RFC 2348
   * and 7440 let it lower blksize and windowsize, never raise them). A refused OACK gets ERROR 8 and undefined.
   */
  private checkOack(granted: Options, requested: Options): Negotiated | undefined {
    const refuse = (reason: string): undefined => {
      this.sendError(ERROR_CODE.optionsRejected, reason);
      if (this.serverPort !== undefined) this.abandonedPorts.add(this.serverPort);
      this.serverPort = undefined;
      return undefined;
    };

    for (const name of Object.keys(granted)) {
      if (!(name in requested)) return refuse(`option ${name} was not requested`);
    }
    const blksize = granted.blksize === undefined ? PLAIN_BLKSIZE : Number(granted.blksize);
    if (!Number.isInteger(blksize) || blksize < MIN_BLKSIZE || blksize > this.settings.blksize) {
      return refuse(`blksize ${granted.blksize} granted, expected ${MIN_BLKSIZE} to ${this.settings.blksize}`);
    }
    const windowsize = granted.windowsize === undefined ? 1 : Number(granted.windowsize);
    if (!Number.isInteger(windowsize) || windowsize < 1 || windowsize > this.settings.windowsize) {
      return refuse(`windowsize ${granted.windowsize} granted, expected 1 to ${this.settings.windowsize}`);
    }
    let tsize: number | undefined;
    if (granted.tsize !== undefined) {
      tsize = Number(granted.tsize);
      if (!/^\d+$/.test(granted.tsize) || !Number.isSafeInteger(tsize)) return refuse(`invalid tsize ${granted.tsize}`);
    }
    if (granted.timeout !== undefined && !/^\d+$/.test(granted.timeout)) {
      return refuse(`invalid timeout ${granted.timeout}`);
    }
    return { blksize, windowsize, tsize };
  }

  /**
   * Receives DATA blocks in order and acknowledges each window (RFC 7440). A full window or the last block gets an
   * ACK. A gap gets an immediate ACK of the last block received in order, so the server resends from there, and a
   * timeout resends the last ACK. Block numbers wrap after 65,535, to 0 as tftpd-hpa and atftpd do, or to 1.
   */
  private async receive(negotiated: Negotiated, firstData: Datagram | undefined): Promise<void> {
    const { blksize, windowsize, tsize } = negotiated;
    let receivedBlocks = 0;
    let lastWire = 0;
    let blocksSinceAck = 0;
    let retriesLeft = this.settings.retries;
    let answeredGap = false;
    let wrapsToOne = false;
    let lastProgressAt = Date.now();
    // Past this long without a new block, the transfer has stalled even if the server keeps repeating old ones.
    const stallMs = (this.settings.retries + 1) * this.settings.timeoutMs;

    const expectedWire = (): number => {
      const next = receivedBlocks + 1;
      if (next <= 0xffff) return next;
      return wrapsToOne ? ((next - 1) % 0xffff) + 1 : next & 0xffff;
    };

    let pending: Datagram | undefined = firstData;
    for (;;) {
      this.transfer.throwIfStopped();
      const datagram = pending ?? this.queue.take() ?? (await this.queue.next(this.settings.timeoutMs));
      pending = undefined;

      if (!datagram) {
        if (retriesLeft === 0) {
          throw new TransferTimeoutError(
            `${this.transfer.shownUrl} stalled: expected block ${receivedBlocks + 1}, nothing arrived in ${this.settings.retries + 1} waits of ${this.settings.timeoutMs} ms (${formatBytes(this.transfer.bytesDone)} received)`,
          );
        }
        retriesLeft -= 1;
        blocksSinceAck = 0;
        this.send(this.lastAck);
        continue;
      }
      if (!this.isFromServer(datagram)) continue;

      const packet = decodeOrDrop(datagram.message);
      if (!packet) continue;
      if (packet.opcode === OPCODE.ERROR) throw new ServerErrorPacket(packet.code, packet.message);
      if (packet.opcode === OPCODE.OACK) {
        // Our ACK of the OACK was lost and the server repeated the OACK.
        if (receivedBlocks === 0) this.send(this.lastAck);
        continue;
      }
      if (packet.opcode !== OPCODE.DATA) {
        this.sendError(ERROR_CODE.illegalOperation, `expected DATA, got opcode ${packet.opcode}`);
        throw new TransferError(`${this.transfer.shownUrl}: expected DATA, the server sent opcode ${packet.opcode}`);
      }
      if (packet.data.length > blksize) {
        this.sendError(ERROR_CODE.illegalOperation, `DATA of ${packet.data.length} bytes exceeds blksize ${blksize}`);
        throw new TransferError(`${this.transfer.shownUrl}: expected DATA of at most ${blksize} bytes, got ${packet.data.length}`);
      }

      let expected = expectedWire();
      if (packet.block !== expected && expected === 0 && packet.block === 1 && receivedBlocks === 0xffff) {
        wrapsToOne = true;
        expected = expectedWire();
      }

      if (packet.block !== expected) {
        if (Date.now() - lastProgressAt > stallMs) {
          throw new TransferTimeoutError(
            `${this.transfer.shownUrl} stalled: expected block ${receivedBlocks + 1}, got only other blocks for ${stallMs} ms (${formatBytes(this.transfer.bytesDone)} received)`,
          );
        }

        // The distance modulo 2^16 separates a block from the future (one before it was lost) from a repeated one.
        // A gap is acknowledged at once, so the server resends from the last block received in order (RFC 7440).
        // Repeated blocks mean our ACK was lost. They are acknowledged at most every half timeout, because an
        // ACK for each copy would make the server repeat each block again (Sorcerer's Apprentice Syndrome).
        const ahead = ((packet.block - expected) & 0xffff) < 0x8000;
        const ackIsOld = Date.now() - this.lastAckSentAt >= this.settings.timeoutMs / 2;
        if (ahead ? !answeredGap || ackIsOld : ackIsOld) {
          this.send(this.ackFor(lastWire));
          blocksSinceAck = 0;
        }
        if (ahead) answeredGap = true;
        continue;
      }

      // A block past maxBytes must fail before it is acknowledged.
      this.transfer.assertRoomFor(packet.data.length);
      receivedBlocks += 1;
      lastWire = packet.block;
      blocksSinceAck += 1;
      retriesLeft = this.settings.retries;
      answeredGap = false;
      lastProgressAt = Date.now();

      // The ACK goes out before the block is stored, so the server reads and sends the next window while this
      // side writes. A failed write still ends the transfer with an ERROR to the server.
      const last = packet.data.length < blksize;
      if (last || blocksSinceAck >= windowsize) {
        this.send(this.ackFor(lastWire));
        blocksSinceAck = 0;
      }
      const writing = packet.data.length > 0 ? this.transfer.write(packet.data) : undefined;
      if (writing) await writing;
      if (last) break;
    }

    const received = this.transfer.bytesDone;
    if (tsize !== undefined && received !== tsize) {
      const problem = received < tsize ? TransferTruncatedError : TransferError;
      throw new problem(`${this.transfer.shownUrl}: expected ${formatBytes(tsize)} as announced by tsize, got ${formatBytes(received)}`);
    }
  }

  /** Builds and remembers the ACK for the last block received in order, so a timeout can resend it. */
  private ackFor(wireBlock: number): Buffer {
    this.lastAck = encodeAck(wireBlock);
    return this.lastAck;
  }

  private isFromServer(datagram: Datagram): boolean {
    if (datagram.from.address === this.address && datagram.from.port === this.serverPort) return true;

    // RFC 1350 section 4: a packet from another port is not from our server; tell its sender and carry on.
    this.socket.send(encodeError(ERROR_CODE.unknownTransferId, 'unknown transfer ID'), datagram.from.port, datagram.from.address);
    return false;
  }

  private send(packet: Buffer): void {
    if (this.serverPort === undefined) return;
    this.queue.send(packet, this.serverPort, this.address);
    if (packet === this.lastAck) this.lastAckSentAt = Date.now();
  }

  private sendError(code: number, message: string): void {
    this.send(encodeError(code, message));
  }

  /** Tells the server to stop when this side gives up, so it does not keep resending to a closed port. */
  private tellServer(error: unknown): void {
    if (error instanceof ServerErrorPacket || this.serverPort === undefined) return;
    const reason = error instanceof UpgradeError ? error.code : 'transfer stopped';
    const code = error instanceof UpgradeError && error.code === 'fileTooLarge' ? ERROR_CODE.diskFull : ERROR_CODE.notDefined;
    this.sendError(code, `client stopped: ${reason}`);
  }

  private mapServerError(error: ServerErrorPacket): UpgradeError {
    const shown = this.transfer.shownUrl;
    if (error.code === ERROR_CODE.fileNotFound) {
      return new FileNotFoundError(`${shown} not found: the server sent ERROR 1 "${error.text}"`);
    }
    if (error.code === ERROR_CODE.accessViolation) {
      return new AccessViolationError(`${shown} access denied: the server sent ERROR 2 "${error.text}"`);
    }
    return new TransferError(`${shown} failed: the server sent ERROR ${error.code} "${error.text}"`);
  }
}
