import { createSocket, type Socket } from 'node:dgram';
import { join } from 'node:path';

import { expect } from 'chai';

import { inspectDatagram, startAgent, type RunningAgent } from '../../agent/index.js';
import { freeUdpPort, makeTempDir } from '../support/index.js';
import { FakeDevice } from './fake-device.js';

/** Encodes one BER TLV with a definite length. */
function tlv(tag: number, content: Buffer): Buffer {
  const length = content.length;
  const header =
    length < 0x80 ? [tag, length] : length < 0x100 ? [tag, 0x81, length] : [tag, 0x82, length >> 8, length & 0xff];
  return Buffer.concat([Buffer.from(header), content]);
}

/** Encodes an OID's content octets from its arcs, which may exceed 32 bits. */
function oidContent(arcs: bigint[]): Buffer {
  const octets = [Number(arcs[0]! * 40n + arcs[1]!)];
  for (const arc of arcs.slice(2)) {
    const group = [Number(arc & 0x7fn)];
    for (let rest = arc >> 7n; rest > 0n; rest >>= 7n) group.unshift(Number((rest & 0x7fn) | 0x80n));
    octets.push(...group);
  }
  return Buffer.from(octets);
}

const integer = (value: number) => tlv(0x02, Buffer.from([value]));

/** Encodes a v2c request with one varbind whose name has the given content octets. */
function request(oid: Buffer, options: { pduTag?: number; requestId?: Buffer; community?: string; id?: number } = {}): Buffer {
  const varbind = tlv(0x30, Buffer.concat([tlv(0x06, oid), Buffer.from([0x05, 0x00])]));
  const pdu = tlv(
    options.pduTag ?? 0xa0,
    Buffer.concat([options.requestId ?? integer(options.id ?? 7), integer(0), integer(0), tlv(0x30, varbind)]),
  );
  return tlv(0x30, Buffer.concat([integer(1), tlv(0x04, Buffer.from(options.community ?? 'public')), pdu]));
}

const arcs = (...values: Array<number | bigint>) => values.map(BigInt);
const SYS_NAME = arcs(1, 3, 6, 1, 2, 1, 1, 5, 0);

/** Each bad packet, and whether the agent responds to it (RFC 3416) or drops and counts it. */
const BAD_PACKETS: Array<{ name: string; packet: Buffer; answered: boolean }> = [
  { name: 'empty datagram', packet: Buffer.alloc(0), answered: false },
  { name: 'one byte', packet: Buffer.from([0x30]), answered: false },
  { name: '30 00', packet: Buffer.from([0x30, 0x00]), answered: false },
  { name: 'truncated BER', packet: request(oidContent(SYS_NAME)).subarray(0, 20), answered: false },
  { name: 'request-id 02 00', packet: request(oidContent(SYS_NAME), { requestId: Buffer.from([0x02, 0x00]) }), answered: false },
  { name: 'GET on 1', packet: request(Buffer.from([0x28])), answered: true },
  { name: 'GET on 1.3', packet: request(Buffer.from([0x2b])), answered: true },
  { name: 'GETNEXT on 1', packet: request(Buffer.from([0x28]), { pduTag: 0xa1 }), answered: true },
  { name: 'GETNEXT on 1.3', packet: request(Buffer.from([0x2b]), { pduTag: 0xa1 }), answered: true },
  { name: 'OID of 129 sub-identifiers', packet: request(oidContent(arcs(1, 3, ...Array<number>(127).fill(1)))), answered: false },
  { name: 'sub-identifier 2^32', packet: request(oidContent(arcs(1, 3, 6, 1, 2n ** 32n))), answered: false },
  { name: 'sub-identifier 2^64', packet: request(oidContent(arcs(1, 3, 6, 1, 2n ** 64n)), { pduTag: 0xa1 }), answered: false },
  { name: 'GET on sub-identifier 2^32-1', packet: request(oidContent(arcs(1, 3, 6, 1, 2n ** 32n - 1n))), answered: true },
  { name: 'GETNEXT on sub-identifier 2^31', packet: request(oidContent(arcs(1, 3, 6, 1, 2n ** 31n)), { pduTag: 0xa1 }), answered: true },
  { name: 'indefinite length', packet: Buffer.from([0x30, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00]), answered: false },
  { name: 'unknown community', packet: request(oidContent(SYS_NAME), { community: 'guess' }), answered: false },
];

describe('SNMP agent and malformed packets', function () {
  this.timeout(20_000);

  let temp: { path: string; remove: () => Promise<void> };
  let device: FakeDevice;
  let agent: RunningAgent;
  let client: Socket;
  const replies: Buffer[] = [];

  before(async () => {
    temp = await makeTempDir();
    device = new FakeDevice();
    agent = await startAgent({
      device,
      stateFile: join(temp.path, 'state.json'),
      listen: { host: '127.0.0.1', port: await freeUdpPort() },
      roCommunities: ['public'],
      rwCommunities: [],
      users: [],
      sinks: [],
      informRetries: 0,
      informTimeoutMs: 200,
    });
    client = createSocket('udp4');
    client.on('message', (reply) => replies.push(reply));
    await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
  });

  after(async () => {
    client.close();
    await agent.close();
    device.release();
    await temp.remove();
  });

  /**
   * Sends a datagram and collects the replies: until the first one arrives when one is expected (up to 2 s, for
   * a loaded machine), or for 300 ms when none is.
   */
  async function exchange(packet: Buffer, expectReply = true): Promise<Buffer[]> {
    replies.length = 0;
    client.send(packet, agent.address.port, '127.0.0.1');
    const deadline = Date.now() + (expectReply ? 2000 : 300);
    while (Date.now() < deadline && !(expectReply && replies.length > 0)) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // A second reply to one request would be a bug; give it a moment to show up.
    await new Promise((resolve) => setTimeout(resolve, 20));
    return [...replies];
  }

  for (const { name, packet, answered } of BAD_PACKETS) {
    it(`${answered ? 'answers' : 'drops'} ${name}`, async () => {
      const answers = await exchange(packet, answered);
      expect(answers).to.have.length(answered ? 1 : 0);

      // The agent still responds to a good request afterwards.
      const after = await exchange(request(oidContent(SYS_NAME), { id: 9 }));
      expect(after).to.have.length(1);
    });
  }

  it('answers GET on 1.3 under the requested name', async () => {
    const [reply] = await exchange(request(Buffer.from([0x2b])));

    // The last varbind, 30 05 06 01 2b 80 00: the name 1.3 with noSuchObject (tag 0x80).
    expect(reply!.subarray(-7).toString('hex')).to.equal('300506012b8000');
  });

  it('answers GETNEXT on 2^31 with endOfMibView', async () => {
    const name = oidContent(arcs(1, 3, 6, 1, 2n ** 31n));
    const [reply] = await exchange(request(name, { pduTag: 0xa1 }));

    expect(reply!.subarray(-(name.length + 2 + 2)).toString('hex')).to.equal(`06${name.length.toString(16).padStart(2, '0')}${name.toString('hex')}8200`);
  });

  it('counts dropped packets in snmpInASNParseErrs', async () => {
    const [reply] = await exchange(request(oidContent(arcs(1, 3, 6, 1, 2, 1, 11, 6, 0))));
    const counter = reply!.subarray(-3);

    expect(counter[0]).to.equal(0x41);
    expect(counter[2]).to.be.at.least(BAD_PACKETS.filter((bad) => !bad.answered && bad.name !== 'unknown community').length);
  });

  it('bad packets leave a running upgrade alone', async () => {
    device.holdFetching = true;
    device.start('upgrade');
    for (const { packet } of BAD_PACKETS) client.send(packet, agent.address.port, '127.0.0.1');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(device.status().phase).to.equal('fetching');

    device.release();
    const deadline = Date.now() + 5000;
    while (device.status().phase !== 'installedPendingReload' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(device.status().phase).to.equal('installedPendingReload');
    expect(device.startCount).to.equal(1);
  });
});

describe('inspectDatagram', () => {
  it('accepts a well-formed GET', () => {
    expect(inspectDatagram(request(oidContent(SYS_NAME)))).to.deep.equal({ accept: true });
  });

  it('counts an unknown version in snmpInBadVersions', () => {
    const packet = tlv(0x30, Buffer.concat([integer(2), tlv(0x04, Buffer.from('public'))]));
    const verdict = inspectDatagram(packet);
    expect(verdict).to.include({ accept: false, counter: 'snmpInBadVersions' });
  });

  it('rejects a non-minimal sub-identifier', () => {
    const verdict = inspectDatagram(request(Buffer.from([0x2b, 0x80, 0x01])));
    expect(verdict).to.have.property('reason').that.matches(/not minimally encoded/);
  });

  it('rejects trailing octets after the message', () => {
    const verdict = inspectDatagram(Buffer.concat([request(oidContent(SYS_NAME)), Buffer.from([0x00])]));
    expect(verdict).to.have.property('reason').that.matches(/octets after the message/);
  });
});
