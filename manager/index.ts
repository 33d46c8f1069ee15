/**
 * The management station's bulk upgrades: the device inventory, the runner that upgrades a fleet over SNMP
 * with rollout control, the fleet status read and the notification listener. docs/manager.md describes them.
 */
export {
  INVENTORY_COLUMNS,
  deviceName,
  loadInventory,
  parseCsvInventory,
  parseJsonInventory,
  type Credentials,
  type InventoryDevice,
  type UsmCredentials,
} from './inventory.js';
export {
  DEFAULT_PHASE_DEADLINES_MS,
  DEFAULT_POLL_INTERVAL_MS,
  DEFAULT_TIMING,
  countResults,
  runUpgrades,
  type DeviceCause,
  type DeviceReport,
  type DeviceResult,
  type DeviceState,
  type RunCounts,
  type RunEvent,
  type RunOptions,
  type RunSummary,
  type RunTiming,
} from './runner.js';
export { readFleetStatus, type DeviceStatusRow, type StatusOptions } from './status.js';
export { decodeNotification, startTrapListener, type ReceivedTrap, type TrapListener, type TrapListenerOptions } from './traps.js';
export { formatDuration, formatTable } from './table.js';
export { ProgressView } from './progress.js';
