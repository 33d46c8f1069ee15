/**
 * The agent's MIB view: SNMPv2-MIB's system and snmp groups, SNMP-FRAMEWORK-MIB's snmpEngine group and
 * UPGRADE-MIB, as a sorted list of instances whose values are read from the device at request time.
 */
import snmp from 'net-snmp';

import { failCauseNumber } from '../errors/index.js';
import {
  DISPLAY_STRING_MAX,
  HISTORY_COLUMNS,
  OPER_STATUS,
  SCALARS,
  UPGRADE_ACTIONS,
  UPGRADE_MIB_OID,
  UPGRADE_RESULTS,
  encodeDateAndTime,
  encodeUnsigned64,
  upgradeOid,
  type HistoryColumnName,
  type ScalarName,
  type SmiType,
} from '../mib/index.js';
import type { DeviceInventory, DeviceSettings, UpgradeStatus } from '../upgrade/index.js';
import type { HistoryRecord } from './state.js';

export interface SnmpValue {
  type: number;
  value: unknown;
}

/** The device state one request reads, gathered once per request so its varbinds agree with each other. */
export interface ViewSnapshot {
  status: UpgradeStatus;
  inventory: DeviceInventory;
  settings: DeviceSettings;
  spinLock: number;
  history: readonly HistoryRecord[];
  counters: Readonly<Record<CounterName, number>>;
  engineId: Buffer;
  engineBoots: number;
  /** Seconds since the agent started (snmpEngineTime). */
  engineTime: number;
  /** Hundredths of a second since the agent started (sysUpTime). */
  upTime: number;
  system: SystemInfo;
}

export interface SystemInfo {
  sysDescr: string;
  sysContact: string;
  sysName: string;
  sysLocation: string;
}

/** SNMPv2-MIB snmp group counters the agent keeps (RFC 3418). */
export const COUNTERS = {
  snmpInPkts: '1.3.6.1.2.1.11.1',
  snmpInBadVersions: '1.3.6.1.2.1.11.3',
  snmpInASNParseErrs: '1.3.6.1.2.1.11.6',
  snmpSilentDrops: '1.3.6.1.2.1.11.31',
  snmpProxyDrops: '1.3.6.1.2.1.11.32',
} as const;
export type CounterName = keyof typeof COUNTERS;

export interface Instance {
  oid: string;
  arcs: number[];
  /** The OID of the object (the instance without its index), for noSuchInstance versus noSuchObject. */
  objectOid: string;
  read(view: ViewSnapshot): SnmpValue;
}

/** sysObjectID: the MIB's module identity, until a vendor gives its products their own OIDs. */
export const SYS_OBJECT_ID = UPGRADE_MIB_OID;

const integer = (value: number): SnmpValue => ({ type: snmp.ObjectType.Integer, value });
const gauge = (value: number): SnmpValue => ({ type: snmp.ObjectType.Gauge, value: clampUnsigned32(value) });
const octets = (value: string | Buffer): SnmpValue => ({
  type: snmp.ObjectType.OctetString,
  value: typeof value === 'string' ? displayString(value) : value,
});

/** Clamps a value to Gauge32's range: values above 2^32-1 are reported as 2^32-1 (RFC 2578 section 7.1.7). */
export function clampUnsigned32(value: number): number {
  if (!Number.isFinite(value) || value < 0) return 0;
  return Math.min(Math.floor(value), 0xffffffff);
}

/** Cuts a text to DisplayString's 255 octets without splitting a UTF-8 sequence. */
export function displayString(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= DISPLAY_STRING_MAX) return bytes;
  let end = DISPLAY_STRING_MAX;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

/** Reads the value of each UPGRADE-MIB scalar from a snapshot. */
const SCALAR_READERS: Record<ScalarName, (view: ViewSnapshot) => SnmpValue> = {
  upgradeUrlPrefix: (view) => octets(view.settings.urlPrefix),
  upgradeFlashImage: (view) => octets(view.settings.flashImage),
  upgradeAction: (view) => integer(isRunning(view.status) && view.status.action ? UPGRADE_ACTIONS[view.status.action] : UPGRADE_ACTIONS.none),
  upgradeSpinLock: (view) => integer(view.spinLock),
  upgradeOperStatus: (view) => integer(OPER_STATUS[view.status.phase]),
  upgradeFailCause: (view) => integer(failCauseNumber(view.status.failCause ?? 'none')),
  upgradeFailReason: (view) => octets(view.status.failReason),
  upgradeProgress: (view) => gauge(Math.min(100, view.status.percent)),
  upgradeBytesDone: (view) => gauge(view.status.bytesDone),
  upgradeBytesTotal: (view) => gauge(view.status.bytesTotal),
  upgradeStartTime: (view) => octets(encodeDateAndTime(view.status.startTime)),
  upgradeEndTime: (view) => octets(encodeDateAndTime(view.status.endTime)),
  upgradePatchName: (view) => octets(view.status.patchName),
  upgradeSourceVersion: (view) => octets(view.status.sourceVersion),
  upgradeTargetVersion: (view) => octets(view.status.targetVersion),
  upgradePlatform: (view) => octets(view.inventory.platform),
  upgradeRunningImage: (view) => octets(view.inventory.runningImage),
  upgradeRunningVersion: (view) => octets(view.inventory.runningVersion),
  upgradeBootImage: (view) => octets(view.inventory.bootImage),
  upgradeBootVersion: (view) => octets(view.inventory.bootVersion),
  upgradeSecurityCounter: (view) => octets(encodeUnsigned64(view.inventory.securityCounter)),
  upgradeFlashSize: (view) => gauge(view.inventory.flashSizeBytes / 1024),
  upgradeFlashFree: (view) => gauge(view.inventory.flashFreeBytes / 1024),
  upgradeFlashSizeBytes: (view) => octets(encodeUnsigned64(view.inventory.flashSizeBytes)),
  upgradeFlashFreeBytes: (view) => octets(encodeUnsigned64(view.inventory.flashFreeBytes)),
};

const HISTORY_READERS: Record<HistoryColumnName, (row: HistoryRecord) => SnmpValue> = {
  upgradeHistoryAction: (row) => integer(UPGRADE_ACTIONS[row.action]),
  upgradeHistoryStartTime: (row) => octets(encodeDateAndTime(new Date(row.startTime))),
  upgradeHistoryEndTime: (row) => octets(encodeDateAndTime(new Date(row.endTime))),
  upgradeHistoryPatchName: (row) => octets(row.patchName),
  upgradeHistorySourceVersion: (row) => octets(row.sourceVersion),
  upgradeHistoryTargetVersion: (row) => octets(row.targetVersion),
  upgradeHistoryResult: (row) => integer(UPGRADE_RESULTS[row.result]),
  upgradeHistoryFailCause: (row) => integer(failCauseNumber(row.failCause as Parameters<typeof failCauseNumber>[0])),
  upgradeHistoryFailReason: (row) => octets(row.failReason),
};

/** Phases in which an operation runs; the others are resting states. */
export function isRunning(status: UpgradeStatus): boolean {
  return !['idle', 'installedPendingReload', 'failed'].includes(status.phase);
}

/** Returns the net-snmp wire type of an SMI base type. */
export function wireType(type: SmiType): number {
  if (type === 'Integer') return snmp.ObjectType.Integer;
  if (type === 'OctetString') return snmp.ObjectType.OctetString;
  return snmp.ObjectType.Gauge;
}

export function parseArcs(oid: string): number[] {
  return oid.split('.').map(Number);
}

/** Compares two OIDs as RFC 3416 orders them: arc by arc, a prefix before its extensions. */
export function compareArcs(left: readonly number[], right: readonly number[]): number {
  const length = Math.min(left.length, right.length);
  for (let i = 0; i < length; i++) {
    if (left[i] !== right[i]) return left[i]! < right[i]! ? -1 : 1;
  }
  return left.length - right.length;
}

function instance(oid: string, objectOid: string, read: (view: ViewSnapshot) => SnmpValue): Instance {
  return { oid, arcs: parseArcs(oid), objectOid, read };
}

function scalar(objectOid: string, read: (view: ViewSnapshot) => SnmpValue): Instance {
  return instance(`${objectOid}.0`, objectOid, read);
}

/** The instances that do not depend on the history table, sorted once. */
const FIXED_INSTANCES: Instance[] = [
  // SNMPv2-MIB system group (RFC 3418); sysORTable is optional and left out.
  scalar('1.3.6.1.2.1.1.1', (view) => octets(view.system.sysDescr)),
  scalar('1.3.6.1.2.1.1.2', () => ({ type: snmp.ObjectType.OID, value: SYS_OBJECT_ID })),
  scalar('1.3.6.1.2.1.1.3', (view) => ({ type: snmp.ObjectType.TimeTicks, value: view.upTime % 2 ** 32 })),
  scalar('1.3.6.1.2.1.1.4', (view) => octets(view.system.sysContact)),
  scalar('1.3.6.1.2.1.1.5', (view) => octets(view.system.sysName)),
  scalar('1.3.6.1.2.1.1.6', (view) => octets(view.system.sysLocation)),
  // sysServices: 2 (internet: IP routing) plus 4 (end-to-end: this agent's host), so 6.
  scalar('1.3.6.1.2.1.1.7', () => integer(6)),

  ...Object.entries(COUNTERS).map(([name, oid]) =>
    scalar(oid, (view) => ({ type: snmp.ObjectType.Counter, value: view.counters[name as CounterName] % 2 ** 32 })),
  ),
  // snmpEnableAuthenTraps: disabled(2); the agent sends no authenticationFailure traps.
  scalar('1.3.6.1.2.1.11.30', () => integer(2)),

  // SNMP-FRAMEWORK-MIB snmpEngine group (RFC 3411).
  scalar('1.3.6.1.6.3.10.2.1.1', (view) => octets(view.engineId)),
  scalar('1.3.6.1.6.3.10.2.1.2', (view) => integer(view.engineBoots)),
  scalar('1.3.6.1.6.3.10.2.1.3', (view) => integer(view.engineTime)),
  scalar('1.3.6.1.6.3.10.2.1.4', () => integer(65507)),

  ...Object.entries(SCALARS).map(([name, definition]) =>
    scalar(upgradeOid(definition.arcs), SCALAR_READERS[name as ScalarName]),
  ),
].sort((left, right) => compareArcs(left.arcs, right.arcs));

/** Returns every instance the agent serves, in OID order, with the history rows of this snapshot. */
export function listInstances(history: readonly HistoryRecord[]): Instance[] {
  const rows: Instance[] = [];
  for (const [name, definition] of Object.entries(HISTORY_COLUMNS)) {
    const columnOid = upgradeOid(definition.arcs);
    for (const row of history) {
      const captured = row;
      rows.push(instance(`${columnOid}.${row.index}`, columnOid, () => HISTORY_READERS[name as HistoryColumnName](captured)));
    }
  }
  return [...FIXED_INSTANCES, ...rows].sort((left, right) => compareArcs(left.arcs, right.arcs));
}
