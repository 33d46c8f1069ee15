/**
 * The device: the upgrade engine that runs one operation on a flash store, and the Device the SNMP agent serves.
 */
export * from './contract.js';
export { idleStatus, installedImageName, runUpgrade, type EngineOptions, type UpgradeRequest } from './engine.js';
export { FlashDevice, MAX_URL_PREFIX_LENGTH } from './device.js';
