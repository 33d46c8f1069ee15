/**
 * Minimal TFTP peers on node:dgram for the transport benchmark. The client ACKs each block in order and drops the
 * data, and the server sends blocks from memory. Neither validates packets, touches a file or handles loss, so at
 * windowsize 1, where each block waits for a round trip, their throughput bounds any TFTP peer built on node:dgram.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';

const DATA = 3;
const ACK = 4;
const OACK = 6;

function ack(block: number): Buffer {
  const packet = Buffer.alloc(4);
  packet.writeUInt16BE(ACK, 0);
  packet.writeUInt16BE(block & 0xffff, 2);
  return packet;
}

/** Reads `fileName` from the server at 127.0.0.1:`port` with the given blksize; resolves with the bytes received. */
export function floorClient(port: number, fileName: string, blksize: number): Promise<number> {
  const socket = createSocket('udp4');
  const request = Buffer.from(`\x00\x01${fileName}\x00octet\x00blksize\x00${blksize}\x00`, 'latin1');
  let expected = 1;
  let received = 0;

  return new Promise((resolve, reject) => {
    socket.on('error', reject);
    socket.on('message', (message: Buffer, from: RemoteInfo) => {
      const opcode = message.readUInt16BE(0);
      if (opcode === OACK) {
        socket.send(ack(0), from.port, from.address);
        return;
      }
      if (opcode !== DATA) {
        socket.close();
        reject(new Error(`expected DATA or OACK, got opcode ${opcode}: ${message.toString('latin1', 4)}`));
        return;
      }
      if (message.readUInt16BE(2) !== (expected & 0xffff)) return;
      expected += 1;
      received += message.length - 4;
      socket.send(ack(expected - 1), from.port, from.address);
      if (message.length - 4 < blksize) {
        // The last ACK leaves before the socket closes.
        setTimeout(() => socket.close(() => resolve(received)), 5);
      }
    });
    socket.send(request, port, '127.0.0.1');
  });
}

/**
 * Serves `contents` under any file name on 127.0.0.1, each transfer from its own port. Grants a requested blksize
 * option with an OACK, and otherwise sends RFC 1350's 512 byte blocks. Returns the port and a stop function.
 */
export async function startFloorServer(contents: Buffer): Promise<{ port: number; stop: () => Promise<void> }> {
  const listener = createSocket('udp4');
  await new Promise<void>((resolve) => listener.bind(0, '127.0.0.1', resolve));
  const transfers = new Set<Socket>();

  listener.on('message', (request: Buffer, client: RemoteInfo) => {
    const fields = request.toString('latin1', 2).split('\x00');
    const requested = fields.findIndex((field, index) => index >= 2 && field.toLowerCase() === 'blksize');
    const blksize = requested >= 0 ? Number(fields[requested + 1]) : 512;
    const blockCount = Math.floor(contents.length / blksize) + 1;

    const socket = createSocket('udp4');
    transfers.add(socket);
    const sendBlock = (block: number): void => {
      const start = (block - 1) * blksize;
      const data = contents.subarray(start, Math.min(start + blksize, contents.length));
      const packet = Buffer.allocUnsafe(4 + data.length);
      packet.writeUInt16BE(DATA, 0);
      packet.writeUInt16BE(block & 0xffff, 2);
      data.copy(packet, 4);
      socket.send(packet, client.port, client.address);
    };

    let sent = 0;
    socket.on('message', (message: Buffer) => {
      if (message.readUInt16BE(0) !== ACK || message.readUInt16BE(2) !== (sent & 0xffff)) return;
      if (sent === blockCount) {
        transfers.delete(socket);
        socket.close();
        return;
      }
      sent += 1;
      sendBlock(sent);
    });
    socket.bind(0, '127.0.0.1', () => {
      if (requested >= 0) {
        socket.send(Buffer.from(`\x00\x06blksize\x00${blksize}\x00`, 'latin1'), client.port, client.address);
      } else {
        sent = 1;
        sendBlock(1);
      }
    });
  });

  return {
    port: listener.address().port,
    stop: async () => {
      for (const socket of transfers) socket.close();
      await new Promise<void>((resolve) => listener.close(resolve));
    },
  };
}
