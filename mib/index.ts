/**
 * UPGRADE-MIB (MIB-UPGRADE.txt) as TypeScript constants: every object's OID, its SMI base type and access,
 * and the enumerations. test/mib checks this table against the MIB file as net-snmp's ModuleStore parses it,
 * so the agent and the MIB cannot drift apart.
 */
import { FAIL_CAUSES } from '../errors/index.js';
import { UPGRADE_PHASES, type UpgradeResult } from '../upgrade/index.js';

/** enterprises.32473: the enterprise number RFC 5612 reserves for documentation. */
export const UPGRADE_MIB_OID = '1.3.6.1.4.1.32473';
export const UPGRADE_MIB_MODULE = 'UPGRADE-MIB';

/** The MIB file's name at the repository root. */
export const UPGRADE_MIB_FILE = 'MIB-UPGRADE.txt';

/** SMI base types the objects use, as the wire carries them. */
export type SmiType = 'Integer' | 'OctetString' | 'Gauge32' | 'Unsigned32';
export type MaxAccess = 'read-only' | 'read-write';

export interface ObjectDefinition {
  /** Arcs below UPGRADE_MIB_OID. */
  arcs: readonly number[];
  type: SmiType;
  access: MaxAccess;
}

/** The scalar objects; each has one instance, `.0`. */
export const SCALARS = {
  upgradeUrlPrefix: { arcs: [1, 1, 1], type: 'OctetString', access: 'read-write' },
  upgradeFlashImage: { arcs: [1, 1, 2], type: 'OctetString', access: 'read-write' },

  upgradeAction: { arcs: [1, 2, 1], type: 'Integer', access: 'read-write' },
  upgradeSpinLock: { arcs: [1, 2, 2], type: 'Integer', access: 'read-write' },

  upgradeOperStatus: { arcs: [1, 3, 1], type: 'Integer', access: 'read-only' },
  upgradeFailCause: { arcs: [1, 3, 2], type: 'Integer', access: 'read-only' },
  upgradeFailReason: { arcs: [1, 3, 3], type: 'OctetString', access: 'read-only' },
  upgradeProgress: { arcs: [1, 3, 4], type: 'Unsigned32', access: 'read-only' },
  upgradeBytesDone: { arcs: [1, 3, 5], type: 'Gauge32', access: 'read-only' },
  upgradeBytesTotal: { arcs: [1, 3, 6], type: 'Gauge32', access: 'read-only' },
  upgradeStartTime: { arcs: [1, 3, 7], type: 'OctetString', access: 'read-only' },
  upgradeEndTime: { arcs: [1, 3, 8], type: 'OctetString', access: 'read-only' },
  upgradePatchName: { arcs: [1, 3, 9], type: 'OctetString', access: 'read-only' },
  upgradeSourceVersion: { arcs: [1, 3, 10], type: 'OctetString', access: 'read-only' },
  upgradeTargetVersion: { arcs: [1, 3, 11], type: 'OctetString', access: 'read-only' },

  upgradePlatform: { arcs: [1, 4, 1], type: 'OctetString', access: 'read-only' },
  upgradeRunningImage: { arcs: [1, 4, 2], type: 'OctetString', access: 'read-only' },
  upgradeRunningVersion: { arcs: [1, 4, 3], type: 'OctetString', access: 'read-only' },
  upgradeBootImage: { arcs: [1, 4, 4], type: 'OctetString', access: 'read-only' },
  upgradeBootVersion: { arcs: [1, 4, 5], type: 'OctetString', access: 'read-only' },
  upgradeSecurityCounter: { arcs: [1, 4, 6], type: 'OctetString', access: 'read-only' },
  upgradeFlashSize: { arcs: [1, 4, 7], type: 'Unsigned32', access: 'read-only' },
  upgradeFlashFree: { arcs: [1, 4, 8], type: 'Unsigned32', access: 'read-only' },
  upgradeFlashSizeBytes: { arcs: [1, 4, 9], type: 'OctetString', access: 'read-only' },
  upgradeFlashFreeBytes: { arcs: [1, 4, 10], type: 'OctetString', access: 'read-only' },
} as const satisfies Record<string, ObjectDefinition>;

export type ScalarName = keyof typeof SCALARS;

/** upgradeHistoryTable.upgradeHistoryEntry, indexed by upgradeHistoryIndex (Unsigned32). */
export const HISTORY_ENTRY_ARCS = [1, 5, 1, 1] as const;

/** The columns of upgradeHistoryEntry; the index column (1) is not-accessible and not listed. */
export const HISTORY_COLUMNS = {
  upgradeHistoryAction: { arcs: [...HISTORY_ENTRY_ARCS, 2], type: 'Integer', access: 'read-only' },
  upgradeHistoryStartTime: { arcs: [...HISTORY_ENTRY_ARCS, 3], type: 'OctetString', access: 'read-only' },
  upgradeHistoryEndTime: { arcs: [...HISTORY_ENTRY_ARCS, 4], type: 'OctetString', access: 'read-only' },
  upgradeHistoryPatchName: { arcs: [...HISTORY_ENTRY_ARCS, 5], type: 'OctetString', access: 'read-only' },
  upgradeHistorySourceVersion: { arcs: [...HISTORY_ENTRY_ARCS, 6], type: 'OctetString', access: 'read-only' },
  upgradeHistoryTargetVersion: { arcs: [...HISTORY_ENTRY_ARCS, 7], type: 'OctetString', access: 'read-only' },
  upgradeHistoryResult: { arcs: [...HISTORY_ENTRY_ARCS, 8], type: 'Integer', access: 'read-only' },
  upgradeHistoryFailCause: { arcs: [...HISTORY_ENTRY_ARCS, 9], type: 'Integer', access: 'read-only' },
  upgradeHistoryFailReason: { arcs: [...HISTORY_ENTRY_ARCS, 10], type: 'OctetString', access: 'read-only' },
} as const satisfies Record<string, ObjectDefinition>;

export type HistoryColumnName = keyof typeof HISTORY_COLUMNS;

export const NOTIFICATIONS = {
  upgradeStarted: [0, 1],
  upgradeCompleted: [0, 2],
  upgradeFailed: [0, 3],
} as const;

export type NotificationName = keyof typeof NOTIFICATIONS;

/** The objects every notification carries, in this order, after sysUpTime.0 and snmpTrapOID.0. */
export const NOTIFICATION_OBJECTS = [
  'upgradePatchName',
  'upgradeSourceVersion',
  'upgradeTargetVersion',
  'upgradeOperStatus',
  'upgradeFailCause',
  'upgradeFailReason',
  'upgradeStartTime',
  'upgradeEndTime',
] as const satisfies readonly ScalarName[];

/** Returns the dotted OID of the arcs below UPGRADE_MIB_OID. */
export function upgradeOid(arcs: readonly number[]): string {
  return [UPGRADE_MIB_OID, ...arcs].join('.');
}

/** Returns the OID of a scalar's instance (`.0`). */
export function scalarInstanceOid(name: ScalarName): string {
  return `${upgradeOid(SCALARS[name].arcs)}.0`;
}

/** Returns the OID of a notification. */
export function notificationOid(name: NotificationName): string {
  return upgradeOid(NOTIFICATIONS[name]);
}

/** UpgradeOperation: upgradeAction and upgradeHistoryAction. */
export const UPGRADE_ACTIONS = {
  none: 1,
  upgrade: 2,
  check: 3,
  abort: 4,
  reload: 5,
} as const;

export type UpgradeActionName = keyof typeof UPGRADE_ACTIONS;

/** UpgradePhase: upgradeOperStatus, numbered from 1 in the order of UPGRADE_PHASES. */
export const OPER_STATUS: Readonly<Record<(typeof UPGRADE_PHASES)[number], number>> = Object.fromEntries(
  UPGRADE_PHASES.map((phase, position) => [phase, position + 1]),
) as Record<(typeof UPGRADE_PHASES)[number], number>;

/** UpgradeFailureCause: the shared failure causes, none(1) first. */
export const FAIL_CAUSE_VALUES: Readonly<typeof FAIL_CAUSES> = FAIL_CAUSES;

/** UpgradeResult: upgradeHistoryResult. */
export const UPGRADE_RESULTS = {
  installed: 1,
  alreadyAtTarget: 2,
  checked: 3,
  failed: 4,
  aborted: 5,
} as const satisfies Record<UpgradeResult, number>;

/** The enumerations of the MIB's textual conventions, by the TC's name, for checks against the MIB file. */
export const ENUMERATIONS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  UpgradeOperation: UPGRADE_ACTIONS,
  UpgradePhase: OPER_STATUS,
  UpgradeFailureCause: FAIL_CAUSE_VALUES,
  UpgradeResult: UPGRADE_RESULTS,
};

/** Longest upgradeUrlPrefix, upgradeFlashImage and any DisplayString, in octets (SNMPv2-TC DisplayString). */
export const DISPLAY_STRING_MAX = 255;

/** TestAndIncr's range (SNMPv2-TC). */
export const TEST_AND_INCR_MAX = 2147483647;

/** Encodes a value as UpgradeUnsigned64: 8 octets, network byte order. */
export function encodeUnsigned64(value: bigint | number): Buffer {
  const octets = Buffer.alloc(8);
  const clamped = BigInt(value) < 0n ? 0n : BigInt.asUintN(64, BigInt(value));
  octets.writeBigUInt64BE(clamped);
  return octets;
}

/** The DateAndTime a MIB object holds while no time is known: eight zero octets. */
export const UNKNOWN_DATE_AND_TIME = Buffer.alloc(8);

/** Encodes a time as an 11-octet DateAndTime in UTC (SNMPv2-TC), or eight zero octets when undefined. */
export function encodeDateAndTime(time: Date | undefined): Buffer {
  if (time === undefined || Number.isNaN(time.getTime())) return Buffer.from(UNKNOWN_DATE_AND_TIME);

  const octets = Buffer.alloc(11);
  octets.writeUInt16BE(time.getUTCFullYear(), 0);
  octets.writeUInt8(time.getUTCMonth() + 1, 2);
  octets.writeUInt8(time.getUTCDate(), 3);
  octets.writeUInt8(time.getUTCHours(), 4);
  octets.writeUInt8(time.getUTCMinutes(), 5);
  octets.writeUInt8(time.getUTCSeconds(), 6);
  octets.writeUInt8(Math.floor(time.getUTCMilliseconds() / 100), 7);
  octets.write('+', 8, 'ascii');
  octets.writeUInt8(0, 9);
  octets.writeUInt8(0, 10);
  return octets;
}
