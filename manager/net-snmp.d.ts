/**
 * The parts of the net-snmp 3.29 API the manager uses beyond those types/net-snmp.d.ts declares: requests
 * as a command generator and the notification receiver. Names and shapes follow the package's README.
 */
declare module 'net-snmp' {
  import type { RemoteInfo, Socket } from 'node:dgram';

  export interface SessionOptions {
    backoff?: number;
  }

  export interface Session {
    get(oids: string[], callback: (error: Error | null, varbinds?: Varbind[]) => void): void;
    set(varbinds: Varbind[], callback: (error: Error | null, varbinds?: Varbind[]) => void): void;
    subtree(
      oid: string,
      maxRepetitions: number,
      feedCallback: (varbinds: Varbind[]) => boolean | void,
      doneCallback: (error: Error | null) => void,
    ): void;
  }

  export function isVarbindError(varbind: Varbind): boolean;

  export interface ReceivedNotification {
    pdu: Pdu & { community?: string; user?: string; contextEngineID?: string };
    rinfo: RemoteInfo;
  }

  export interface ReceiverOptions {
    port: number;
    address?: string | null;
    transport?: 'udp4' | 'udp6';
    disableAuthorization?: boolean;
    includeAuthentication?: boolean;
    engineID?: string | Buffer;
    dgramModule?: { createSocket(type: 'udp4' | 'udp6'): Socket };
  }

  export interface Receiver {
    getAuthorizer(): Authorizer;
    close(callback?: () => void): void;
  }

  export function createReceiver(
    options: ReceiverOptions,
    callback: (error: (Error & { rinfo?: RemoteInfo }) | null, notification: ReceivedNotification | null) => void,
  ): Receiver;

  /** Thrown for an error-status in a response; `status` is the RFC 3416 error-status value. */
  export class RequestFailedError extends Error {
    status: number;
  }
  export class RequestTimedOutError extends Error {}
}
