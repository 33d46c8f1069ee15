/**
 * The part of the net-snmp 3.29 API this product uses. The package ships no type declarations; names and
 * shapes follow its README, and the agent's request hooks follow its index.js (see agent/responder.ts).
 */
declare module 'net-snmp' {
  import type { Socket, RemoteInfo } from 'node:dgram';

  export const Version1: 0;
  export const Version2c: 1;
  export const Version3: 3;

  export const ObjectType: {
    Boolean: 1;
    Integer: 2;
    OctetString: 4;
    Null: 5;
    OID: 6;
    IpAddress: 64;
    Counter: 65;
    Gauge: 66;
    TimeTicks: 67;
    Opaque: 68;
    Counter64: 70;
    NoSuchObject: 128;
    NoSuchInstance: 129;
    EndOfMibView: 130;
  };

  export const PduType: {
    GetRequest: 160;
    GetNextRequest: 161;
    GetResponse: 162;
    SetRequest: 163;
    Trap: 164;
    GetBulkRequest: 165;
    InformRequest: 166;
    TrapV2: 167;
    Report: 168;
  };

  export const ErrorStatus: Record<string, number>;
  export const SecurityLevel: { noAuthNoPriv: 1; authNoPriv: 2; authPriv: 3 };
  export const AuthProtocols: Record<string, number>;
  export const PrivProtocols: Record<string, number>;
  export const AccessControlModelType: { None: 0; Simple: 1 };
  export const AccessLevel: { None: 0; ReadOnly: 1; ReadWrite: 2 };

  export interface Varbind {
    oid: string;
    type: number;
    value: unknown;
  }

  export interface User {
    name: string;
    level: number;
    authProtocol?: number;
    authKey?: string;
    privProtocol?: number;
    privKey?: string;
  }

  export interface Pdu {
    type: number;
    id: number;
    varbinds: Varbind[];
    nonRepeaters?: number;
    maxRepetitions?: number;
    errorStatus?: number;
    errorIndex?: number;
    contextName?: string;
    getResponsePduForRequest(): Pdu;
  }

  export interface Message {
    version: number;
    community?: string;
    user?: User;
    pdu: Pdu;
    msgSecurityParameters?: { msgAuthoritativeEngineBoots: number; msgAuthoritativeEngineTime: number };
    hasAuthentication(): boolean;
  }

  export interface Engine {
    engineID: Buffer;
    engineBoots: number;
    engineTime: number;
  }

  export interface SimpleAccessControlModel {
    setCommunityAccess(community: string, level: number): void;
    setUserAccess(userName: string, level: number): void;
    getCommunityAccessLevel(community: string): number;
    getUserAccessLevel(userName: string): number;
  }

  export interface Authorizer {
    addCommunity(community: string): void;
    addUser(user: User): void;
    getAccessControlModel(): SimpleAccessControlModel;
  }

  export interface AgentOptions {
    port?: number;
    address?: string | null;
    transport?: 'udp4' | 'udp6';
    engineID?: string | Buffer;
    disableAuthorization?: boolean;
    accessControlModelType?: number;
    dgramModule?: { createSocket(type: 'udp4' | 'udp6'): Socket };
  }

  /** Request hooks the agent calls on itself for each decoded, authenticated request. */
  export interface Agent {
    engine: Engine;
    getAuthorizer(): Authorizer;
    close(callback?: () => void): void;
    getRequest(socket: Socket, message: Message, rinfo: RemoteInfo): void;
    getNextRequest(socket: Socket, message: Message, rinfo: RemoteInfo): void;
    getBulkRequest(socket: Socket, message: Message, rinfo: RemoteInfo): void;
    setRequest(socket: Socket, message: Message, rinfo: RemoteInfo): void;
    sendResponse(socket: Socket, rinfo: RemoteInfo, message: Message, responsePdu: Pdu): void;
  }

  export function createAgent(options: AgentOptions, callback: (error: Error | null, data?: unknown) => void): Agent;

  export interface SessionOptions {
    port?: number;
    trapPort?: number;
    retries?: number;
    timeout?: number;
    transport?: 'udp4' | 'udp6';
    version?: number;
    engineID?: string | Buffer;
  }

  export interface Session {
    trap(oid: string, varbinds: Varbind[], options: { upTime?: number }, callback: (error: Error | null) => void): void;
    inform(oid: string, varbinds: Varbind[], options: { upTime?: number }, callback: (error: Error | null) => void): void;
    close(): void;
    on(event: 'error', listener: (error: Error) => void): this;
  }

  export function createSession(target: string, community: string, options?: SessionOptions): Session;
  export function createV3Session(target: string, user: User, options?: SessionOptions): Session;

  export interface ModuleStore {
    loadFromFile(fileName: string): void;
    getModule(moduleName: string): Record<string, Record<string, unknown>>;
    getProvidersForModule(moduleName: string): Array<Record<string, unknown>>;
  }

  export function createModuleStore(): ModuleStore;

  const snmp: {
    Version1: typeof Version1;
    Version2c: typeof Version2c;
    Version3: typeof Version3;
    ObjectType: typeof ObjectType;
    PduType: typeof PduType;
    ErrorStatus: typeof ErrorStatus;
    SecurityLevel: typeof SecurityLevel;
    AuthProtocols: typeof AuthProtocols;
    PrivProtocols: typeof PrivProtocols;
    AccessControlModelType: typeof AccessControlModelType;
    AccessLevel: typeof AccessLevel;
    createAgent: typeof createAgent;
    createSession: typeof createSession;
    createV3Session: typeof createV3Session;
    createModuleStore: typeof createModuleStore;
  };
  export default snmp;
}
