import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';

/** A raw TFTP endpoint for tests that must send or receive exact packets. */
export class RawTftpPeer {
  readonly socket: Socket = createSocket('udp4');
  private readonly inbox: Array<{ message: Buffer; from: RemoteInfo }> = [];
  private waiter: (() => void) | undefined;

  async bind(port = 0): Promise<number> {
    this.socket.on('message', (message, from) => {
      this.inbox.push({ message, from });
      this.waiter?.();
    });
    await new Promise<void>((resolve) => this.socket.bind(port, '127.0.0.1', resolve));
    return this.socket.address().port;
  }

  send(message: Buffer, port: number): void {
    this.socket.send(message, port, '127.0.0.1');
  }

  /** Resolves with the next datagram, or rejects after `timeoutMs`. */
  async receive(timeoutMs = 2000): Promise<{ message: Buffer; from: RemoteInfo }> {
    const deadline = Date.now() + timeoutMs;
    while (this.inbox.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no datagram within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.inbox.shift()!;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

function strings(opcode: number, parts: string[]): Buffer {
  const head = Buffer.alloc(2);
  head.writeUInt16BE(opcode);
  return Buffer.concat([head, ...parts.map((part) => Buffer.from(`${part}\0`, 'latin1'))]);
}

export const rrq = (name: string, mode = 'octet', options: Record<string, string> = {}) => strings(1, [name, mode, ...Object.entries(options).flat()]);
export const wrq = (name: string) => strings(2, [name, 'octet']);
export const oack = (options: Record<string, string>) => strings(6, Object.entries(options).flat());

export function ack(block: number): Buffer {
  const packet = Buffer.alloc(4);
  packet.writeUInt16BE(4, 0);
  packet.writeUInt16BE(block, 2);
  return packet;
}

export function data(block: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(3, 0);
  head.writeUInt16BE(block, 2);
  return Buffer.concat([head, payload]);
}

export function errorPacket(code: number, text: string): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(5, 0);
  head.writeUInt16BE(code, 2);
  return Buffer.concat([head, Buffer.from(`${text}\0`, 'latin1')]);
}

/** Decodes what a test needs to look at: the opcode and, by kind, block, error code and text, or options. */
export function decode(message: Buffer): { opcode: number; block?: number; code?: number; text?: string; length?: number; options?: Record<string, string>; name?: string } {
  const opcode = message.readUInt16BE(0);
  if (opcode === 3) return { opcode, block: message.readUInt16BE(2), length: message.length - 4 };
  if (opcode === 4) return { opcode, block: message.readUInt16BE(2) };
  if (opcode === 5) return { opcode, code: message.readUInt16BE(2), text: message.toString('latin1', 4, message.length - 1) };
  const fields = message.toString('latin1', 2).split('\0').slice(0, -1);
  if (opcode === 6) return { opcode, options: Object.fromEntries(pairs(fields)) };
  const [name, , ...rest] = fields;
  return { opcode, name, options: Object.fromEntries(pairs(rest)) };
}

function pairs(fields: string[]): Array<[string, string]> {
  const result: Array<[string, string]> = [];
  for (let i = 0; i + 1 < fields.length; i += 2) result.push([fields[i], fields[i + 1]]);
  return result;
}
