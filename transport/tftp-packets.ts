/**
 * TFTP packet formats: RFC 1350 (RRQ, WRQ, DATA, ACK, ERROR) and RFC 2347's OACK carrying the options of
 * RFC 2348 (blksize), RFC 2349 (timeout, tsize) and RFC 7440 (windowsize).
 */

export const OPCODE = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

/** ERROR packet codes, RFC 1350 section 5 and RFC 2347 (code 8). */
export const ERROR_CODE = {
  notDefined: 0,
  fileNotFound: 1,
  accessViolation: 2,
  diskFull: 3,
  illegalOperation: 4,
  unknownTransferId: 5,
  fileExists: 6,
  noSuchUser: 7,
  optionsRejected: 8,
} as const;

/** Smallest and largest blksize RFC 2348 allows; 65,464 fills a 65,507 byte UDP payload with its headers. */
export const MIN_BLKSIZE = 8;
export const MAX_BLKSIZE = 65_464;
/** Block size without negotiation (RFC 1350). */
export const PLAIN_BLKSIZE = 512;
/** Largest windowsize RFC 7440 allows. */
export const MAX_WINDOWSIZE = 65_535;

export type Options = Record<string, string>;

export interface RequestPacket {
  opcode: typeof OPCODE.RRQ | typeof OPCODE.WRQ;
  fileName: string;
  mode: string;
  options: Options;
}

export type Packet =
  | RequestPacket
  | { opcode: typeof OPCODE.DATA; block: number; data: Buffer }
  | { opcode: typeof OPCODE.ACK; block: number }
  | { opcode: typeof OPCODE.ERROR; code: number; message: string }
  | { opcode: typeof OPCODE.OACK; options: Options };

/** Packet that does not follow the formats above. */
export class MalformedPacketError extends Error {}

/** Reads the NUL-terminated strings of an RRQ, WRQ or OACK body. */
function readStrings(buffer: Buffer, offset: number): string[] {
  const strings: string[] = [];
  while (offset < buffer.length) {
    const end = buffer.indexOf(0, offset);
    if (end === -1) throw new MalformedPacketError('string without terminating NUL');
    strings.push(buffer.toString('latin1', offset, end));
    offset = end + 1;
  }
  return strings;
}

/** Pairs up option names and values; names are case-insensitive (RFC 2347), so they are lower-cased. */
function readOptions(strings: string[]): Options {
  if (strings.length % 2 !== 0) throw new MalformedPacketError('option name without value');
  const options: Options = {};
  for (let i = 0; i < strings.length; i += 2) {
    options[strings[i].toLowerCase()] = strings[i + 1];
  }
  return options;
}

/** Decodes one datagram; throws MalformedPacketError for anything that is not a valid TFTP packet. */
/** Decodes a datagram, or returns undefined for a malformed one, which RFC 1350 peers drop without a reply. */
export function decodeOrDrop(buffer: Buffer): Packet | undefined {
  try {
    return decodePacket(buffer);
  } catch (error) {
    if (error instanceof MalformedPacketError) return undefined;
    throw error;
  }
}

export function decodePacket(buffer: Buffer): Packet {
  if (buffer.length < 2) throw new MalformedPacketError(`datagram of ${buffer.length} bytes is too short`);
  const opcode = buffer.readUInt16BE(0);

  switch (opcode) {
    case OPCODE.RRQ:
    case OPCODE.WRQ: {
      const [fileName, mode, ...rest] = readStrings(buffer, 2);
      if (fileName === undefined || mode === undefined) throw new MalformedPacketError('request without file name or mode');
      return { opcode, fileName, mode: mode.toLowerCase(), options: readOptions(rest) };
    }
    case OPCODE.DATA:
      if (buffer.length < 4) throw new MalformedPacketError('DATA shorter than its header');
      return { opcode, block: buffer.readUInt16BE(2), data: buffer.subarray(4) };
    case OPCODE.ACK:
      if (buffer.length < 4) throw new MalformedPacketError('ACK shorter than 4 bytes');
      return { opcode, block: buffer.readUInt16BE(2) };
    case OPCODE.ERROR: {
      if (buffer.length < 4) throw new MalformedPacketError('ERROR shorter than its header');
      const end = buffer.indexOf(0, 4);
      const message = buffer.toString('latin1', 4, end === -1 ? buffer.length : end);
      return { opcode, code: buffer.readUInt16BE(2), message };
    }
    case OPCODE.OACK:
      return { opcode, options: readOptions(readStrings(buffer, 2)) };
    default:
      throw new MalformedPacketError(`unknown opcode ${opcode}`);
  }
}

function encodeStrings(opcode: number, strings: string[]): Buffer {
  const parts = strings.map((text) => Buffer.from(`${text}\0`, 'latin1'));
  const header = Buffer.alloc(2);
  header.writeUInt16BE(opcode, 0);
  return Buffer.concat([header, ...parts]);
}

export function encodeRequest(opcode: typeof OPCODE.RRQ | typeof OPCODE.WRQ, fileName: string, mode: string, options: Options): Buffer {
  return encodeStrings(opcode, [fileName, mode, ...Object.entries(options).flat()]);
}

export function encodeOack(options: Options): Buffer {
  return encodeStrings(OPCODE.OACK, Object.entries(options).flat());
}

export function encodeAck(block: number): Buffer {
  const packet = Buffer.alloc(4);
  packet.writeUInt16BE(OPCODE.ACK, 0);
  packet.writeUInt16BE(block & 0xffff, 2);
  return packet;
}

/** Builds a DATA packet; `data` is copied behind the 4 byte header. */
export function encodeData(block: number, data: Buffer): Buffer {
  const packet = Buffer.allocUnsafe(4 + data.length);
  packet.writeUInt16BE(OPCODE.DATA, 0);
  packet.writeUInt16BE(block & 0xffff, 2);
  data.copy(packet, 4);
  return packet;
}

export function encodeError(code: number, message: string): Buffer {
  const text = Buffer.from(`${message}\0`, 'latin1');
  const packet = Buffer.alloc(4 + text.length);
  packet.writeUInt16BE(OPCODE.ERROR, 0);
  packet.writeUInt16BE(code, 2);
  text.copy(packet, 4);
  return packet;
}
