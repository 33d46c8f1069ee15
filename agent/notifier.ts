/**
 * Sends upgradeStarted, upgradeCompleted and upgradeFailed to the configured sinks, as SNMPv2c or SNMPv3
 * traps or informs. Informs are retried a bounded number of times and then given up, so a sink that is down
 * never holds back the agent or the upgrade.
 */
import snmp, { type Session, type Varbind } from 'net-snmp';

import { failCauseNumber, type FailCause } from '../errors/index.js';
import { NOTIFICATION_OBJECTS, OPER_STATUS, encodeDateAndTime, notificationOid, scalarInstanceOid, type NotificationName } from '../mib/index.js';
import type { UpgradePhase } from '../upgrade/index.js';
import { displayString } from './objects.js';
import { toNetSnmpUser } from './users.js';
import type { NotificationSink, UsmUser } from './options.js';

/** The facts about an operation that a notification reports. */
export interface NotificationFacts {
  patchName: string;
  sourceVersion: string;
  targetVersion: string;
  phase: UpgradePhase;
  failCause: FailCause | undefined;
  failReason: string;
  startTime: Date | undefined;
  endTime: Date | undefined;
}

export interface NotificationResult {
  sink: string;
  error?: Error;
}

/** Builds the varbinds of a notification, in the order the MIB's OBJECTS clause lists them. */
export function notificationVarbinds(facts: NotificationFacts): Varbind[] {
  const values: Record<(typeof NOTIFICATION_OBJECTS)[number], Varbind['value']> = {
    upgradePatchName: displayString(facts.patchName),
    upgradeSourceVersion: displayString(facts.sourceVersion),
    upgradeTargetVersion: displayString(facts.targetVersion),
    upgradeOperStatus: OPER_STATUS[facts.phase],
    upgradeFailCause: failCauseNumber(facts.failCause ?? 'none'),
    upgradeFailReason: displayString(facts.failReason),
    upgradeStartTime: encodeDateAndTime(facts.startTime),
    upgradeEndTime: encodeDateAndTime(facts.endTime),
  };
  return NOTIFICATION_OBJECTS.map((name) => ({
    oid: scalarInstanceOid(name),
    type: typeof values[name] === 'number' ? snmp.ObjectType.Integer : snmp.ObjectType.OctetString,
    value: values[name],
  }));
}

export class Notifier {
  private readonly sessions: Array<{ sink: NotificationSink; label: string; session: Session; queue: Promise<unknown> }> = [];

  constructor(
    sinks: NotificationSink[],
    users: UsmUser[],
    options: { engineId: Buffer; informRetries: number; informTimeoutMs: number; upTime: () => number },
    private readonly onResult: (result: NotificationResult) => void,
  ) {
    this.upTime = options.upTime;
    for (const sink of sinks) {
      const sessionOptions = {
        // net-snmp 3.29 sends an SNMPv3 inform to `port` instead of `trapPort` once it has discovered the
        // receiver's engine, so both name the sink. These sessions send nothing else.
        port: sink.port,
        trapPort: sink.port,
        transport: sink.host.includes(':') ? ('udp6' as const) : ('udp4' as const),
        retries: options.informRetries,
        timeout: options.informTimeoutMs,
      };
      const label = `${sink.host.includes(':') ? `[${sink.host}]` : sink.host}:${sink.port}`;
      let session: Session;
      if (sink.version === '2c') {
        session = snmp.createSession(sink.host, sink.community, { ...sessionOptions, version: snmp.Version2c });
      } else {
        const user = users.find((candidate) => candidate.name === sink.user)!;
        // A trap's authoritative engine is the sender (RFC 3414 section 1.5.2), so traps carry this agent's
        // engine ID; for informs the library discovers the receiver's engine.
        session = snmp.createV3Session(sink.host, toNetSnmpUser(user), {
          ...sessionOptions,
          version: snmp.Version3,
          engineID: options.engineId,
        });
      }
      session.on('error', (error) => this.onResult({ sink: label, error }));
      this.sessions.push({ sink, label, session, queue: Promise.resolve() });
    }
  }

  private readonly upTime: () => number;

  /**
   * Sends a notification to every sink; resolves once each trap is sent or each inform is acknowledged or
   * given up. Notifications to one sink go out one after another, so a sink receives them in the order of
   * the events and an SNMPv3 inform never starts a second engine discovery while one is running.
   */
  async send(name: NotificationName, facts: NotificationFacts): Promise<NotificationResult[]> {
    const varbinds = notificationVarbinds(facts);
    const oid = notificationOid(name);
    const upTime = this.upTime();
    return Promise.all(
      this.sessions.map((entry) => {
        const sent = entry.queue.then(() => this.sendOne(entry, oid, varbinds, upTime));
        entry.queue = sent;
        return sent;
      }),
    );
  }

  private sendOne(
    { sink, label, session }: { sink: NotificationSink; label: string; session: Session },
    oid: string,
    varbinds: Varbind[],
    upTime: number,
  ): Promise<NotificationResult> {
    return new Promise<NotificationResult>((resolve) => {
      const done = (error: Error | null) => {
        const result = error ? { sink: label, error } : { sink: label };
        this.onResult(result);
        resolve(result);
      };
      try {
        if (sink.inform) session.inform(oid, varbinds, { upTime }, done);
        else session.trap(oid, varbinds, { upTime }, done);
      } catch (error) {
        done(error as Error);
      }
    });
  }

  close(): void {
    for (const { session } of this.sessions) session.close();
  }
}
