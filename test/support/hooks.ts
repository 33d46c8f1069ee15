/**
 * Mocha root hooks, loaded through .mocharc.json before any test file runs.
 */
import { existsSync } from 'node:fs';

import { FIRMWARE_DIR } from './index.js';

export const mochaHooks = {
  /** Stops the run with one clear error when the real firmware pairs that many tests read are missing. */
  beforeAll(): void {
    if (!existsSync(FIRMWARE_DIR)) {
      throw new Error(
        `the tests read real firmware pairs from ${FIRMWARE_DIR}, which does not exist: ` +
          'clone the repository into a folder beside the shared folder, so that ../shared/firmware holds them',
      );
    }
  },
};
