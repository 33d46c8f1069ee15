/**
 * The few net-snmp manager calls the demo makes, typed here. types/net-snmp.d.ts declares the agent side, and
 * the manager keeps its own client; the demo stays independent of both.
 */
import type { Socket } from 'node:dgram';

import netSnmp from 'net-snmp';

export interface Varbind {
  oid: string;
  type: number;
  value: unknown;
}

export interface Session {
  get(oids: string[], callback: (error: Error | null, varbinds: Varbind[]) => void): void;
  set(varbinds: Varbind[], callback: (error: Error | null, varbinds: Varbind[]) => void): void;
  close(): void;
}

export interface Receiver {
  listener: { sockets?: Record<string, Socket> };
  close(): void;
}

interface ManagerApi {
  Version2c: number;
  ObjectType: { Integer: number; OctetString: number };
  createSession(target: string, community: string, options: { port: number; version: number; timeout: number; retries: number }): Session;
  createReceiver(
    options: { port: number; address: string; transport: 'udp4'; disableAuthorization: boolean },
    callback: (error: Error | null, notification: { pdu: { varbinds: Varbind[] } }) => void,
  ): Receiver;
  isVarbindError(varbind: Varbind): boolean;
  varbindError(varbind: Varbind): string;
}

export const snmp = netSnmp as unknown as ManagerApi;
