/** The SNMP agent serving UPGRADE-MIB for a device; docs/agent.md describes its options and configuration. */
export { startAgent, type AgentLogEvent, type RunningAgent, type StartAgentOptions } from './agent.js';
export {
  AGENT_FLAG_DEFINITIONS,
  AUTH_PROTOCOLS,
  DEFAULT_INFORM_RETRIES,
  DEFAULT_INFORM_TIMEOUT_MS,
  PRIV_PROTOCOLS,
  loadAgentConfig,
  parseAgentConfig,
  parseAgentFlags,
  parseHostPort,
  parseTrapSink,
  type AgentConfig,
  type AgentFlags,
  type AgentNetworkOptions,
  type ListenAddress,
  type NotificationSink,
  type UsmUser,
} from './options.js';
export { toNetSnmpUser } from './users.js';
export { inspectDatagram } from './guard.js';
