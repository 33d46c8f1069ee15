/**
 * A strict BER check of every datagram before net-snmp decodes it. net-snmp 3.29 decodes a sub-identifier of
 * 2^32 or more modulo 2^32 (so a request would be answered for another OID) and throws out of its socket
 * handler on a valid sub-identifier above 2^31-1, which would stop the agent. RFC 3417 section 8 says a
 * message that fails to parse is dropped and counted in snmpInASNParseErrs, and this module decides which.
 */

/** RFC 2578 section 3.5: an OID has at most 128 sub-identifiers, each at most 2^32-1. */
export const MAX_SUB_IDENTIFIERS = 128;
const MAX_SUB_IDENTIFIER = 0xffffffff;

const TAG_INTEGER = 0x02;
const TAG_OCTET_STRING = 0x04;
const TAG_OID = 0x06;
const TAG_SEQUENCE = 0x30;

/** Request PDUs the agent answers: GetRequest, GetNextRequest, SetRequest, GetBulkRequest. */
const REQUEST_PDU_TAGS = new Set([0xa0, 0xa1, 0xa3, 0xa5]);

export type DatagramVerdict =
  | { accept: true }
  | { accept: false; counter: 'snmpInASNParseErrs' | 'snmpInBadVersions'; reason: string };

interface Tlv {
  tag: number;
  start: number;
  end: number;
}

class BerError extends Error {}

function readTlv(buffer: Buffer, offset: number, limit: number): Tlv {
  if (offset + 2 > limit) throw new BerError(`truncated header at octet ${offset}`);
  const tag = buffer[offset]!;
  // Multi-octet tags never occur in SNMP (RFC 3417 section 8 restricts the encoding to single-octet tags).
  if ((tag & 0x1f) === 0x1f) throw new BerError(`multi-octet tag at octet ${offset}`);

  let length = buffer[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const octets = length & 0x7f;
    // 0x80 is the indefinite form, which RFC 3417 section 8 forbids; more than 4 octets cannot fit a datagram.
    if (octets === 0 || octets > 4) throw new BerError(`unsupported length form 0x${length.toString(16)} at octet ${offset + 1}`);
    if (start + octets > limit) throw new BerError(`truncated length at octet ${offset + 1}`);
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + buffer[start + i]!;
    start += octets;
  }

  const end = start + length;
  if (end > limit) throw new BerError(`length ${length} at octet ${offset} runs past the end of its container`);
  return { tag, start, end };
}

function expectTag(tlv: Tlv, tag: number, what: string): void {
  if (tlv.tag !== tag) throw new BerError(`expected ${what} (tag 0x${tag.toString(16)}), got tag 0x${tlv.tag.toString(16)}`);
}

function readInteger(buffer: Buffer, offset: number, limit: number, what: string): { value: number; next: number } {
  const tlv = readTlv(buffer, offset, limit);
  expectTag(tlv, TAG_INTEGER, what);
  const length = tlv.end - tlv.start;
  // X.690 section 8.3.1: an INTEGER has at least one content octet; Integer32 needs at most 4.
  if (length < 1 || length > 4) throw new BerError(`${what} has ${length} content octets, expected 1 to 4`);
  return { value: buffer.readIntBE(tlv.start, length), next: tlv.end };
}

/** Checks one OID's content octets: minimal encoding, at most 128 sub-identifiers, each below 2^32. */
function checkOid(buffer: Buffer, tlv: Tlv): void {
  if (tlv.end === tlv.start) throw new BerError('empty OID');

  let count = 0;
  let value = 0;
  let first = true;
  for (let position = tlv.start; position < tlv.end; position++) {
    const octet = buffer[position]!;
    // X.690 section 8.19.2: a sub-identifier has no leading 0x80 octet.
    if (first && octet === 0x80) throw new BerError(`OID sub-identifier at octet ${position} is not minimally encoded`);
    first = false;
    value = value * 128 + (octet & 0x7f);
    if (value > MAX_SUB_IDENTIFIER) throw new BerError(`OID sub-identifier at octet ${position} exceeds 2^32-1`);

    if ((octet & 0x80) === 0) {
      // The first encoded sub-identifier carries the first two arcs.
      count += count === 0 ? 2 : 1;
      value = 0;
      first = true;
    }
  }
  if (!first) throw new BerError('OID ends inside a sub-identifier');
  if (count > MAX_SUB_IDENTIFIERS) throw new BerError(`OID has ${count} sub-identifiers, at most ${MAX_SUB_IDENTIFIERS} allowed`);
}

function checkPdu(buffer: Buffer, offset: number, limit: number): void {
  const pdu = readTlv(buffer, offset, limit);
  if (pdu.end !== limit) throw new BerError('octets after the PDU');
  if (!REQUEST_PDU_TAGS.has(pdu.tag)) return;

  let next = readInteger(buffer, pdu.start, pdu.end, 'request-id').next;
  next = readInteger(buffer, next, pdu.end, 'error-status').next;
  next = readInteger(buffer, next, pdu.end, 'error-index').next;

  const list = readTlv(buffer, next, pdu.end);
  expectTag(list, TAG_SEQUENCE, 'varbind list');
  if (list.end !== pdu.end) throw new BerError('octets after the varbind list');

  for (let position = list.start; position < list.end; ) {
    const varbind = readTlv(buffer, position, list.end);
    expectTag(varbind, TAG_SEQUENCE, 'varbind');
    const name = readTlv(buffer, varbind.start, varbind.end);
    expectTag(name, TAG_OID, 'varbind name');
    checkOid(buffer, name);
    const value = readTlv(buffer, name.end, varbind.end);
    if (value.end !== varbind.end) throw new BerError('octets after a varbind value');
    if (value.tag === TAG_INTEGER && value.end === value.start) throw new BerError('INTEGER value without content octets');
    position = varbind.end;
  }
}

/**
 * Decides whether a datagram goes on to net-snmp. A v3 message whose scoped PDU is encrypted is checked up to
 * the encryption; its PDU is checked after decryption by the responder.
 */
export function inspectDatagram(buffer: Buffer): DatagramVerdict {
  try {
    const message = readTlv(buffer, 0, buffer.length);
    expectTag(message, TAG_SEQUENCE, 'message');
    if (message.end !== buffer.length) throw new BerError('octets after the message');

    const version = readInteger(buffer, message.start, message.end, 'version');
    if (version.value === 0 || version.value === 1) {
      const community = readTlv(buffer, version.next, message.end);
      expectTag(community, TAG_OCTET_STRING, 'community');
      checkPdu(buffer, community.end, message.end);
      return { accept: true };
    }

    if (version.value === 3) {
      const header = readTlv(buffer, version.next, message.end);
      expectTag(header, TAG_SEQUENCE, 'msgGlobalData');
      const security = readTlv(buffer, header.end, message.end);
      expectTag(security, TAG_OCTET_STRING, 'msgSecurityParameters');
      const scoped = readTlv(buffer, security.end, message.end);
      if (scoped.end !== message.end) throw new BerError('octets after the scoped PDU');
      if (scoped.tag === TAG_OCTET_STRING) return { accept: true };

      expectTag(scoped, TAG_SEQUENCE, 'scoped PDU');
      const engineId = readTlv(buffer, scoped.start, scoped.end);
      expectTag(engineId, TAG_OCTET_STRING, 'contextEngineID');
      const contextName = readTlv(buffer, engineId.end, scoped.end);
      expectTag(contextName, TAG_OCTET_STRING, 'contextName');
      checkPdu(buffer, contextName.end, scoped.end);
      return { accept: true };
    }

    return { accept: false, counter: 'snmpInBadVersions', reason: `unsupported SNMP version ${version.value}` };
  } catch (error) {
    if (!(error instanceof BerError)) throw error;
    return { accept: false, counter: 'snmpInASNParseErrs', reason: error.message };
  }
}

/** Returns whether a decoded OID string is one the responder can compare: at most 128 arcs, each below 2^32. */
export function isWellFormedOid(oid: string): boolean {
  if (!/^\d+(\.\d+)*$/.test(oid)) return false;
  const arcs = oid.split('.');
  return arcs.length <= MAX_SUB_IDENTIFIERS && arcs.every((arc) => Number(arc) <= MAX_SUB_IDENTIFIER);
}
