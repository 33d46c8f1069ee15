/**
 * The device inventory: a CSV file with a header row, as operators export device lists from their NMS, or a
 * JSON array of objects with the same keys. docs/manager.md describes the columns.
 */
import { isIP } from 'node:net';

import { AUTH_PROTOCOLS, PRIV_PROTOCOLS } from '../agent/index.js';
import { BadUrlError, InvalidArgumentError } from '../errors/index.js';
import { readInputFile } from '../input/index.js';
import { validateUrlPrefix } from '../transport/index.js';
import { validateIdentifier } from '../verifier/index.js';

export type AuthProtocol = (typeof AUTH_PROTOCOLS)[number];
export type PrivProtocol = (typeof PRIV_PROTOCOLS)[number];

/** SNMPv3 USM credentials of one device. */
export interface UsmCredentials {
  version: '3';
  user: string;
  level: 'authNoPriv' | 'authPriv';
  authProtocol: AuthProtocol;
  authKey: string;
  privProtocol?: PrivProtocol;
  privKey?: string;
}

export type Credentials = { version: '2c'; community: string } | UsmCredentials;

export interface InventoryDevice {
  /** `host:port` (`[host]:port` for IPv6): how every message and table names the device, never with credentials. */
  name: string;
  host: string;
  port: number;
  credentials: Credentials;
  /** Image on the device's flash to upgrade from; unset means the running image. */
  image?: string;
  /** URL prefix of the patch folder for this device; unset means the one given on the command line. */
  url?: string;
  /** The device's place in the inventory: `FILE line N` or `FILE entry N`. */
  source: string;
}

/** The inventory columns; every other column is rejected so that a typo cannot silently drop a setting. */
export const INVENTORY_COLUMNS = [
  'host',
  'port',
  'community',
  'version',
  'user',
  'auth-protocol',
  'auth-key',
  'priv-protocol',
  'priv-key',
  'image',
  'url',
] as const;
type Column = (typeof INVENTORY_COLUMNS)[number];

/** RFC 3414 section 11.2 recommends pass phrases of at least 8 characters. */
const MIN_KEY_LENGTH = 8;

/** A DNS host name (RFC 1123 labels); IP addresses are checked with isIP. */
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Reads an inventory file: JSON when it ends in `.json` or starts with `[`, CSV otherwise. */
export async function loadInventory(path: string): Promise<InventoryDevice[]> {
  const text = (await readInputFile(path, 'inventory')).toString('utf8');
  return path.endsWith('.json') || text.trimStart().startsWith('[') ? parseJsonInventory(text, path) : parseCsvInventory(text, path);
}

/**
 * Parses a CSV inventory (RFC 4180: comma-separated, fields may be double-quoted, "" is a quote inside one).
 * Blank lines and lines starting with # are skipped. Errors name the line and the column.
 */
export function parseCsvInventory(text: string, fileName = 'inventory'): InventoryDevice[] {
  const records = splitCsv(text, fileName);
  const header = records.shift();
  if (!header) throw new InvalidArgumentError(`${fileName}: expected a header row (host,port,community,...), got an empty file`);

  const columns: Column[] = header.fields.map((field, position) => {
    const name = field.trim().toLowerCase();
    if (!(INVENTORY_COLUMNS as readonly string[]).includes(name)) {
      throw new InvalidArgumentError(
        `${fileName} line ${header.line}, column ${position + 1}: unknown column ${JSON.stringify(field)}; expected one of ${INVENTORY_COLUMNS.join(', ')}`,
      );
    }
    return name as Column;
  });
  for (const required of ['host', 'port'] as const) {
    if (!columns.includes(required)) {
      throw new InvalidArgumentError(`${fileName} line ${header.line}: the header has no ${required} column; expected host,port,community,...`);
    }
  }
  const repeated = columns.find((column, position) => columns.indexOf(column) !== position);
  if (repeated) throw new InvalidArgumentError(`${fileName} line ${header.line}: column ${repeated} appears twice in the header`);

  const devices = records.map((record) => {
    if (record.fields.length !== columns.length) {
      throw new InvalidArgumentError(
        `${fileName} line ${record.line}: expected ${columns.length} fields as in the header, got ${record.fields.length}`,
      );
    }
    const row = new Map<Column, { value: string; where: string }>();
    columns.forEach((column, position) => {
      row.set(column, { value: record.fields[position]!.trim(), where: `${fileName} line ${record.line}, column ${position + 1} (${column})` });
    });
    return deviceFromRow(row, `${fileName} line ${record.line}`);
  });
  return checkInventory(devices, fileName);
}

/** Parses a JSON inventory: an array of objects whose keys are the CSV columns; port may be a number. */
export function parseJsonInventory(text: string, fileName = 'inventory'): InventoryDevice[] {
  let entries: unknown;
  try {
    entries = JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError(`${fileName}: invalid JSON: ${(error as Error).message}`, { cause: error });
  }
  if (!Array.isArray(entries)) throw new InvalidArgumentError(`${fileName}: expected a JSON array of devices, got ${typeof entries}`);

  const devices = entries.map((entry: unknown, position) => {
    const where = `${fileName} entry ${position + 1}`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new InvalidArgumentError(`${where}: expected an object with host, port, ..., got ${JSON.stringify(entry)}`);
    }
    const row = new Map<Column, { value: string; where: string }>();
    for (const [key, value] of Object.entries(entry)) {
      if (!(INVENTORY_COLUMNS as readonly string[]).includes(key)) {
        throw new InvalidArgumentError(`${where}: unknown key ${JSON.stringify(key)}; expected one of ${INVENTORY_COLUMNS.join(', ')}`);
      }
      // Only the port is a number by nature; a number for a community or key is most likely a mistake.
      if (typeof value !== 'string' && !(key === 'port' && typeof value === 'number')) {
        throw new InvalidArgumentError(`${where} (${key}): expected ${key === 'port' ? 'a number or a string' : 'a string'}, got ${JSON.stringify(value)}`);
      }
      row.set(key as Column, { value: String(value).trim(), where: `${where} (${key})` });
    }
    return deviceFromRow(row, where);
  });
  return checkInventory(devices, fileName);
}

function deviceFromRow(row: Map<Column, { value: string; where: string }>, source: string): InventoryDevice {
  const cell = (column: Column) => row.get(column) ?? { value: '', where: `${source} (${column})` };
  const value = (column: Column) => cell(column).value;
  const fail = (column: Column, message: string): never => {
    throw new InvalidArgumentError(`${cell(column).where}: ${message}`);
  };

  const host = value('host');
  if (host === '') fail('host', 'expected a host name or IP address, got an empty field');
  const isAddress = isIP(host) !== 0;
  if (!isAddress && !HOST_NAME.test(host)) fail('host', `expected a host name or IP address, got ${JSON.stringify(host)}`);
  // RFC 3696 (section 2) rules out all-numeric top-level domains, so such a name is a mistyped IPv4 address.
  if (!isAddress && /(^|\.)\d+$/.test(host)) fail('host', `expected a valid IPv4 address, got ${JSON.stringify(host)}`);

  const portText = value('port');
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) fail('port', `expected a UDP port from 1 to 65535, got ${JSON.stringify(portText)}`);

  const version = value('version') || (value('user') ? '3' : '2c');
  if (version !== '2c' && version !== '3') fail('version', `expected 2c or 3, got ${JSON.stringify(version)}`);

  let credentials: Credentials;
  if (version === '2c') {
    const community = value('community');
    if (community === '') fail('community', 'expected the SNMPv2c community with write access, got an empty field');
    for (const column of ['user', 'auth-protocol', 'auth-key', 'priv-protocol', 'priv-key'] as const) {
      if (value(column) !== '') fail(column, 'is an SNMPv3 setting, but the device uses version 2c; set version to 3 or clear the field');
    }
    credentials = { version: '2c', community };
  } else {
    credentials = usmCredentials(value, fail);
  }

  const device: InventoryDevice = { name: deviceName(host, port), host, port, credentials, source };
  const image = value('image');
  if (image !== '') {
    try {
      validateIdentifier('image name', image);
    } catch (error) {
      fail('image', (error as Error).message);
    }
    device.image = image;
  }
  const url = value('url');
  if (url !== '') {
    try {
      validateUrlPrefix(url);
    } catch (error) {
      // The URL may hold credentials; the transport's message already shows it redacted.
      if (error instanceof BadUrlError) throw new BadUrlError(`${cell('url').where}: ${error.message}`);
      throw error;
    }
    device.url = url;
  }
  return device;
}

function usmCredentials(value: (column: Column) => string, fail: (column: Column, message: string) => never): UsmCredentials {
  const user = value('user');
  if (user === '') fail('user', 'expected an SNMPv3 user name for version 3, got an empty field');
  if (value('community') !== '') fail('community', 'is an SNMPv2c setting, but the device uses version 3; clear the field');

  const authProtocol = value('auth-protocol').toLowerCase();
  if (!(AUTH_PROTOCOLS as readonly string[]).includes(authProtocol)) {
    fail('auth-protocol', `expected one of ${AUTH_PROTOCOLS.join(', ')}, got ${JSON.stringify(value('auth-protocol'))}`);
  }
  const authKey = value('auth-key');
  if (authKey.length < MIN_KEY_LENGTH) fail('auth-key', `expected at least ${MIN_KEY_LENGTH} characters, got ${authKey.length}`);

  const credentials: UsmCredentials = { version: '3', user, level: 'authNoPriv', authProtocol: authProtocol as AuthProtocol, authKey };
  const privProtocol = value('priv-protocol').toLowerCase();
  const privKey = value('priv-key');
  if (privProtocol === '' && privKey === '') return credentials;

  if (!(PRIV_PROTOCOLS as readonly string[]).includes(privProtocol)) {
    fail('priv-protocol', `expected one of ${PRIV_PROTOCOLS.join(', ')} (or leave priv-protocol and priv-key empty for authNoPriv), got ${JSON.stringify(value('priv-protocol'))}`);
  }
  if (privKey.length < MIN_KEY_LENGTH) fail('priv-key', `expected at least ${MIN_KEY_LENGTH} characters, got ${privKey.length}`);
  return { ...credentials, level: 'authPriv', privProtocol: privProtocol as PrivProtocol, privKey };
}

function checkInventory(devices: InventoryDevice[], fileName: string): InventoryDevice[] {
  if (devices.length === 0) throw new InvalidArgumentError(`${fileName}: expected at least one device after the header, got none`);
  const seen = new Map<string, string>();
  for (const device of devices) {
    const first = seen.get(device.name);
    if (first) throw new InvalidArgumentError(`${device.source}: device ${device.name} is already listed at ${first}`);
    seen.set(device.name, device.source);
  }
  return devices;
}

/** Returns `host:port`, bracketing IPv6 addresses. */
export function deviceName(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

interface CsvRecord {
  line: number;
  fields: string[];
}

/** Splits CSV text into records, keeping the line each record starts on. */
function splitCsv(text: string, fileName: string): CsvRecord[] {
  const records: CsvRecord[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let recordLine = 1;
  let fieldStarted = false;

  const endRecord = () => {
    fields.push(field);
    const blank = fields.length === 1 && fields[0]!.trim() === '';
    const comment = !fieldStarted && fields[0]!.trimStart().startsWith('#');
    if (!blank && !comment) records.push({ line: recordLine, fields });
    fields = [];
    field = '';
    fieldStarted = false;
  };

  const body = text.startsWith('\ufeff') ? text.slice(1) : text;
  for (let index = 0; index < body.length; index++) {
    const char = body[index]!;
    if (quoted) {
      if (char === '"' && body[index + 1] === '"') {
        field += '"';
        index++;
      } else if (char === '"') {
        quoted = false;
      } else {
        if (char === '\n') line++;
        field += char;
      }
      continue;
    }

    if (char === '"' && field.trim() === '') {
      quoted = true;
      fieldStarted = true;
      field = '';
    } else if (char === ',') {
      fields.push(field);
      field = '';
    } else if (char === '\n' || char === '\r') {
      if (char === '\r' && body[index + 1] === '\n') index++;
      endRecord();
      line++;
      recordLine = line;
    } else {
      field += char;
    }
  }
  if (quoted) throw new InvalidArgumentError(`${fileName} line ${recordLine}: a quoted field is not closed before the end of the file`);
  if (field !== '' || fields.length > 0) endRecord();
  return records;
}
