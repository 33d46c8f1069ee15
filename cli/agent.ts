/** Device command: `agent --flash DIR --listen HOST:PORT ...`, the SNMP agent serving UPGRADE-MIB. */
import { join } from 'node:path';

import type { CommandModule } from 'yargs';

import { AGENT_FLAG_DEFINITIONS, parseAgentFlags, startAgent } from '../agent/index.js';
import { FlashDevice } from '../upgrade/index.js';

/** The agent's engine ID, snmpEngineBoots and history live beside the flash's NVRAM, as on a router. */
const AGENT_STATE_FILE = 'agent-state.json';

interface AgentArgs {
  flash: string;
  listen: string;
  'ro-community'?: string[];
  'rw-community'?: string[];
  'trap-sink'?: string[];
  inform: boolean;
  config?: string;
  json: boolean;
}

const agent: CommandModule<object, AgentArgs> = {
  command: 'agent',
  describe: 'Run the SNMP agent for a flash: stored URL prefix, upgrade trigger, status objects and traps',
  builder: (yargs) =>
    yargs
      .option('flash', { type: 'string', demandOption: true, describe: 'flash folder' })
      .options(AGENT_FLAG_DEFINITIONS)
      .option('json', { type: 'boolean', default: false, describe: 'log one JSON object per line' }) as never,
  handler: async (args) => {
    const network = await parseAgentFlags({
      listen: args.listen,
      roCommunity: args['ro-community'],
      rwCommunity: args['rw-community'],
      trapSink: args['trap-sink'],
      inform: args.inform,
      config: args.config,
    });
    const device = await FlashDevice.open(args.flash);
    const log = (fields: Record<string, unknown>) => {
      const line = args.json ? JSON.stringify({ time: new Date().toISOString(), ...fields }) : Object.entries(fields).map(([key, value]) => `${key}=${String(value)}`).join(' ');
      process.stderr.write(`${line}\n`);
    };

    device.on('started', (status) => log({ event: 'upgradeStarted', action: status.action }));
    device.on('finished', (outcome) =>
      log({ event: 'upgradeFinished', result: outcome.result, patch: outcome.patchName, from: outcome.sourceVersion, to: outcome.targetVersion, cause: outcome.failCause ?? 'none', reason: outcome.failReason }),
    );
    const running = await startAgent({
      ...network,
      device,
      stateFile: join(args.flash, AGENT_STATE_FILE),
      log: (event) => log({ ...event }),
    });
    const { address, port } = running.address;
    log({ event: 'agentStarted', listen: address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`, engineBoots: running.engineBoots, flash: args.flash });

    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });

    // An upgrade in flight is stopped at its next safe point so that staging is cleaned before exit.
    if (device.abort()) await device.settled();
    await running.close();
    log({ event: 'agentStopped' });
  },
};

export const agentCommands: CommandModule[] = [agent as unknown as CommandModule];
