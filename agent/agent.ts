/**
 * startAgent: the SNMP agent of a device. net-snmp's Agent provides the message layer (BER, communities, USM
 * authentication and privacy, discovery reports). responder.ts builds the responses, guard.ts checks each
 * datagram first, and the device's events become notifications and history rows.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { randomInt } from 'node:crypto';
import { hostname } from 'node:os';

import snmp, { type Agent, type Message } from 'net-snmp';

import { InvalidArgumentError } from '../errors/index.js';
import type { Device, DeviceInventory, DeviceSettings, UpgradeOutcome, UpgradeStatus } from '../upgrade/index.js';
import { inspectDatagram } from './guard.js';
import { Notifier, type NotificationFacts, type NotificationResult } from './notifier.js';
import { COUNTERS, type CounterName, type SystemInfo, type ViewSnapshot } from './objects.js';
import type { AgentNetworkOptions } from './options.js';
import { Responder } from './responder.js';
import { appendHistory, loadAndBumpState, saveState, type AgentState } from './state.js';
import { toNetSnmpUser } from './users.js';

export interface StartAgentOptions extends AgentNetworkOptions {
  device: Device;
  /** JSON file holding the engine ID, snmpEngineBoots and the history; created when missing. */
  stateFile: string;
  system?: Partial<SystemInfo>;
  /** Receives one event per dropped packet, failed notification or internal error; silent when absent. */
  log?: (event: AgentLogEvent) => void;
}

export interface AgentLogEvent {
  event: 'packetDropped' | 'notificationSent' | 'notificationFailed' | 'requestFailed' | 'stateSaveFailed' | 'reloaded';
  message: string;
  peer?: string;
}

export interface RunningAgent {
  address: { address: string; port: number; family: string };
  engineId: string;
  engineBoots: number;
  /** Resolves when every notification sent so far has been sent, acknowledged or given up. */
  notificationsSettled(): Promise<void>;
  close(): Promise<void>;
}

/** RFC 3414 section 3.2 step 7b: the USM time window. */
const TIME_WINDOW_SECONDS = 150;

/** How long a read of the device's inventory or settings is reused, so one walk does not reread the flash. */
const CACHE_MS = 1000;

/** The SNMPv2-MIB snmp group counters. */
type Counters = Record<CounterName, number>;

/** Starts the agent; resolves once its socket is bound. */
export async function startAgent(options: StartAgentOptions): Promise<RunningAgent> {
  const { device } = options;
  const log = options.log ?? (() => undefined);
  const state = await loadAndBumpState(options.stateFile);
  const startedAt = performance.now();
  const counters = Object.fromEntries(Object.keys(COUNTERS).map((name) => [name, 0])) as Counters;
  const system: SystemInfo = {
    sysDescr: 'snmp-upgrade agent: signed core image upgrades over SNMP (UPGRADE-MIB)',
    sysContact: '',
    sysName: hostname(),
    sysLocation: '',
    ...options.system,
  };

  // net-snmp creates its socket through this dgram module, so the datagram check runs before net-snmp decodes.
  let socket: Socket | undefined;
  const peer = (rinfo: RemoteInfo) => `${rinfo.address}:${rinfo.port}`;
  const dgramModule = {
    createSocket(type: 'udp4' | 'udp6'): Socket {
      const created = createSocket(type);
      const on = created.on.bind(created);
      created.on = ((event: string, listener: (...args: unknown[]) => void) => {
        if (event !== 'message') return on(event, listener);
        return on('message', (buffer: Buffer, rinfo: RemoteInfo) => {
          counters.snmpInPkts++;
          const verdict = inspectDatagram(buffer);
          if (!verdict.accept) {
            counters[verdict.counter]++;
            log({ event: 'packetDropped', message: `dropped a malformed datagram: ${verdict.reason}`, peer: peer(rinfo) });
            return;
          }
          try {
            listener(buffer, rinfo);
          } catch (error) {
            counters.snmpInASNParseErrs++;
            log({ event: 'packetDropped', message: `dropped a datagram net-snmp could not decode: ${(error as Error).message}`, peer: peer(rinfo) });
          }
        });
      }) as Socket['on'];
      socket = created;
      return created;
    },
  };

  const transport = options.listen.host.includes(':') ? 'udp6' : 'udp4';
  const agent: Agent = snmp.createAgent(
    {
      port: options.listen.port,
      address: options.listen.host,
      transport,
      engineID: state.engineId,
      accessControlModelType: snmp.AccessControlModelType.None,
      dgramModule,
    },
    (error) => {
      if (!error) return;
      counters.snmpSilentDrops++;
      const rinfo = (error as Error & { rinfo?: RemoteInfo }).rinfo;
      log({ event: 'packetDropped', message: error.message, peer: rinfo ? peer(rinfo) : undefined });
    },
  );
  // RFC 3414 section 2.2: the engine's boots come from the state file and its time counts from this start.
  agent.engine.engineBoots = state.engineBoots;
  Object.defineProperty(agent.engine, 'engineTime', { get: () => Math.floor((performance.now() - startedAt) / 1000) });

  const authorizer = agent.getAuthorizer();
  for (const community of [...options.roCommunities, ...options.rwCommunities]) authorizer.addCommunity(community);
  for (const user of options.users) authorizer.addUser(toNetSnmpUser(user));
  const usersByName = new Map(options.users.map((user) => [user.name, user]));

  const cache = new DeviceCache(device);
  // TestAndIncr (SNMPv2-TC): after a restart the old value is unknown, so the lock starts pseudo-random.
  let spinLock = randomInt(0, 2 ** 31 - 1);
  const upTime = () => Math.floor((performance.now() - startedAt) / 10);

  const responder = new Responder({
    device,
    snapshot: async (): Promise<ViewSnapshot> => ({
      status: device.status(),
      inventory: await cache.inventory(),
      settings: await cache.settings(),
      spinLock,
      history: state.history,
      counters,
      engineId: Buffer.from(state.engineId, 'hex'),
      engineBoots: state.engineBoots,
      engineTime: agent.engine.engineTime,
      upTime: upTime(),
      system,
    }),
    mayWrite: (message) =>
      message.version === snmp.Version3
        ? usersByName.get(message.user?.name ?? '')?.write === true
        : options.rwCommunities.includes(message.community ?? ''),
    spinLock: () => spinLock,
    bumpSpinLock: () => {
      spinLock = spinLock >= 2 ** 31 - 1 ? 0 : spinLock + 1;
    },
    invalidate: () => cache.invalidate(),
    history: () => state.history,
    reloaded: () => {
      cache.invalidate();
      cache.inventory().then(
        (inventory) => log({ event: 'reloaded', message: `reloaded by a SET: ${inventory.runningImage} (version ${inventory.runningVersion}) now runs` }),
        (error: Error) => log({ event: 'reloaded', message: `reloaded by a SET; reading the running image failed: ${error.message}` }),
      );
    },
  });

  const serve = (requestSocket: Socket, message: Message, rinfo: RemoteInfo) => {
    // net-snmp lets a v3 request with an empty user name and no authentication through as an anonymous user.
    if (message.version === snmp.Version3 && !usersByName.has(message.user?.name ?? '')) {
      counters.snmpSilentDrops++;
      log({ event: 'packetDropped', message: `dropped a request from unknown SNMPv3 user ${JSON.stringify(message.user?.name ?? '')}`, peer: peer(rinfo) });
      return;
    }
    // net-snmp 3.29 does not check the time window of authenticated v3 requests, so a captured request could
    // be replayed later (RFC 3414 section 3.2 step 7).
    // NOTE: RFC 3414 responds to such a request with an authenticated usmStatsNotInTimeWindows report, which
    // net-snmp cannot send; the request is dropped instead, so a manager with a stale clock times out.
    if (message.version === snmp.Version3 && message.hasAuthentication() && !inTimeWindow(message, agent.engine)) {
      counters.snmpSilentDrops++;
      log({ event: 'packetDropped', message: 'dropped an SNMPv3 request outside the time window', peer: peer(rinfo) });
      return;
    }
    // A failure here, in the responder or in net-snmp's encoder, drops this request only.
    responder
      .respond(message)
      .then((response) => agent.sendResponse(requestSocket, rinfo, message, response))
      .catch((error: Error) => {
        counters.snmpSilentDrops++;
        log({ event: 'requestFailed', message: `failed to respond to a request: ${error.message}`, peer: peer(rinfo) });
      });
  };
  agent.getRequest = serve;
  agent.getNextRequest = serve;
  agent.getBulkRequest = serve;
  agent.setRequest = serve;

  // The agent is configured before the first datagram can be handled, which happens only after this await.
  try {
    await waitUntilBound(socket!, options.listen);
  } catch (error) {
    try {
      agent.close();
    } catch {
      // Node may already have closed the socket that failed to bind.
    }
    throw error;
  }

  const notifier = new Notifier(
    options.sinks,
    options.users,
    {
      engineId: Buffer.from(state.engineId, 'hex'),
      informRetries: options.informRetries,
      informTimeoutMs: options.informTimeoutMs,
      upTime,
    },
    (result: NotificationResult) =>
      result.error
        ? log({ event: 'notificationFailed', message: `notification to ${result.sink} failed: ${result.error.message}`, peer: result.sink })
        : log({ event: 'notificationSent', message: `notification sent to ${result.sink}`, peer: result.sink }),
  );
  const pending = new Set<Promise<unknown>>();
  const track = (promise: Promise<unknown>) => {
    pending.add(promise);
    void promise.finally(() => pending.delete(promise));
  };

  const onStarted = (status: UpgradeStatus) => {
    cache.invalidate();
    track(notifier.send('upgradeStarted', factsFromStatus(status)));
  };
  const onFinished = (outcome: UpgradeOutcome) => {
    cache.invalidate();
    recordHistory(state, outcome);
    track(
      saveState(options.stateFile, state).catch((error: Error) =>
        log({ event: 'stateSaveFailed', message: `failed to save ${options.stateFile}: ${error.message}` }),
      ),
    );
    const failed = outcome.result === 'failed' || outcome.result === 'aborted';
    track(notifier.send(failed ? 'upgradeFailed' : 'upgradeCompleted', factsFromOutcome(outcome, device.status())));
  };
  device.on('started', onStarted);
  device.on('finished', onFinished);

  const bound = socket!.address();
  return {
    address: { address: bound.address, port: bound.port, family: bound.family },
    engineId: state.engineId,
    engineBoots: state.engineBoots,
    notificationsSettled: async () => {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
    close: async () => {
      device.off('started', onStarted);
      device.off('finished', onFinished);
      await new Promise<void>((resolve) => agent.close(() => resolve()));
      await Promise.allSettled([...pending]);
      notifier.close();
    },
  };
}

/** RFC 3414 section 3.2 step 7: the request's boots must match and its time be within 150 seconds of ours. */
function inTimeWindow(message: Message, engine: { engineBoots: number; engineTime: number }): boolean {
  const params = message.msgSecurityParameters;
  if (!params) return false;
  if (params.msgAuthoritativeEngineBoots !== engine.engineBoots) return false;
  return Math.abs(params.msgAuthoritativeEngineTime - engine.engineTime) <= TIME_WINDOW_SECONDS;
}

function waitUntilBound(socket: Socket, listen: { host: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => {
      socket.off('listening', onListening);
      reject(new InvalidArgumentError(`cannot listen on ${listen.host}:${listen.port}: ${error.message}`, { cause: error }));
    };
    const onListening = () => {
      socket.off('error', onError);
      resolve();
    };
    socket.once('error', onError);
    socket.once('listening', onListening);
  });
}

function factsFromStatus(status: UpgradeStatus): NotificationFacts {
  return {
    patchName: status.patchName,
    sourceVersion: status.sourceVersion,
    targetVersion: status.targetVersion,
    phase: status.phase,
    failCause: status.failCause,
    failReason: status.failReason,
    startTime: status.startTime,
    endTime: status.endTime,
  };
}

function factsFromOutcome(outcome: UpgradeOutcome, status: UpgradeStatus): NotificationFacts {
  return {
    patchName: outcome.patchName,
    sourceVersion: outcome.sourceVersion,
    targetVersion: outcome.targetVersion,
    phase: status.phase,
    failCause: outcome.failCause,
    failReason: outcome.failReason,
    startTime: outcome.startTime,
    endTime: outcome.endTime,
  };
}

function recordHistory(state: AgentState, outcome: UpgradeOutcome): void {
  appendHistory(state, {
    action: outcome.action,
    startTime: outcome.startTime.toISOString(),
    endTime: outcome.endTime.toISOString(),
    patchName: outcome.patchName,
    sourceVersion: outcome.sourceVersion,
    targetVersion: outcome.targetVersion,
    result: outcome.result,
    failCause: outcome.failCause ?? 'none',
    failReason: outcome.failReason,
  });
}

/** Short-lived copies of the device's inventory and settings; a failed read is not cached. */
class DeviceCache {
  private inventoryRead: { at: number; value: Promise<DeviceInventory> } | undefined;
  private settingsRead: { at: number; value: Promise<DeviceSettings> } | undefined;

  constructor(private readonly device: Device) {}

  inventory(): Promise<DeviceInventory> {
    if (!this.inventoryRead || performance.now() - this.inventoryRead.at > CACHE_MS) {
      const value = this.device.inventory();
      this.inventoryRead = { at: performance.now(), value };
      value.catch(() => (this.inventoryRead = undefined));
    }
    return this.inventoryRead.value;
  }

  settings(): Promise<DeviceSettings> {
    if (!this.settingsRead || performance.now() - this.settingsRead.at > CACHE_MS) {
      const value = this.device.settings();
      this.settingsRead = { at: performance.now(), value };
      value.catch(() => (this.settingsRead = undefined));
    }
    return this.settingsRead.value;
  }

  invalidate(): void {
    this.inventoryRead = undefined;
    this.settingsRead = undefined;
  }
}
