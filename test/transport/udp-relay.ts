import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';

export interface Impairment {
  /** Probability that a datagram is dropped. */
  drop: number;
  /** Probability that a datagram is sent twice. */
  duplicate: number;
  /** Probability that a datagram is held back 2 to 20 ms, so later ones overtake it. */
  reorder: number;
  /** Seed of the pseudo-random sequence, so a failing run can be repeated. */
  seed: number;
}

/** Mulberry32: a small seeded generator, enough to pick which datagrams to impair. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A UDP relay on 127.0.0.1 between TFTP clients and one server, impairing datagrams in both directions. Clients
 * send to the relay's port. The relay forwards to the server's listening port, then to the port of the server's
 * transfer, and sends the server's replies back from its own port.
 */
export async function startRelay(serverPort: number, impairment: Impairment): Promise<{ port: number; stats: Record<string, number>; blackhole(): void; close(): Promise<void> }> {
  const random = seededRandom(impairment.seed);
  const stats = { forwarded: 0, dropped: 0, duplicated: 0, reordered: 0 };
  const front = createSocket('udp4');
  const upstreams = new Map<string, { socket: Socket; serverPort: number }>();
  const timers = new Set<NodeJS.Timeout>();
  let dropAll = false;

  const impairedSend = (socket: Socket, message: Buffer, port: number) => {
    if (dropAll || random() < impairment.drop) {
      stats.dropped += 1;
      return;
    }
    const copies = random() < impairment.duplicate ? 2 : 1;
    if (copies === 2) stats.duplicated += 1;
    for (let copy = 0; copy < copies; copy += 1) {
      if (random() < impairment.reorder) {
        stats.reordered += 1;
        const timer = setTimeout(() => {
          timers.delete(timer);
          socket.send(message, port, '127.0.0.1', () => undefined);
        }, 2 + Math.floor(random() * 18));
        timers.add(timer);
      } else {
        socket.send(message, port, '127.0.0.1', () => undefined);
      }
    }
    stats.forwarded += 1;
  };

  front.on('message', (message: Buffer, client: RemoteInfo) => {
    const key = `${client.address}:${client.port}`;
    let upstream = upstreams.get(key);
    if (!upstream) {
      const socket = createSocket('udp4');
      const entry = { socket, serverPort };
      socket.on('message', (reply: Buffer, from: RemoteInfo) => {
        entry.serverPort = from.port;
        impairedSend(front, reply, client.port);
      });
      socket.bind(0, '127.0.0.1');
      upstreams.set(key, entry);
      upstream = entry;
    }
    impairedSend(upstream.socket, message, upstream.serverPort);
  });

  await new Promise<void>((resolve) => front.bind(0, '127.0.0.1', resolve));
  return {
    port: front.address().port,
    stats,
    blackhole: () => {
      dropAll = true;
    },
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      await Promise.all([front, ...[...upstreams.values()].map((entry) => entry.socket)].map((socket) => new Promise((resolve) => socket.close(() => resolve(undefined)))));
    },
  };
}
