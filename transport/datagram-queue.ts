import type { RemoteInfo, Socket } from 'node:dgram';

export interface Datagram {
  message: Buffer;
  from: RemoteInfo;
}

/**
 * Turns a UDP socket's message events into awaitable reads with a timeout, so a TFTP session can be written as
 * a loop. Datagrams that arrive while the session is busy (writing to disk, reading a file) wait here in order.
 */
export class DatagramQueue {
  private readonly queued: Datagram[] = [];
  private waiting: ((datagram: Datagram | undefined) => void) | undefined;
  private readonly onMessage = (message: Buffer, from: RemoteInfo) => {
    if (this.waiting) {
      const wake = this.waiting;
      this.waiting = undefined;
      wake({ message, from });
    } else {
      this.queued.push({ message, from });
    }
  };

  constructor(private readonly socket: Socket) {
    socket.on('message', this.onMessage);
  }

  /** Resolves with the next datagram, or undefined when none arrives within `timeoutMs`; rejects on abort. */
  next(timeoutMs: number, signal?: AbortSignal): Promise<Datagram | undefined> {
    const ready = this.queued.shift();
    if (ready) return Promise.resolve(ready);
    if (signal?.aborted) return Promise.reject(signal.reason);

    return new Promise((resolve, reject) => {
      const onAbort = () => {
        clearTimeout(timer);
        this.waiting = undefined;
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        this.waiting = undefined;
        signal?.removeEventListener('abort', onAbort);
        resolve(undefined);
      }, timeoutMs);
      this.waiting = (datagram) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(datagram);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Datagrams received and not read yet. */
  get length(): number {
    return this.queued.length;
  }

  detach(): void {
    this.socket.off('message', this.onMessage);
    this.waiting?.(undefined);
    this.waiting = undefined;
  }
}
