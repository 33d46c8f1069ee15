/**
 * One device's SNMP session as the manager uses it: reads of UPGRADE-MIB scalars and history rows, and the
 * SET that starts an operation. Requests are promises; timeouts and error-status responses become
 * SnmpRequestError with a kind the runner can act on.
 */
import snmp, { isVarbindError, RequestFailedError, RequestTimedOutError, type Session, type User, type Varbind } from 'net-snmp';

import { toNetSnmpUser } from '../agent/index.js';
import { failCauseFromNumber, type FailCause } from '../errors/index.js';
import {
  HISTORY_COLUMNS,
  OPER_STATUS,
  SCALARS,
  UPGRADE_ACTIONS,
  UPGRADE_RESULTS,
  scalarInstanceOid,
  upgradeOid,
  type HistoryColumnName,
  type ScalarName,
} from '../mib/index.js';
import type { UpgradePhase, UpgradeResult } from '../upgrade/index.js';
import type { Credentials, InventoryDevice, UsmCredentials } from './inventory.js';

export interface RequestOptions {
  /** Wait for one response, in milliseconds. */
  timeoutMs: number;
  /** Resends of one request before it counts as unanswered. */
  retries: number;
}

/** The scalars that describe the running or last operation. */
export interface DeviceStatus {
  phase: UpgradePhase | 'unknown';
  failCause: FailCause | 'none';
  failReason: string;
  percent: number;
  bytesDone: number;
  bytesTotal: number;
  patchName: string;
  sourceVersion: string;
  targetVersion: string;
}

export interface DeviceFacts extends DeviceStatus {
  platform: string;
  runningImage: string;
  runningVersion: string;
  bootImage: string;
  bootVersion: string;
  spinLock: number;
}

export interface HistoryRow {
  index: number;
  result: UpgradeResult | 'unknown';
  failCause: FailCause | 'none';
  failReason: string;
  sourceVersion: string;
  targetVersion: string;
}

/** Why a request got no usable response. */
export type RequestFailureKind = 'timeout' | 'errorStatus' | 'noSuchObject' | 'other';

export class SnmpRequestError extends Error {
  constructor(
    readonly kind: RequestFailureKind,
    message: string,
    /** RFC 3416 error-status name, for `errorStatus`. */
    readonly status?: string,
    /** The UPGRADE-MIB object the error-status points at, when the agent named one. */
    readonly object?: ScalarName,
  ) {
    super(message);
    this.name = 'SnmpRequestError';
  }
}

const PHASE_BY_NUMBER = new Map(Object.entries(OPER_STATUS).map(([phase, number]) => [number, phase as UpgradePhase]));
const RESULT_BY_NUMBER = new Map<number, UpgradeResult>(Object.entries(UPGRADE_RESULTS).map(([result, number]) => [number, result as UpgradeResult]));
const SCALAR_BY_INSTANCE = new Map(Object.keys(SCALARS).map((name) => [scalarInstanceOid(name as ScalarName), name as ScalarName]));

const STATUS_SCALARS = [
  'upgradeOperStatus',
  'upgradeFailCause',
  'upgradeFailReason',
  'upgradeProgress',
  'upgradeBytesDone',
  'upgradeBytesTotal',
  'upgradePatchName',
  'upgradeSourceVersion',
  'upgradeTargetVersion',
] as const satisfies readonly ScalarName[];

const FACT_SCALARS = [
  ...STATUS_SCALARS,
  'upgradePlatform',
  'upgradeRunningImage',
  'upgradeRunningVersion',
  'upgradeBootImage',
  'upgradeBootVersion',
  'upgradeSpinLock',
] as const satisfies readonly ScalarName[];

const HISTORY_READ_COLUMNS = [
  'upgradeHistoryResult',
  'upgradeHistoryFailCause',
  'upgradeHistoryFailReason',
  'upgradeHistorySourceVersion',
  'upgradeHistoryTargetVersion',
] as const satisfies readonly HistoryColumnName[];

/** The values of one SET that starts an operation. */
export interface TriggerRequest {
  urlPrefix: string;
  /** Empty means the running image (the MIB's default for upgradeFlashImage). */
  flashImage: string;
  action: 'upgrade' | 'check' | 'abort';
  /** The upgradeSpinLock value read before; the SET succeeds only if no other manager wrote in between. */
  spinLock: number;
}

export class DeviceClient {
  private readonly session: Session;

  constructor(
    readonly device: InventoryDevice,
    options: RequestOptions,
  ) {
    this.session = openSession(device.host, device.port, device.credentials, options);
    // A session reports socket errors as events; the pending request then times out and is reported there.
    this.session.on('error', () => undefined);
  }

  async readFacts(): Promise<DeviceFacts> {
    const values = await this.getScalars(FACT_SCALARS);
    return {
      ...statusFrom(values),
      platform: text(values.upgradePlatform),
      runningImage: text(values.upgradeRunningImage),
      runningVersion: text(values.upgradeRunningVersion),
      bootImage: text(values.upgradeBootImage),
      bootVersion: text(values.upgradeBootVersion),
      spinLock: Number(values.upgradeSpinLock),
    };
  }

  async readStatus(): Promise<DeviceStatus> {
    return statusFrom(await this.getScalars(STATUS_SCALARS));
  }

  async readSpinLock(): Promise<number> {
    const values = await this.getScalars(['upgradeSpinLock']);
    return Number(values.upgradeSpinLock);
  }

  /** Returns the highest upgradeHistoryIndex in the table, or 0 when it is empty. */
  async lastHistoryIndex(): Promise<number> {
    const column = upgradeOid(HISTORY_COLUMNS.upgradeHistoryResult.arcs);
    let last = 0;
    await new Promise<void>((resolve, reject) => {
      this.session.subtree(
        column,
        20,
        (varbinds) => {
          for (const varbind of varbinds) {
            if (isVarbindError(varbind)) continue;
            last = Math.max(last, Number(varbind.oid.slice(column.length + 1)));
          }
        },
        (error) => (error ? reject(requestError(error)) : resolve()),
      );
    });
    return last;
  }

  /** Reads one history row; undefined when the agent has no row with that index (yet). */
  async readHistoryRow(index: number): Promise<HistoryRow | undefined> {
    const oids = HISTORY_READ_COLUMNS.map((name) => `${upgradeOid(HISTORY_COLUMNS[name].arcs)}.${index}`);
    const varbinds = await this.request<Varbind[]>((callback) => this.session.get(oids, callback));
    if (varbinds.some((varbind) => isVarbindError(varbind))) return undefined;

    const [result, failCause, failReason, sourceVersion, targetVersion] = varbinds.map((varbind) => varbind.value);
    return {
      index,
      result: RESULT_BY_NUMBER.get(Number(result)) ?? 'unknown',
      failCause: failCauseFromNumber(Number(failCause)) ?? 'none',
      failReason: text(failReason),
      sourceVersion: text(sourceVersion),
      targetVersion: text(targetVersion),
    };
  }

  /**
   * Sends upgradeUrlPrefix, upgradeFlashImage, upgradeSpinLock and upgradeAction in one SET PDU, so the agent
   * applies all or none (RFC 3416 section 4.2.5), and the spin lock keeps two managers from both starting.
   */
  async trigger(request: TriggerRequest): Promise<void> {
    const varbinds: Varbind[] = [];
    if (request.action !== 'abort') {
      varbinds.push(
        { oid: scalarInstanceOid('upgradeUrlPrefix'), type: snmp.ObjectType.OctetString, value: Buffer.from(request.urlPrefix, 'latin1') },
        { oid: scalarInstanceOid('upgradeFlashImage'), type: snmp.ObjectType.OctetString, value: Buffer.from(request.flashImage, 'latin1') },
      );
    }
    varbinds.push(
      { oid: scalarInstanceOid('upgradeSpinLock'), type: snmp.ObjectType.Integer, value: request.spinLock },
      { oid: scalarInstanceOid('upgradeAction'), type: snmp.ObjectType.Integer, value: UPGRADE_ACTIONS[request.action] },
    );
    await this.request<Varbind[]>((callback) => this.session.set(varbinds, callback));
  }

  close(): void {
    this.session.close();
  }

  private async getScalars<N extends ScalarName>(names: readonly N[]): Promise<Record<N, unknown>> {
    const oids = names.map((name) => scalarInstanceOid(name));
    const varbinds = await this.request<Varbind[]>((callback) => this.session.get(oids, callback));
    const values = {} as Record<N, unknown>;
    names.forEach((name, position) => {
      const varbind = varbinds[position];
      if (!varbind || isVarbindError(varbind)) {
        throw new SnmpRequestError('noSuchObject', `${name} is not served by the agent; is it an UPGRADE-MIB agent?`);
      }
      values[name] = varbind.value;
    });
    return values;
  }

  private request<T>(send: (callback: (error: Error | null, value?: T) => void) => void): Promise<T> {
    return new Promise((resolve, reject) => {
      try {
        send((error, value) => (error ? reject(requestError(error)) : resolve(value as T)));
      } catch (error) {
        reject(requestError(error as Error));
      }
    });
  }
}

function openSession(host: string, port: number, credentials: Credentials, options: RequestOptions): Session {
  const sessionOptions = {
    port,
    retries: options.retries,
    timeout: options.timeoutMs,
    transport: host.includes(':') ? ('udp6' as const) : ('udp4' as const),
  };
  if (credentials.version === '2c') {
    return snmp.createSession(host, credentials.community, { ...sessionOptions, version: snmp.Version2c });
  }

  // net-snmp discovers the agent's engine ID, boots and time with a report exchange (RFC 3414 section 4)
  // before the first authenticated request.
  return snmp.createV3Session(host, usmUser(credentials), { ...sessionOptions, version: snmp.Version3 });
}

/** Converts inventory USM credentials to net-snmp's user object. */
export function usmUser(credentials: UsmCredentials): User {
  const { user, level, authProtocol, authKey, privProtocol, privKey } = credentials;
  return toNetSnmpUser({ name: user, level, authProtocol, authPassword: authKey, privProtocol, privPassword: privKey });
}

function requestError(error: Error): SnmpRequestError {
  if (error instanceof SnmpRequestError) return error;
  if (error instanceof RequestTimedOutError) return new SnmpRequestError('timeout', 'no response (request timed out)');
  if (error instanceof RequestFailedError && typeof error.status === 'number') {
    // net-snmp's message is the status name, then ": OID" when the response's error-index names a varbind.
    const status = String((snmp.ErrorStatus as unknown as Record<number, string>)[error.status] ?? `error-status ${error.status}`);
    const oid = error.message.split(': ')[1];
    const object = oid === undefined ? undefined : SCALAR_BY_INSTANCE.get(oid);
    return new SnmpRequestError('errorStatus', object ? `${status} on ${object}` : status, status, object);
  }
  return new SnmpRequestError('other', error.message);
}

function statusFrom(values: Partial<Record<ScalarName, unknown>>): DeviceStatus {
  return {
    phase: PHASE_BY_NUMBER.get(Number(values.upgradeOperStatus)) ?? 'unknown',
    failCause: failCauseFromNumber(Number(values.upgradeFailCause)) ?? 'none',
    failReason: text(values.upgradeFailReason),
    percent: Number(values.upgradeProgress ?? 0),
    bytesDone: Number(values.upgradeBytesDone ?? 0),
    bytesTotal: Number(values.upgradeBytesTotal ?? 0),
    patchName: text(values.upgradePatchName),
    sourceVersion: text(values.upgradeSourceVersion),
    targetVersion: text(values.upgradeTargetVersion),
  };
}

function text(value: unknown): string {
  if (Buffer.isBuffer(value)) return value.toString('latin1');
  return value === undefined || value === null ? '' : String(value);
}

