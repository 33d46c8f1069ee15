/**
 * The bulk upgrade runner: one state machine per device (docs/manager.md has the table), a bounded number of
 * devices in flight, and canary and max-failures rollout control. Notifications make the sender's devices
 * poll at once, and a poll timer finishes the run when no notification comes.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

import { InvalidArgumentError, type FailCause } from '../errors/index.js';
import { redactUrl } from '../transport/index.js';
import type { UpgradePhase } from '../upgrade/index.js';
import { DeviceClient, SnmpRequestError, type DeviceStatus, type HistoryRow } from './client.js';
import type { InventoryDevice, UsmCredentials } from './inventory.js';
import { formatDuration } from './table.js';
import { startTrapListener, type ReceivedTrap, type TrapListener } from './traps.js';

/** Outcome of a device's run. */
export type DeviceResult = 'upgraded' | 'skipped' | 'checked' | 'failed' | 'notStarted';

/**
 * Why: a cause the device reported (the shared failure causes), or one the manager found itself.
 * docs/manager.md explains each.
 */
export type DeviceCause =
  | FailCause
  | 'none'
  | 'alreadyAtTarget'
  | 'noResponse'
  | 'notUpgradeAgent'
  | 'setRejected'
  | 'phaseTimeout'
  | 'canaryFailed'
  | 'maxFailuresReached';

export interface DeviceReport {
  device: string;
  platform: string;
  from: string;
  to: string;
  result: DeviceResult;
  cause: DeviceCause;
  /** The device's failure reason, or the manager's, in one line. */
  reason: string;
  durationMs: number;
}

/** Position of a device in its run; the UpgradePhase values are the device's own upgradeOperStatus. */
export type DeviceState = 'queued' | 'probing' | 'starting' | UpgradePhase | 'unknown' | 'confirming' | 'done';

export type RunEvent =
  | { event: 'runStarted'; devices: number; action: 'upgrade' | 'check'; concurrency: number; canary: number; maxFailures: number | null; urlPrefix: string; traps: string | null }
  | { event: 'deviceState'; device: string; state: DeviceState; percent: number }
  | { event: 'retry'; device: string; step: string; attempt: number; reason: string }
  | { event: 'trap'; sender: string; name: string; devices: string[] }
  | { event: 'trapError'; sender: string | null; message: string }
  | ({ event: 'deviceDone' } & DeviceReport)
  | { event: 'rolloutStopped'; cause: 'canaryFailed' | 'maxFailuresReached'; failed: number; notStarted: number }
  | ({ event: 'runFinished' } & RunCounts & { durationMs: number });

export interface RunCounts {
  total: number;
  upgraded: number;
  skipped: number;
  checked: number;
  failed: number;
  notStarted: number;
}

export interface RunSummary extends RunCounts {
  durationMs: number;
  devices: DeviceReport[];
}

export interface RunTiming {
  /** Wait for one SNMP response, in milliseconds. */
  requestTimeoutMs: number;
  /** net-snmp resends of one request before it counts as unanswered. */
  requestRetries: number;
  /** Further attempts of a step (probe, start, one poll) that got no response or lost the spin lock. */
  retries: number;
  /** Time between status polls of a device in flight; a trap from the device's address polls at once. */
  pollIntervalMs: number;
  /** How long a device may stay in one phase before the manager gives up on it. */
  phaseDeadlinesMs: Record<ActivePhase, number>;
}

type ActivePhase = 'fetching' | 'verifying' | 'checkingSpace' | 'applying' | 'installing';
const ACTIVE_PHASES: readonly UpgradePhase[] = ['fetching', 'verifying', 'checkingSpace', 'applying', 'installing'];

/** Phase deadlines: fetching matches the device's own 10-minute fetch deadline; the rest is local work. */
export const DEFAULT_PHASE_DEADLINES_MS: Readonly<Record<ActivePhase, number>> = {
  fetching: 10 * 60_000,
  verifying: 5 * 60_000,
  checkingSpace: 60_000,
  applying: 10 * 60_000,
  installing: 5 * 60_000,
};

export const DEFAULT_TIMING: Readonly<Omit<RunTiming, 'pollIntervalMs'>> = {
  requestTimeoutMs: 2000,
  requestRetries: 1,
  retries: 2,
  phaseDeadlinesMs: DEFAULT_PHASE_DEADLINES_MS,
};

/** With a trap listener the timer is only a fallback, so it polls less often. */
export const DEFAULT_POLL_INTERVAL_MS = { withTraps: 5000, withoutTraps: 1000 } as const;

/** A trap makes each device of the sender poll at once, but not more often than this, so a trap storm stays cheap. */
const MIN_TRAP_POLL_GAP_MS = 200;

/** Status polls for the history row of a finished operation, which the agent writes just after the phase changes. */
const HISTORY_ATTEMPTS = 5;

export interface RunOptions {
  /** URL prefix of the patch folder, for devices without their own `url` in the inventory. */
  urlPrefix?: string;
  /** Image to upgrade from, for devices without their own `image`; unset means the running image. */
  image?: string;
  /** When set, devices already running or set to boot this version are skipped without a SET. */
  targetVersion?: string;
  /** Devices in flight at once. */
  concurrency: number;
  /** The first N devices run alone; the run stops if any of them fails. */
  canary?: number;
  /** No new device starts once more than this many have failed. */
  maxFailures?: number;
  /** Use the check action: fetch, verify and space check, nothing written to flash. */
  dryRun?: boolean;
  /** Listen for notifications here while the run lasts. */
  traps?: { host: string; port: number };
  timing?: Partial<Omit<RunTiming, 'phaseDeadlinesMs'>> & { phaseDeadlinesMs?: Partial<RunTiming['phaseDeadlinesMs']> };
  onEvent?: (event: RunEvent) => void;
}

/** Upgrades (or checks) every device of the inventory and returns one report per device, in inventory order. */
export async function runUpgrades(devices: InventoryDevice[], options: RunOptions): Promise<RunSummary> {
  const concurrency = options.concurrency;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new InvalidArgumentError(`invalid concurrency: expected an integer of at least 1, got ${concurrency}`);
  }
  const canary = options.canary ?? 0;
  if (!Number.isInteger(canary) || canary < 0) throw new InvalidArgumentError(`invalid canary count: expected an integer of at least 0, got ${canary}`);
  const maxFailures = options.maxFailures;
  if (maxFailures !== undefined && (!Number.isInteger(maxFailures) || maxFailures < 0)) {
    throw new InvalidArgumentError(`invalid max failures: expected an integer of at least 0, got ${maxFailures}`);
  }
  const missingUrl = devices.find((device) => device.url === undefined && options.urlPrefix === undefined);
  if (missingUrl) throw new InvalidArgumentError(`no URL prefix for ${missingUrl.name} (${missingUrl.source}): give --url or a url column`);

  const timing: RunTiming = {
    ...DEFAULT_TIMING,
    pollIntervalMs: options.traps ? DEFAULT_POLL_INTERVAL_MS.withTraps : DEFAULT_POLL_INTERVAL_MS.withoutTraps,
    ...options.timing,
    phaseDeadlinesMs: { ...DEFAULT_PHASE_DEADLINES_MS, ...options.timing?.phaseDeadlinesMs },
  };
  const emit = options.onEvent ?? (() => undefined);
  const action = options.dryRun ? 'check' : 'upgrade';
  const started = performance.now();
  const wakers = new Wakers(options.traps ? await resolveHosts(devices) : new Map());

  let listener: TrapListener | undefined;
  if (options.traps) {
    const users = devices.map((device) => device.credentials).filter((credentials): credentials is UsmCredentials => credentials.version === '3');
    listener = await startTrapListener({
      ...options.traps,
      users: uniqueUsers(users),
      onTrap: (trap: ReceivedTrap) => emit({ event: 'trap', sender: trap.sender, name: trap.name, devices: wakers.wake(trap.senderAddress) }),
      onError: (message, sender) => emit({ event: 'trapError', sender: sender ?? null, message }),
    });
  }

  emit({
    event: 'runStarted',
    devices: devices.length,
    action,
    concurrency,
    canary,
    maxFailures: maxFailures ?? null,
    urlPrefix: redactUrl(options.urlPrefix ?? '(per device)'),
    traps: listener ? `${listener.address.address}:${listener.address.port}` : null,
  });

  const reports = new Map<InventoryDevice, DeviceReport>();
  const finish = (device: InventoryDevice, report: DeviceReport) => {
    reports.set(device, report);
    emit({ event: 'deviceDone', ...report });
  };
  const context: DeviceContext = { action, options, timing, emit, wakers };
  const runOne = async (device: InventoryDevice) => finish(device, await runDevice(device, context));
  const failedCount = () => [...reports.values()].filter((report) => report.result === 'failed').length;
  const stopRest = (rest: InventoryDevice[], cause: 'canaryFailed' | 'maxFailuresReached') => {
    emit({ event: 'rolloutStopped', cause, failed: failedCount(), notStarted: rest.length });
    const reason = cause === 'canaryFailed' ? 'not started: a canary device failed' : `not started: more than ${maxFailures} devices failed`;
    for (const device of rest) finish(device, { device: device.name, platform: '', from: '', to: '', result: 'notStarted', cause, reason, durationMs: 0 });
  };

  try {
    for (const device of devices) emit({ event: 'deviceState', device: device.name, state: 'queued', percent: 0 });

    const canaries = devices.slice(0, canary);
    const rest = devices.slice(canaries.length);
    await runPool(canaries, Math.min(concurrency, Math.max(1, canaries.length)), runOne, () => false);
    if (failedCount() > 0) {
      stopRest(rest, 'canaryFailed');
    } else {
      const notStarted = await runPool(rest, concurrency, runOne, () => maxFailures !== undefined && failedCount() > maxFailures);
      if (notStarted.length > 0) stopRest(notStarted, 'maxFailuresReached');
    }
  } finally {
    await listener?.close();
  }

  const ordered = devices.map((device) => reports.get(device)!);
  const summary: RunSummary = { ...countResults(ordered), durationMs: Math.round(performance.now() - started), devices: ordered };
  emit({ event: 'runFinished', ...countResults(ordered), durationMs: summary.durationMs });
  return summary;
}

export function countResults(reports: DeviceReport[]): RunCounts {
  const count = (result: DeviceResult) => reports.filter((report) => report.result === result).length;
  return {
    total: reports.length,
    upgraded: count('upgraded'),
    skipped: count('skipped'),
    checked: count('checked'),
    failed: count('failed'),
    notStarted: count('notStarted'),
  };
}

/** Runs items with at most `limit` in flight; stops taking new ones once `stop` is true and returns those left. */
async function runPool<T>(items: T[], limit: number, work: (item: T) => Promise<void>, stop: () => boolean): Promise<T[]> {
  const queue = [...items];
  const workers = Array.from({ length: Math.min(limit, queue.length) }, async () => {
    while (queue.length > 0 && !stop()) await work(queue.shift()!);
  });
  await Promise.all(workers);
  return queue;
}

interface DeviceContext {
  action: 'upgrade' | 'check';
  options: RunOptions;
  timing: RunTiming;
  emit: (event: RunEvent) => void;
  wakers: Wakers;
}

/** The end of a device's run, thrown from any step to finish it with that report. */
class DeviceFinished extends Error {
  constructor(
    readonly result: DeviceResult,
    readonly deviceCause: DeviceCause,
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** Runs one device from probe to confirmed outcome; every ending, failures included, becomes its report. */
async function runDevice(device: InventoryDevice, context: DeviceContext): Promise<DeviceReport> {
  const { timing, emit } = context;
  const started = performance.now();
  const client = new DeviceClient(device, { timeoutMs: timing.requestTimeoutMs, retries: timing.requestRetries });
  const report: DeviceReport = { device: device.name, platform: '', from: '', to: '', result: 'failed', cause: 'none', reason: '', durationMs: 0 };
  let last = '';
  const setState = (state: DeviceState, percent = 0) => {
    // Polls repeat the same state; only changes become events.
    if (`${state} ${percent}` === last) return;
    last = `${state} ${percent}`;
    emit({ event: 'deviceState', device: device.name, state, percent });
  };
  const retrying = <T>(step: string, attempt: () => Promise<T>) => withRetries(device.name, step, timing.retries, emit, attempt);

  try {
    // Probe: platform and versions, and whether another operation is running.
    setState('probing');
    const facts = await retrying('probe', () => client.readFacts());
    Object.assign(report, { platform: facts.platform, from: facts.runningVersion });
    const target = context.options.targetVersion;
    if (target !== undefined && (facts.runningVersion === target || facts.bootVersion === target)) {
      report.to = target;
      const where = facts.runningVersion === target ? 'runs' : 'is set to boot';
      throw new DeviceFinished('skipped', 'alreadyAtTarget', `already at target: ${facts.platform} ${where} ${target}`);
    }
    if (ACTIVE_PHASES.includes(facts.phase as UpgradePhase)) {
      throw new DeviceFinished('failed', 'busy', `another operation is running on the device (phase ${facts.phase}); not started`);
    }

    // Start: the history index before the SET distinguishes this operation's row from older ones.
    setState('starting');
    const baseline = await retrying('history', () => client.lastHistoryIndex());
    await startOperation(client, device, context, facts.spinLock, baseline);

    // Follow: traps wake the poll early; a phase that outlasts its deadline ends the device's run.
    const status = await follow(client, device, context, setState);
    setState('confirming', 100);
    const row = await findHistoryRow(client, baseline + 1, context);
    Object.assign(report, outcomeOf(row, status, context.action));
  } catch (error) {
    if (error instanceof DeviceFinished) {
      Object.assign(report, { result: error.result, cause: error.deviceCause, reason: error.reason });
    } else if (error instanceof SnmpRequestError) {
      const cause = error.kind === 'noSuchObject' ? 'notUpgradeAgent' : 'noResponse';
      Object.assign(report, { result: 'failed', cause, reason: error.message });
    } else {
      Object.assign(report, { result: 'failed', cause: 'internalError', reason: (error as Error).message });
    }
  } finally {
    client.close();
  }
  report.durationMs = Math.round(performance.now() - started);
  setState('done', 100);
  return report;
}

/** Sets URL prefix, image, spin lock and action in one PDU; reads the spin lock again when another manager won it. */
async function startOperation(
  client: DeviceClient,
  device: InventoryDevice,
  context: DeviceContext,
  firstSpinLock: number,
  baseline: number,
): Promise<void> {
  const { timing, emit, action } = context;
  const request = {
    urlPrefix: device.url ?? context.options.urlPrefix!,
    flashImage: device.image ?? context.options.image ?? '',
    action,
    spinLock: firstSpinLock,
  };

  for (let attempt = 0; ; attempt++) {
    try {
      await client.trigger(request);
      return;
    } catch (error) {
      if (!(error instanceof SnmpRequestError)) throw error;
      const lastAttempt = attempt >= timing.retries;

      if (error.kind === 'timeout') {
        // The SET may have been applied and only its response lost: a running operation, or one that has
        // already ended and left a new history row, is then this one.
        const status = await client.readStatus().catch(() => undefined);
        if (status && ACTIVE_PHASES.includes(status.phase as UpgradePhase)) return;
        const last = await client.lastHistoryIndex().catch(() => baseline);
        if (last > baseline) return;
        if (lastAttempt) throw new DeviceFinished('failed', 'noResponse', `no response to the ${action} SET after ${attempt + 1} attempts`);
      } else if (error.status === 'InconsistentValue' && error.object === 'upgradeSpinLock') {
        // TestAndIncr (SNMPv2-TC): another manager wrote between our read and our SET.
        if (lastAttempt) throw new DeviceFinished('failed', 'busy', `the spin lock changed on every one of ${attempt + 1} attempts: another manager is writing`);
      } else if (error.status === 'InconsistentValue' && error.object === 'upgradeAction') {
        throw new DeviceFinished('failed', 'busy', 'the device rejected the action: another operation is running');
      } else if (error.status === 'WrongValue' && error.object === 'upgradeUrlPrefix') {
        throw new DeviceFinished('failed', 'badUrl', `the device rejected the URL prefix ${redactUrl(request.urlPrefix)} (wrongValue)`);
      } else if (error.status === 'WrongValue' && error.object === 'upgradeFlashImage') {
        throw new DeviceFinished('failed', 'imageNotFound', `the device rejected the image name ${JSON.stringify(request.flashImage)} (wrongValue)`);
      } else {
        throw new DeviceFinished('failed', 'setRejected', `the device rejected the ${action} SET: ${error.message}`);
      }

      emit({ event: 'retry', device: device.name, step: 'start', attempt: attempt + 1, reason: error.message });
      request.spinLock = await withRetries(device.name, 'spin lock', timing.retries, emit, () => client.readSpinLock());
    }
  }
}

/** Polls the device until its operation ends; returns the last status. */
async function follow(
  client: DeviceClient,
  device: InventoryDevice,
  context: DeviceContext,
  setState: (state: DeviceState, percent?: number) => void,
): Promise<DeviceStatus> {
  const { timing, emit, wakers } = context;
  let phase: UpgradePhase | 'unknown' = 'fetching';
  let phaseSince = performance.now();
  let misses = 0;
  setState(phase);

  for (;;) {
    await wakers.sleep(device, timing.pollIntervalMs);

    let status: DeviceStatus;
    try {
      status = await client.readStatus();
      misses = 0;
    } catch (error) {
      if (!(error instanceof SnmpRequestError) || error.kind !== 'timeout') throw error;
      misses++;
      if (misses > timing.retries) {
        throw new DeviceFinished('failed', 'noResponse', `the device stopped responding during ${phase} (${misses} polls without a response)`);
      }
      emit({ event: 'retry', device: device.name, step: 'poll', attempt: misses, reason: error.message });
      continue;
    }

    if (status.phase !== phase) {
      phase = status.phase;
      phaseSince = performance.now();
    }
    setState(phase, status.percent);
    if (isFinished(status.phase)) return status;

    const deadline = timing.phaseDeadlinesMs[phase as ActivePhase];
    if (deadline !== undefined && performance.now() - phaseSince > deadline) {
      await abortQuietly(client);
      throw new DeviceFinished('failed', 'phaseTimeout', `phase ${phase} lasted more than ${formatDuration(deadline)}; abort requested`);
    }
  }
}

/**
 * Returns true when the operation has ended. The agent enters fetching as it accepts the SET, so any later phase
 * outside ACTIVE_PHASES is an end. A check normally returns to idle, but one that finds the boot image already
 * at the target ends in installedPendingReload, as an upgrade does.
 */
function isFinished(phase: UpgradePhase | 'unknown'): boolean {
  return !ACTIVE_PHASES.includes(phase as UpgradePhase);
}

async function abortQuietly(client: DeviceClient): Promise<void> {
  try {
    const spinLock = await client.readSpinLock();
    await client.trigger({ urlPrefix: '', flashImage: '', action: 'abort', spinLock });
  } catch {
    // The device is reported as timed out either way; the abort is only a courtesy to free it sooner.
  }
}

async function findHistoryRow(client: DeviceClient, index: number, context: DeviceContext): Promise<HistoryRow | undefined> {
  for (let attempt = 0; attempt < HISTORY_ATTEMPTS; attempt++) {
    const row = await client.readHistoryRow(index).catch(() => undefined);
    if (row) return row;
    await delay(Math.min(200, context.timing.pollIntervalMs));
  }
  return undefined;
}

/** Turns the history row of the operation (or, without one, the last status) into the report's outcome. */
function outcomeOf(row: HistoryRow | undefined, status: DeviceStatus, action: 'upgrade' | 'check'): Partial<DeviceReport> {
  const to = row?.targetVersion || status.targetVersion;
  const from = row?.sourceVersion || status.sourceVersion;
  const base = { to, ...(from ? { from } : {}) };
  let result = row?.result ?? 'unknown';
  if (!row && status.phase === 'failed') result = 'failed';
  if (!row && status.phase === 'installedPendingReload') result = 'installed';

  switch (result) {
    case 'installed':
      return { ...base, result: 'upgraded', cause: 'none', reason: `installed ${to}; boots at the next reload` };
    case 'alreadyAtTarget':
      return { ...base, result: 'skipped', cause: 'alreadyAtTarget', reason: row?.failReason || `already at target ${to}` };
    case 'checked':
      return { ...base, result: 'checked', cause: 'none', reason: `check passed: the patch to ${to} applies and fits` };
    case 'failed':
    case 'aborted': {
      const cause = row?.failCause ?? status.failCause;
      return { ...base, result: 'failed', cause: cause === 'none' ? 'internalError' : cause, reason: row?.failReason || status.failReason };
    }
    default:
      return {
        ...base,
        result: 'failed',
        cause: 'internalError',
        reason: `the ${action} ended in phase ${status.phase} without a history row; the agent may have restarted`,
      };
  }
}

async function withRetries<T>(
  device: string,
  step: string,
  retries: number,
  emit: (event: RunEvent) => void,
  attempt: () => Promise<T>,
): Promise<T> {
  for (let count = 0; ; count++) {
    try {
      return await attempt();
    } catch (error) {
      const retryable = error instanceof SnmpRequestError && error.kind === 'timeout';
      if (!retryable) throw error;
      if (count >= retries) throw new DeviceFinished('failed', 'noResponse', `no response to the ${step} after ${count + 1} attempts`);
      emit({ event: 'retry', device, step, attempt: count + 1, reason: (error as Error).message });
    }
  }
}

/**
 * Sleeping pollers, by the device's address. A notification leaves an agent from its own source port, and
 * v2c notifications carry nothing else that names the device, so a trap wakes every device at its sender's
 * address. A device listed by host name sleeps under each address the name resolved to when the run started.
 * A trap that arrives while a device is polling makes its next sleep short, so it is not missed.
 */
class Wakers {
  private readonly sleepers = new Map<string, Map<string, () => void>>();
  private readonly lastTrap = new Map<string, number>();
  private readonly lastPoll = new Map<string, number>();

  constructor(private readonly resolved: ReadonlyMap<string, readonly string[]>) {}

  async sleep(device: InventoryDevice, ms: number): Promise<void> {
    const addresses = this.addressesOf(device);
    const lastPoll = this.lastPoll.get(device.name) ?? Number.NEGATIVE_INFINITY;
    const trapSincePoll = addresses.some((address) => (this.lastTrap.get(address) ?? Number.NEGATIVE_INFINITY) > lastPoll);

    await new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout;
      const done = () => {
        for (const address of addresses) this.sleepers.get(address)?.delete(device.name);
        resolve();
      };
      const schedule = (wait: number) => {
        clearTimeout(timer);
        timer = setTimeout(done, wait);
      };
      schedule(trapSincePoll ? this.gapLeft(lastPoll) : ms);
      const poke = () => schedule(this.gapLeft(lastPoll));
      for (const address of addresses) {
        let bySender = this.sleepers.get(address);
        if (!bySender) this.sleepers.set(address, (bySender = new Map()));
        bySender.set(device.name, poke);
      }
    });
    this.lastPoll.set(device.name, performance.now());
  }

  /** Wakes the devices at an address, each no sooner than MIN_TRAP_POLL_GAP_MS after its last poll; returns their names. */
  wake(address: string): string[] {
    this.lastTrap.set(address, performance.now());
    const bySender = this.sleepers.get(address);
    if (!bySender) return [];
    for (const poke of bySender.values()) poke();
    return [...bySender.keys()];
  }

  private addressesOf(device: InventoryDevice): readonly string[] {
    if (isIP(device.host)) return [device.host];
    // NOTE: a name that did not resolve at the start of the run is woken only by its poll timer.
    return this.resolved.get(device.host) ?? [];
  }

  private gapLeft(lastPoll: number): number {
    return Math.max(0, lastPoll + MIN_TRAP_POLL_GAP_MS - performance.now());
  }
}

/**
 * Resolves the host names in the inventory to their addresses, once per name, so that traps from those addresses
 * wake the devices. A name that does not resolve maps to no address; polling its device reports the failure.
 */
async function resolveHosts(devices: readonly InventoryDevice[]): Promise<Map<string, string[]>> {
  const names = [...new Set(devices.map((device) => device.host).filter((host) => !isIP(host)))];
  const resolved = await Promise.all(
    names.map((name) =>
      lookup(name, { all: true }).then(
        (entries) => entries.map((entry) => entry.address),
        () => [],
      ),
    ),
  );
  return new Map(names.map((name, index) => [name, resolved[index]!]));
}

// NOTE: net-snmp's receiver keeps one set of keys per user name, so when devices share a user name with
// different pass phrases, only the first device's notifications authenticate; the others finish by polling.
function uniqueUsers(users: UsmCredentials[]): UsmCredentials[] {
  const byName = new Map<string, UsmCredentials>();
  for (const user of users) if (!byName.has(user.user)) byName.set(user.user, user);
  return [...byName.values()];
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
