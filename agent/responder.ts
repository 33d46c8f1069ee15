/**
 * The command responder: builds the responses to GetRequest, GetNextRequest, GetBulkRequest and SetRequest
 * from the view in objects.ts. net-snmp decodes, authenticates and decrypts the message and encodes the
 * response. This module replaces net-snmp's MIB handling. In 3.29 that handling responds to a GET of `1.3`
 * under the name 1.3.6.1 and throws on a sub-identifier above 2^31-1. For a SET it casts each value to the
 * object's type instead of checking the varbind's ASN.1 type, and it commits the varbinds one by one. Here a SET is validated varbind by varbind in RFC 3416 section 4.2.5 order
 * before anything is applied, and SETs run one at a time.
 */
import snmp, { type Message, type Pdu, type Varbind } from 'net-snmp';

import { BadUrlError, InvalidArgumentError, UpgradeError } from '../errors/index.js';
import {
  DISPLAY_STRING_MAX,
  SCALARS,
  TEST_AND_INCR_MAX,
  UPGRADE_ACTIONS,
  scalarInstanceOid,
  type ScalarName,
} from '../mib/index.js';
import type { Device, DeviceSettings } from '../upgrade/index.js';
import { isWellFormedOid } from './guard.js';
import type { HistoryRecord } from './state.js';
import { compareArcs, isRunning, listInstances, parseArcs, wireType, type Instance, type ViewSnapshot } from './objects.js';

const { ErrorStatus, ObjectType, PduType } = snmp;

/** Maximum GetBulk response, in encoded varbind octets: below a 1500-octet Ethernet MTU with headers. */
const BULK_RESPONSE_LIMIT = 1300;
/** Maximum response to other requests, because UDP over IPv4 carries at most 65507 octets. */
const RESPONSE_LIMIT = 65000;

export interface SetOutcome {
  error?: { status: number; index: number };
}

/** The responder's access to the device and the agent's state; agent.ts implements it. */
export interface ResponderHost {
  device: Device;
  snapshot(): Promise<ViewSnapshot>;
  mayWrite(message: Message): boolean;
  spinLock(): number;
  bumpSpinLock(): void;
  /** Drops the cached settings and inventory after a SET changed them. */
  invalidate(): void;
  /** The rows of upgradeHistoryTable, for telling a read-only instance from a missing one. */
  history(): readonly HistoryRecord[];
  /** Called after a SET of reload(5) made the boot image the running one. A reload adds no history row. */
  reloaded(): void;
}

interface SetPlan {
  settings: Partial<DeviceSettings>;
  spinLock: boolean;
  action: number | undefined;
  /** Index (1-based) of the varbind behind each part of the plan, for error-index. */
  index: { urlPrefix?: number; flashImage?: number; action?: number };
}

export class Responder {
  private setQueue: Promise<unknown> = Promise.resolve();

  constructor(private readonly host: ResponderHost) {}

  /** Builds the response PDU for a decoded request. */
  async respond(message: Message): Promise<Pdu> {
    const request = message.pdu;
    const response = request.getResponsePduForRequest();

    if (request.type === PduType.SetRequest) {
      // Runs SETs one after another, so a retransmission waits for the first and then meets a stale spin lock.
      const outcome = this.setQueue.then(() => this.set(message));
      this.setQueue = outcome.catch(() => undefined);
      const { error } = await outcome;
      response.varbinds = request.varbinds.map((varbind) => ({ ...varbind }));
      if (error) {
        response.errorStatus = error.status;
        response.errorIndex = error.index;
      }
      return response;
    }

    const view = await this.host.snapshot();
    const instances = listInstances(view.history);
    let varbinds: Varbind[];
    if (request.type === PduType.GetRequest) {
      varbinds = request.varbinds.map((varbind) => this.get(instances, view, varbind.oid));
    } else if (request.type === PduType.GetNextRequest) {
      varbinds = request.varbinds.map((varbind) => this.getNext(instances, view, varbind.oid));
    } else {
      varbinds = this.getBulk(instances, view, request);
    }

    const limit = request.type === PduType.GetBulkRequest ? Number.POSITIVE_INFINITY : RESPONSE_LIMIT;
    if (encodedSize(varbinds) > limit) {
      // RFC 3416 section 4.2.1: the alternate response has error-index zero and no varbinds.
      response.errorStatus = ErrorStatus.TooBig;
      response.errorIndex = 0;
      response.varbinds = [];
      return response;
    }

    response.varbinds = varbinds;
    if (message.version === snmp.Version1) toVersion1(response, request);
    return response;
  }

  private get(instances: Instance[], view: ViewSnapshot, oid: string): Varbind {
    const found = isWellFormedOid(oid) ? instances.find((candidate) => candidate.oid === oid) : undefined;
    if (found) return { oid, ...found.read(view) };

    const underObject = instances.some((candidate) => oid.startsWith(`${candidate.objectOid}.`) || oid === candidate.objectOid);
    return { oid, type: underObject ? ObjectType.NoSuchInstance : ObjectType.NoSuchObject, value: null };
  }

  private getNext(instances: Instance[], view: ViewSnapshot, oid: string): Varbind {
    const next = isWellFormedOid(oid) ? findNext(instances, parseArcs(oid)) : undefined;
    if (!next) return { oid, type: ObjectType.EndOfMibView, value: null };
    return { oid: next.oid, ...next.read(view) };
  }

  /** RFC 3416 section 4.2.3: N non-repeaters once, then up to M rounds over the R repeaters. */
  private getBulk(instances: Instance[], view: ViewSnapshot, request: Pdu): Varbind[] {
    const count = request.varbinds.length;
    const nonRepeaters = Math.min(Math.max(request.nonRepeaters ?? 0, 0), count);
    const maxRepetitions = Math.max(request.maxRepetitions ?? 0, 0);
    const varbinds = request.varbinds.slice(0, nonRepeaters).map((varbind) => this.getNext(instances, view, varbind.oid));

    let cursors = request.varbinds.slice(nonRepeaters).map((varbind) => varbind.oid);
    let size = encodedSize(varbinds);
    for (let round = 0; round < maxRepetitions && cursors.length > 0; round++) {
      const row = cursors.map((oid) => this.getNext(instances, view, oid));
      const rowSize = encodedSize(row);
      // The response may stop early rather than exceed the message size (RFC 3416 section 4.2.3).
      if (round > 0 && size + rowSize > BULK_RESPONSE_LIMIT) break;
      varbinds.push(...row);
      size += rowSize;
      if (row.every((varbind) => varbind.type === ObjectType.EndOfMibView)) break;
      cursors = row.map((varbind) => varbind.oid);
    }
    return varbinds;
  }

  /** Validates every varbind, then applies them all or none (RFC 3416 section 4.2.5). */
  private async set(message: Message): Promise<SetOutcome> {
    const varbinds = message.pdu.varbinds;
    const plan: SetPlan = { settings: {}, spinLock: false, action: undefined, index: {} };
    const status = this.host.device.status();
    const seen = new Set<string>();

    for (let position = 0; position < varbinds.length; position++) {
      const index = position + 1;
      const varbind = varbinds[position]!;
      const fail = (statusCode: number): SetOutcome => ({ error: { status: statusCode, index } });

      // RFC 3416 section 4.2.5 step 1: the variable is outside this manager's write view.
      if (!this.host.mayWrite(message)) return fail(ErrorStatus.NoAccess);

      const name = writableObjectAt(varbind.oid);
      if (name === undefined) {
        const exists = listInstances(this.host.history()).some((candidate) => candidate.oid === varbind.oid);
        return fail(exists ? ErrorStatus.NotWritable : ErrorStatus.NoCreation);
      }
      // Two values for one variable cannot both be applied.
      if (seen.has(name)) return fail(ErrorStatus.InconsistentValue);
      seen.add(name);

      if (varbind.type !== wireType(SCALARS[name].type)) return fail(ErrorStatus.WrongType);

      if (name === 'upgradeUrlPrefix' || name === 'upgradeFlashImage') {
        const value = varbind.value as Buffer;
        const tooShort = name === 'upgradeUrlPrefix' && value.length === 0;
        if (tooShort || value.length > DISPLAY_STRING_MAX) return fail(ErrorStatus.WrongLength);
        // DisplayString is NVT ASCII (SNMPv2-TC); control characters would also reach logs and file names.
        if (!/^[\x20-\x7e]*$/.test(value.toString('latin1'))) return fail(ErrorStatus.WrongValue);
        const text = value.toString('latin1');

        if (name === 'upgradeUrlPrefix') {
          try {
            this.host.device.validateUrlPrefix(text);
          } catch (error) {
            if (error instanceof BadUrlError || error instanceof InvalidArgumentError) return fail(ErrorStatus.WrongValue);
            throw error;
          }
          plan.settings.urlPrefix = text;
          plan.index.urlPrefix = index;
        } else {
          plan.settings.flashImage = text;
          plan.index.flashImage = index;
        }
        continue;
      }

      const value = varbind.value as number;
      if (name === 'upgradeSpinLock') {
        if (value < 0 || value > TEST_AND_INCR_MAX) return fail(ErrorStatus.WrongValue);
        // TestAndIncr (SNMPv2-TC): a value other than the current one means another manager, or this
        // request's earlier copy, got there first.
        if (value !== this.host.spinLock()) return fail(ErrorStatus.InconsistentValue);
        plan.spinLock = true;
        continue;
      }

      if (!Object.values(UPGRADE_ACTIONS).includes(value as never)) return fail(ErrorStatus.WrongValue);
      const running = isRunning(status);
      const startsOperation = value === UPGRADE_ACTIONS.upgrade || value === UPGRADE_ACTIONS.check;
      if ((startsOperation || value === UPGRADE_ACTIONS.reload) && running) return fail(ErrorStatus.InconsistentValue);
      if (value === UPGRADE_ACTIONS.abort && !running) return fail(ErrorStatus.InconsistentValue);
      plan.action = value;
      plan.index.action = index;
    }

    return this.apply(plan);
  }

  /**
   * Applies a validated plan: settings first (the device stores them atomically), then the spin lock, then the
   * action, which reads the stored settings. When the action fails the settings are put back.
   */
  private async apply(plan: SetPlan): Promise<SetOutcome> {
    const device = this.host.device;
    const changesSettings = Object.keys(plan.settings).length > 0;
    const previous = changesSettings ? await device.settings() : undefined;

    if (changesSettings) {
      try {
        await device.updateSettings(plan.settings);
      } catch (error) {
        const index = plan.index.urlPrefix ?? plan.index.flashImage ?? 1;
        const badFlashImage = error instanceof InvalidArgumentError && plan.index.flashImage !== undefined;
        if (error instanceof UpgradeError && (error.code === 'badUrl' || error.code === 'invalidArgument')) {
          return { error: { status: ErrorStatus.WrongValue, index: badFlashImage ? plan.index.flashImage! : index } };
        }
        return { error: { status: ErrorStatus.CommitFailed, index } };
      } finally {
        this.host.invalidate();
      }
    }

    if (plan.action !== undefined && plan.action !== UPGRADE_ACTIONS.none) {
      const failure = await this.startAction(plan, previous);
      if (failure) return failure;
    }

    // A SET takes effect whole or not at all (RFC 3416), so the spin lock, a TestAndIncr of RFC 2579, advances
    // only once the action has been accepted.
    if (plan.spinLock) this.host.bumpSpinLock();
    return {};
  }

  /** Starts the SET's action; when the device rejects it, puts `previous` settings back and returns the error. */
  private async startAction(plan: SetPlan, previous: DeviceSettings | undefined): Promise<SetOutcome | undefined> {
    const device = this.host.device;
    try {
      if (plan.action === UPGRADE_ACTIONS.upgrade) device.start('upgrade');
      else if (plan.action === UPGRADE_ACTIONS.check) device.start('check');
      else if (plan.action === UPGRADE_ACTIONS.abort) device.abort();
      else {
        await device.reload();
        this.host.reloaded();
      }
      return undefined;
    } catch (error) {
      // An operation started outside this agent (the `upgrade` command on the same flash) after the check
      // above makes the device busy here. The whole SET then fails: the settings are put back and the spin lock
      // keeps its value.
      let undone = true;
      if (previous) {
        undone = await device.updateSettings(previous).then(
          () => true,
          () => false,
        );
        this.host.invalidate();
      }
      const busy = error instanceof UpgradeError && error.code === 'busy';
      let status: number = ErrorStatus.CommitFailed;
      if (busy) status = ErrorStatus.InconsistentValue;
      if (!undone) status = ErrorStatus.UndoFailed;
      return { error: { status, index: plan.index.action! } };
    } finally {
      this.host.invalidate();
    }
  }
}

/** Returns the writable scalar whose instance this OID is, or undefined. */
function writableObjectAt(oid: string): ScalarName | undefined {
  for (const [name, definition] of Object.entries(SCALARS)) {
    if (definition.access === 'read-write' && scalarInstanceOid(name as ScalarName) === oid) return name as ScalarName;
  }
  return undefined;
}

function findNext(instances: Instance[], arcs: number[]): Instance | undefined {
  return instances.find((candidate) => compareArcs(candidate.arcs, arcs) > 0);
}

/** Estimates an upper bound of a varbind list's BER size, to keep responses within a datagram. */
function encodedSize(varbinds: Varbind[]): number {
  let size = 4;
  for (const varbind of varbinds) {
    const oidSize = varbind.oid.split('.').length * 5;
    const value = varbind.value;
    let valueSize = 9;
    if (Buffer.isBuffer(value)) valueSize = value.length;
    else if (typeof value === 'string') valueSize = value.length * 5;
    size += oidSize + valueSize + 8;
  }
  return size;
}

/**
 * SNMPv1 has no exception values: RFC 3584 section 4.4 maps noSuchObject, noSuchInstance and endOfMibView to
 * a noSuchName error on the first such varbind.
 */
function toVersion1(response: Pdu, request: Pdu): void {
  const exceptions: number[] = [ObjectType.NoSuchObject, ObjectType.NoSuchInstance, ObjectType.EndOfMibView];
  const position = response.varbinds.findIndex((varbind) => exceptions.includes(varbind.type));
  if (position === -1) return;
  response.errorStatus = ErrorStatus.NoSuchName;
  response.errorIndex = position + 1;
  response.varbinds = request.varbinds.map((varbind) => ({ ...varbind }));
}

