/**
 * The manager's notification listener: SNMPv1/v2c traps, informs (net-snmp's receiver sends the
 * acknowledgement) and SNMPv3 notifications, whose engine discovery the receiver answers. UPGRADE-MIB
 * notifications are decoded into their objects; any other notification is kept as its varbinds.
 */
import { createSocket, type Socket } from 'node:dgram';

import snmp, { createReceiver, type Receiver, type ReceivedNotification, type Varbind } from 'net-snmp';

import { failCauseFromNumber, InvalidArgumentError, type FailCause } from '../errors/index.js';
import { NOTIFICATIONS, OPER_STATUS, notificationOid, scalarInstanceOid, type NotificationName } from '../mib/index.js';
import type { UpgradePhase } from '../upgrade/index.js';
import { usmUser } from './client.js';
import type { UsmCredentials } from './inventory.js';

/** sysUpTime.0 and snmpTrapOID.0 (SNMPv2-MIB), the first two varbinds of every SNMPv2 notification. */
const SYS_UP_TIME_OID = '1.3.6.1.2.1.1.3.0';
const SNMP_TRAP_OID_OID = '1.3.6.1.6.3.1.1.4.1.0';

export interface UpgradeNotificationFacts {
  patchName: string;
  sourceVersion: string;
  targetVersion: string;
  phase: UpgradePhase | 'unknown';
  failCause: FailCause | 'none';
  failReason: string;
}

export interface ReceivedTrap {
  time: Date;
  /** Sender address without the port: notifications leave an agent from another port than the one it serves. */
  senderAddress: string;
  sender: string;
  version: '1' | '2c' | '3';
  kind: 'trap' | 'inform';
  /** The UPGRADE-MIB notification's name, or the snmpTrapOID of any other notification. */
  name: NotificationName | string;
  /** Set for UPGRADE-MIB notifications. */
  upgrade?: UpgradeNotificationFacts;
  /** SNMPv3 only: the sending engine's ID, in hex. */
  engineId?: string;
  /** Varbinds after sysUpTime.0 and snmpTrapOID.0, values as text. */
  varbinds: Array<{ oid: string; value: string }>;
}

export interface TrapListenerOptions {
  host: string;
  port: number;
  /** SNMPv3 users whose authenticated notifications are accepted. */
  users?: UsmCredentials[];
  onTrap: (trap: ReceivedTrap) => void;
  /** A datagram that could not be decoded or authenticated; the listener keeps running. */
  onError?: (message: string, sender: string | undefined) => void;
}

export interface TrapListener {
  address: { address: string; port: number };
  close(): Promise<void>;
}

const NAME_BY_OID = new Map(Object.keys(NOTIFICATIONS).map((name) => [notificationOid(name as NotificationName), name as NotificationName]));
const PHASE_BY_NUMBER = new Map(Object.entries(OPER_STATUS).map(([phase, number]) => [number, phase as UpgradePhase]));

/** Starts listening; resolves once the socket is bound, rejects when the address cannot be bound. */
export async function startTrapListener(options: TrapListenerOptions): Promise<TrapListener> {
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
    throw new InvalidArgumentError(`invalid trap listener port: expected 1 to 65535, got ${options.port}`);
  }
  let socket: Socket | undefined;
  const dgramModule = {
    createSocket(type: 'udp4' | 'udp6'): Socket {
      socket = createSocket(type);
      return socket;
    },
  };

  let bound = false;
  const receiver: Receiver = createReceiver(
    {
      port: options.port,
      address: options.host,
      transport: options.host.includes(':') ? 'udp6' : 'udp4',
      // Community notifications are accepted from any community: the manager uses a trap only as a hint to
      // poll the sender at once, and every poll is an authenticated request, so a forged trap costs one poll.
      disableAuthorization: true,
      includeAuthentication: false,
      dgramModule,
    },
    (error, notification) => {
      if (error) {
        if (!bound) return;
        const sender = error.rinfo ? `${error.rinfo.address}:${error.rinfo.port}` : undefined;
        options.onError?.(error.message, sender);
        return;
      }
      if (notification) options.onTrap(decodeNotification(notification));
    },
  );
  for (const user of options.users ?? []) receiver.getAuthorizer().addUser(usmUser(user));

  await new Promise<void>((resolve, reject) => {
    socket!.once('listening', () => resolve());
    socket!.once('error', (error) => {
      receiver.close();
      reject(new InvalidArgumentError(`cannot listen for traps on ${options.host}:${options.port}: ${error.message}`, { cause: error }));
    });
  });
  bound = true;

  const local = socket!.address();
  return {
    address: { address: local.address, port: local.port },
    close: () => new Promise<void>((resolve) => receiver.close(() => resolve())),
  };
}

/** Decodes a received notification; exported for the `traps` command's tests. */
export function decodeNotification(notification: ReceivedNotification): ReceivedTrap {
  const { pdu, rinfo } = notification;
  const senderAddress = rinfo.address.startsWith('::ffff:') ? rinfo.address.slice(7) : rinfo.address;
  const version = pdu.contextEngineID !== undefined ? '3' : pdu.type === snmp.PduType.Trap ? '1' : '2c';
  const kind = pdu.type === snmp.PduType.InformRequest ? 'inform' : 'trap';
  const trapOidVarbind = pdu.varbinds.find((varbind) => varbind.oid === SNMP_TRAP_OID_OID);
  const trapOid = trapOidVarbind ? String(trapOidVarbind.value) : pdu.type === snmp.PduType.Trap ? 'SNMPv1 trap' : 'unknown';
  const name = NAME_BY_OID.get(trapOid) ?? trapOid;

  const rest = pdu.varbinds.filter((varbind) => varbind.oid !== SYS_UP_TIME_OID && varbind.oid !== SNMP_TRAP_OID_OID);
  const trap: ReceivedTrap = {
    time: new Date(),
    senderAddress,
    sender: senderAddress.includes(':') ? `[${senderAddress}]:${rinfo.port}` : `${senderAddress}:${rinfo.port}`,
    version,
    kind,
    name,
    varbinds: rest.map((varbind) => ({ oid: varbind.oid, value: valueText(varbind) })),
  };
  if (version === '3') trap.engineId = String(pdu.contextEngineID);
  if (NAME_BY_OID.has(trapOid)) trap.upgrade = upgradeFacts(rest);
  return trap;
}

function upgradeFacts(varbinds: Varbind[]): UpgradeNotificationFacts {
  const value = (name: Parameters<typeof scalarInstanceOid>[0]) => varbinds.find((varbind) => varbind.oid === scalarInstanceOid(name))?.value;
  const text = (raw: unknown) => (Buffer.isBuffer(raw) ? raw.toString('latin1') : raw === undefined ? '' : String(raw));
  return {
    patchName: text(value('upgradePatchName')),
    sourceVersion: text(value('upgradeSourceVersion')),
    targetVersion: text(value('upgradeTargetVersion')),
    phase: PHASE_BY_NUMBER.get(Number(value('upgradeOperStatus'))) ?? 'unknown',
    failCause: failCauseFromNumber(Number(value('upgradeFailCause'))) ?? 'none',
    failReason: text(value('upgradeFailReason')),
  };
}

/** Shows printable octet strings as text and others as hex, as snmptrapd does. */
function valueText(varbind: Varbind): string {
  const value = varbind.value;
  if (Buffer.isBuffer(value)) {
    return /^[\x20-\x7e]*$/.test(value.toString('latin1')) ? value.toString('latin1') : `0x${value.toString('hex')}`;
  }
  return String(value);
}

