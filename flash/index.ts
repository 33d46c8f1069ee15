export { FlashStore, type FlashInitOptions, type FlashOpenOptions } from './store.js';
export { describeImages, type FlashSettings, type FlashState, type ImageRecord } from './nvram.js';
export type { RecoveryReport } from './recovery.js';
export type { StagingKind } from './layout.js';
export { StagingWriter } from './staging.js';
export { DEFAULT_FLASH_IO, linkExclusively, type FlashIo } from './io.js';
export { parseSize } from './size.js';
export { acquireFileLock, type FlashLock as FileLock } from './lock.js';
