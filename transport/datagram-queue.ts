import type { RemoteInfo, Socket } from 'node:dgram';

export interface Datagram {
  message: Buffer;
  from: RemoteInfo;
}

/**
 * Turns a UDP socket's message events into awaitable reads with a timeout, so a TFTP session can be written as
 * a loop. Datagrams that arrive while the session is busy (writing to disk, reading a file) wait here in order.
 * One timer is kept and re-armed for each wait, since a wait happens for every block.
 */
export class DatagramQueue {
  private readonly queued: Datagram[] = [];
  private resolveWait: ((datagram: Datagram | undefined) => void) | undefined;
  private rejectWait: ((reason: unknown) => void) | undefined;
  private timeoutMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private pendingSends = 0;
  private onSendsDone: (() => void) | undefined;

  private readonly onMessage = (message: Buffer, from: RemoteInfo) => {
    if (this.resolveWait) this.settle({ message, from });
    else this.queued.push({ message, from });
  };
  private readonly onTimeout = () => this.settle(undefined);
  private readonly onAbort = () => {
    const reject = this.rejectWait;
    this.clearWait();
    reject?.(this.signal?.reason);
  };
  private readonly onSent = () => {
    this.pendingSends -= 1;
    if (this.pendingSends === 0) this.onSendsDone?.();
  };

  /**
   * Listens on `socket`. Aborting `signal` rejects the wait in progress and every later one. The abort listener
   * is added once here, because adding and removing it for each block costs more than the rest of the wait.
   */
  constructor(
    private readonly socket: Socket,
    private readonly signal?: AbortSignal,
  ) {
    socket.on('message', this.onMessage);
    signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Returns the next datagram that has already arrived, without waiting. */
  take(): Datagram | undefined {
    return this.queued.shift();
  }

  /** Resolves with the next datagram, or undefined when none arrives within `timeoutMs`; rejects on abort. */
  next(timeoutMs: number): Promise<Datagram | undefined> {
    const ready = this.queued.shift();
    if (ready) return Promise.resolve(ready);
    if (this.signal?.aborted) return Promise.reject(this.signal.reason);

    return new Promise((resolve, reject) => {
      this.resolveWait = resolve;
      this.rejectWait = reject;
      if (!this.timer || this.timeoutMs !== timeoutMs) {
        clearTimeout(this.timer);
        this.timeoutMs = timeoutMs;
        this.timer = setTimeout(this.onTimeout, timeoutMs);
        // The socket keeps the process alive while a session runs; this timer alone should not.
        this.timer.unref();
      } else {
        this.timer.refresh();
      }
    });
  }

  /** Sends a datagram, counting it until the kernel has taken it, so flushed() can wait for the last one. */
  send(packet: Buffer, port: number, address: string): void {
    this.pendingSends += 1;
    this.socket.send(packet, port, address, this.onSent);
  }

  /** Resolves once every datagram handed to send() has left; closing the socket earlier would cancel them. */
  flushed(): Promise<void> {
    if (this.pendingSends === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.onSendsDone = resolve;
    });
  }

  detach(): void {
    this.socket.off('message', this.onMessage);
    this.signal?.removeEventListener('abort', this.onAbort);
    clearTimeout(this.timer);
    this.timer = undefined;
    this.settle(undefined);
  }

  private settle(datagram: Datagram | undefined): void {
    const resolve = this.resolveWait;
    this.clearWait();
    resolve?.(datagram);
  }

  private clearWait(): void {
    // The timer keeps running: the next wait re-arms it with refresh(), and a firing with no wait does nothing.
    this.resolveWait = undefined;
    this.rejectWait = undefined;
  }
}
