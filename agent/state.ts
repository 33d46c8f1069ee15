/**
 * The agent's state file: the SNMP engine ID, snmpEngineBoots and the upgrade history. RFC 3414 section 2.2
 * needs snmpEngineBoots to grow at every start and the engine ID to stay the same, because managers localize
 * USM keys to the engine ID and reject messages from an earlier boot as replays.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';

import { InvalidArgumentError } from '../errors/index.js';
import type { UpgradeAction, UpgradeResult } from '../upgrade/index.js';

/** One finished operation, as upgradeHistoryTable shows it. */
export interface HistoryRecord {
  index: number;
  action: UpgradeAction;
  startTime: string;
  endTime: string;
  patchName: string;
  sourceVersion: string;
  targetVersion: string;
  result: UpgradeResult;
  /** Fail cause name, or 'none'. */
  failCause: string;
  failReason: string;
}

export interface AgentState {
  /** Hex. */
  engineId: string;
  engineBoots: number;
  nextHistoryIndex: number;
  history: HistoryRecord[];
}

/** RFC 3414 section 2.2.2: snmpEngineBoots stops at 2^31-1, after which the engine needs new keys. */
export const MAX_ENGINE_BOOTS = 2147483647;

/** How many finished operations upgradeHistoryTable keeps; older ones are aged out. */
export const HISTORY_LIMIT = 20;

/**
 * Reads the state file, increments snmpEngineBoots and writes it back before the agent answers anything.
 * A missing file starts a new engine with a random engine ID; a damaged one is an error, because silently
 * starting over would reset snmpEngineBoots and reopen the replay window RFC 3414 closes with it.
 */
export async function loadAndBumpState(path: string): Promise<AgentState> {
  let state: AgentState;
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new InvalidArgumentError(`cannot read agent state file ${path}: ${(error as Error).message}`, { cause: error });
    }
  }

  if (text === undefined) {
    state = { engineId: newEngineId(), engineBoots: 0, nextHistoryIndex: 1, history: [] };
  } else {
    state = parseState(text, path);
  }

  state.engineBoots = Math.min(state.engineBoots + 1, MAX_ENGINE_BOOTS);
  await saveState(path, state);
  return state;
}

/** Writes the state to a temporary file and renames it over the old one, so a crash never leaves half a file. */
export async function saveState(path: string, state: AgentState): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, path);
}

/** Appends a finished operation, dropping the oldest rows beyond HISTORY_LIMIT. */
export function appendHistory(state: AgentState, record: Omit<HistoryRecord, 'index'>): HistoryRecord {
  const row = { index: state.nextHistoryIndex, ...record };
  state.nextHistoryIndex = state.nextHistoryIndex >= 0xffffffff ? 1 : state.nextHistoryIndex + 1;
  state.history.push(row);
  state.history.splice(0, Math.max(0, state.history.length - HISTORY_LIMIT));
  return row;
}

/**
 * An RFC 3411 SnmpEngineID in the enterprise-specific format: 0x80 | enterprise number 32473 | format 5
 * (octets) | 12 random octets. Randomness keeps two agents on one host apart.
 */
function newEngineId(): string {
  const header = Buffer.alloc(5);
  header.writeUInt32BE((0x80000000 | 32473) >>> 0, 0);
  header.writeUInt8(5, 4);
  return Buffer.concat([header, randomBytes(12)]).toString('hex');
}

function parseState(text: string, path: string): AgentState {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError(`invalid agent state file ${path}: expected JSON, ${(error as Error).message}`, { cause: error });
  }

  const state = json as Partial<AgentState> | null;
  const valid =
    typeof state === 'object' &&
    state !== null &&
    typeof state.engineId === 'string' &&
    /^([0-9a-f]{2}){5,32}$/.test(state.engineId) &&
    Number.isInteger(state.engineBoots) &&
    state.engineBoots! >= 0 &&
    Number.isInteger(state.nextHistoryIndex) &&
    Array.isArray(state.history);
  if (!valid) {
    throw new InvalidArgumentError(
      `invalid agent state file ${path}: expected engineId (5 to 32 hex octets), engineBoots, nextHistoryIndex and history`,
    );
  }
  return state as AgentState;
}
