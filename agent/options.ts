/**
 * The agent's options: parsing of the `snmp-upgrade agent` flags and of the JSON configuration file that adds
 * SNMPv3 USM users and notification sinks. docs/agent.md describes the file format.
 */
import { isIP } from 'node:net';

import { InvalidArgumentError } from '../errors/index.js';
import { readInputFile } from '../input/index.js';

export interface ListenAddress {
  host: string;
  port: number;
}

/** SHA-2 authentication only: RFC 7860 adds these to USM, and MD5 and SHA-1 are no longer trusted. */
export const AUTH_PROTOCOLS = ['sha224', 'sha256', 'sha384', 'sha512'] as const;
export type AuthProtocol = (typeof AUTH_PROTOCOLS)[number];

/** AES privacy only: aes is AES-128 in CFB mode (RFC 3826); the two AES-256 variants follow net-snmp's names. */
export const PRIV_PROTOCOLS = ['aes', 'aes256b', 'aes256r'] as const;
export type PrivProtocol = (typeof PRIV_PROTOCOLS)[number];

/** RFC 3414 section 11.2 asks for passwords of at least 8 characters; Net-SNMP's tools reject shorter ones. */
export const MIN_PASSWORD_LENGTH = 8;

/** A USM user's name, security level, protocols and passwords, which net-snmp needs to send and receive as that user. */
export interface UsmSecurity {
  name: string;
  level: 'authNoPriv' | 'authPriv';
  authProtocol: AuthProtocol;
  authPassword: string;
  privProtocol?: PrivProtocol;
  privPassword?: string;
}

export interface UsmUser extends UsmSecurity {
  /** Whether the user may SET; users read only unless this is true. */
  write: boolean;
}

export type NotificationSink =
  | { host: string; port: number; version: '2c'; community: string; inform: boolean }
  | { host: string; port: number; version: '3'; user: string; inform: boolean };

/** Everything the agent needs except the device and its state file. */
export interface AgentNetworkOptions {
  listen: ListenAddress;
  roCommunities: string[];
  rwCommunities: string[];
  users: UsmUser[];
  sinks: NotificationSink[];
  /** How many times an unacknowledged inform is sent again before it is given up. */
  informRetries: number;
  /** How long to wait for an inform's acknowledgement, in milliseconds. */
  informTimeoutMs: number;
}

export const DEFAULT_INFORM_RETRIES = 3;
export const DEFAULT_INFORM_TIMEOUT_MS = 2000;
export const DEFAULT_TRAP_COMMUNITY = 'public';

/** The flags of `snmp-upgrade agent` besides `--flash`, as yargs parses them. */
export interface AgentFlags {
  listen: string;
  roCommunity?: string | string[];
  rwCommunity?: string | string[];
  trapSink?: string | string[];
  inform?: boolean;
  config?: string;
}

/** yargs option definitions for the flags AgentFlags lists, so the command module can pass them as they are. */
export const AGENT_FLAG_DEFINITIONS = {
  listen: { type: 'string', demandOption: true, describe: 'UDP address and port to serve SNMP on, HOST:PORT or [IPV6]:PORT' },
  'ro-community': { type: 'string', array: true, describe: 'SNMPv1/v2c community that may read (repeatable)' },
  'rw-community': { type: 'string', array: true, describe: 'SNMPv1/v2c community that may read and write (repeatable)' },
  'trap-sink': { type: 'string', array: true, describe: 'send SNMPv2c notifications to HOST:PORT[/COMMUNITY] (repeatable)' },
  inform: { type: 'boolean', default: false, describe: 'send informs, retried until acknowledged, instead of traps' },
  config: { type: 'string', describe: 'JSON file adding SNMPv3 users and sinks (see docs/agent.md)' },
} as const;

/**
 * Parses HOST:PORT or [IPV6]:PORT; the host must be an IP address, because the agent binds to it. Port 0 is
 * rejected: net-snmp takes it as its default port (161 to serve, 162 to receive), not as any free port.
 */
export function parseHostPort(text: string, what: string): ListenAddress {
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  if (!match) {
    throw new InvalidArgumentError(`invalid ${what}: expected HOST:PORT or [IPV6]:PORT, got ${JSON.stringify(text)}`);
  }

  const host = match[1]!;
  const port = Number(match[2]);
  if (isIP(host) === 0) {
    throw new InvalidArgumentError(`invalid ${what}: expected an IPv4 or IPv6 address, got ${JSON.stringify(host)}`);
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidArgumentError(`invalid ${what}: expected a port from 1 to 65535, got ${match[2]}`);
  }
  return { host, port };
}

/** Parses a `--trap-sink` value, HOST:PORT[/COMMUNITY]. */
export function parseTrapSink(text: string, inform: boolean): NotificationSink {
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  const community = slash === -1 ? DEFAULT_TRAP_COMMUNITY : text.slice(slash + 1);
  if (community === '') {
    throw new InvalidArgumentError(`invalid trap sink ${JSON.stringify(text)}: the community after "/" is empty`);
  }

  const { host, port } = parseHostPort(address, 'trap sink');
  return { host, port, version: '2c', community, inform };
}

/** Returns a repeatable flag's values; the flag given with no value at all (`--ro-community` last) is an error. */
function asList(value: string | string[] | undefined, flag: string): string[] {
  if (value === undefined) return [];
  if (Array.isArray(value) && value.length === 0) throw new InvalidArgumentError(`invalid ${flag}: expected a value after it, got none`);
  return Array.isArray(value) ? value : [value];
}

/** Turns the command's flags, and the configuration file they name, into the agent's network options. */
export async function parseAgentFlags(flags: AgentFlags): Promise<AgentNetworkOptions> {
  const inform = flags.inform ?? false;
  const options: AgentNetworkOptions = {
    listen: parseHostPort(flags.listen, '--listen address'),
    roCommunities: asList(flags.roCommunity, '--ro-community'),
    rwCommunities: asList(flags.rwCommunity, '--rw-community'),
    users: [],
    sinks: asList(flags.trapSink, '--trap-sink').map((sink) => parseTrapSink(sink, inform)),
    informRetries: DEFAULT_INFORM_RETRIES,
    informTimeoutMs: DEFAULT_INFORM_TIMEOUT_MS,
  };
  for (const community of [...options.roCommunities, ...options.rwCommunities]) {
    if (community === '') throw new InvalidArgumentError('invalid community: expected a non-empty name, got ""');
  }

  if (flags.config !== undefined) {
    const config = await loadAgentConfig(flags.config);
    options.users.push(...config.users);
    options.sinks.push(...config.sinks);
    options.informRetries = config.informRetries ?? options.informRetries;
    options.informTimeoutMs = config.informTimeoutMs ?? options.informTimeoutMs;
  }
  return options;
}

export interface AgentConfig {
  users: UsmUser[];
  sinks: NotificationSink[];
  informRetries?: number;
  informTimeoutMs?: number;
}

/** Reads and checks the agent's JSON configuration file. */
export async function loadAgentConfig(path: string): Promise<AgentConfig> {
  const text = (await readInputFile(path, 'agent configuration')).toString('utf8');

  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError(`invalid agent configuration ${path}: expected JSON, ${(error as Error).message}`, { cause: error });
  }
  return parseAgentConfig(json, path);
}

/** Checks a parsed configuration object; `source` names it in error messages. */
export function parseAgentConfig(json: unknown, source = 'agent configuration'): AgentConfig {
  const root = expectObject(json, source, ['users', 'sinks', 'informRetries', 'informTimeoutMs']);
  const users = expectArray(root.users ?? [], `${source}: users`).map((entry, position) =>
    parseUser(entry, `${source}: users[${position}]`),
  );
  const names = new Set<string>();
  for (const user of users) {
    if (names.has(user.name)) throw new InvalidArgumentError(`${source}: user ${JSON.stringify(user.name)} is defined twice`);
    names.add(user.name);
  }

  const sinks = expectArray(root.sinks ?? [], `${source}: sinks`).map((entry, position) =>
    parseSink(entry, `${source}: sinks[${position}]`, names),
  );
  const config: AgentConfig = { users, sinks };
  if (root.informRetries !== undefined) config.informRetries = expectInteger(root.informRetries, `${source}: informRetries`, 0, 10);
  if (root.informTimeoutMs !== undefined) {
    config.informTimeoutMs = expectInteger(root.informTimeoutMs, `${source}: informTimeoutMs`, 100, 60_000);
  }
  return config;
}

function parseUser(json: unknown, where: string): UsmUser {
  const entry = expectObject(json, where, ['name', 'level', 'authProtocol', 'authPassword', 'privProtocol', 'privPassword', 'write']);
  const name = expectString(entry.name, `${where}.name`);
  // RFC 3411 SnmpAdminString for a securityName is 1 to 32 octets.
  if (name === '' || Buffer.byteLength(name) > 32) {
    throw new InvalidArgumentError(`${where}.name: expected 1 to 32 octets, got ${JSON.stringify(name)}`);
  }

  const level = expectOneOf(entry.level, `${where}.level`, ['authNoPriv', 'authPriv'] as const);
  const authProtocol = expectOneOf(entry.authProtocol, `${where}.authProtocol`, AUTH_PROTOCOLS);
  const authPassword = expectPassword(entry.authPassword, `${where}.authPassword`);
  const write = entry.write === undefined ? false : expectBoolean(entry.write, `${where}.write`);
  const user: UsmUser = { name, level, authProtocol, authPassword, write };

  if (level === 'authPriv') {
    user.privProtocol = expectOneOf(entry.privProtocol, `${where}.privProtocol`, PRIV_PROTOCOLS);
    user.privPassword = expectPassword(entry.privPassword, `${where}.privPassword`);
  } else if (entry.privProtocol !== undefined || entry.privPassword !== undefined) {
    throw new InvalidArgumentError(`${where}: privProtocol and privPassword need level "authPriv", got level "authNoPriv"`);
  }
  return user;
}

function parseSink(json: unknown, where: string, userNames: Set<string>): NotificationSink {
  const entry = expectObject(json, where, ['address', 'version', 'community', 'user', 'inform']);
  const { host, port } = parseHostPort(expectString(entry.address, `${where}.address`), `${where}.address`);
  if (port === 0) throw new InvalidArgumentError(`${where}.address: port 0 cannot receive`);
  const version = expectOneOf(entry.version, `${where}.version`, ['2c', '3'] as const);
  const inform = entry.inform === undefined ? false : expectBoolean(entry.inform, `${where}.inform`);

  if (version === '2c') {
    const community = entry.community === undefined ? DEFAULT_TRAP_COMMUNITY : expectString(entry.community, `${where}.community`);
    if (entry.user !== undefined) throw new InvalidArgumentError(`${where}.user: only SNMPv3 sinks name a user`);
    return { host, port, version, community, inform };
  }

  const user = expectString(entry.user, `${where}.user`);
  if (!userNames.has(user)) {
    throw new InvalidArgumentError(`${where}.user: expected one of the configured users, got ${JSON.stringify(user)}`);
  }
  if (entry.community !== undefined) throw new InvalidArgumentError(`${where}.community: SNMPv3 sinks use a user, not a community`);
  return { host, port, version, user, inform };
}

function expectObject(value: unknown, where: string, keys: string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError(`${where}: expected an object, got ${describe(value)}`);
  }
  // An unknown key is most often a misspelt one, which would otherwise silently drop a setting.
  for (const key of Object.keys(value)) {
    if (!keys.includes(key)) throw new InvalidArgumentError(`${where}: unknown key ${JSON.stringify(key)}, expected one of ${keys.join(', ')}`);
  }
  return value as Record<string, unknown>;
}

function expectArray(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw new InvalidArgumentError(`${where}: expected an array, got ${describe(value)}`);
  return value;
}

function expectString(value: unknown, where: string): string {
  if (typeof value !== 'string') throw new InvalidArgumentError(`${where}: expected a string, got ${describe(value)}`);
  return value;
}

function expectBoolean(value: unknown, where: string): boolean {
  if (typeof value !== 'boolean') throw new InvalidArgumentError(`${where}: expected true or false, got ${describe(value)}`);
  return value;
}

function expectInteger(value: unknown, where: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(`${where}: expected an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  return value;
}

function expectOneOf<T extends string>(value: unknown, where: string, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`${where}: expected one of ${allowed.join(', ')}, got ${describe(value)}`);
  }
  return value as T;
}

function expectPassword(value: unknown, where: string): string {
  const password = expectString(value, where);
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new InvalidArgumentError(`${where}: expected at least ${MIN_PASSWORD_LENGTH} characters, got ${password.length}`);
  }
  return password;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  return JSON.stringify(value) ?? String(value);
}
