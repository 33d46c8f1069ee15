import { join } from 'node:path';

import { validateIdentifier } from '../verifier/index.js';
import { LOCK_FILE } from './lock.js';
import { NVRAM_FILE } from './nvram.js';

export type StagingKind = 'patch' | 'image';

/** Paths inside a flash directory; see docs/flash.md for the layout. */
export class FlashLayout {
  readonly nvramPath: string;
  readonly imagesDir: string;
  readonly stagingDir: string;
  readonly lockPath: string;

  constructor(readonly dir: string) {
    this.nvramPath = join(dir, NVRAM_FILE);
    this.imagesDir = join(dir, 'images');
    this.stagingDir = join(dir, 'staging');
    this.lockPath = join(dir, LOCK_FILE);
  }

  /** Path of an image; the name is checked first, so '../x', '/abs' and 'a/b' never leave images/. */
  imagePath(name: string): string {
    validateIdentifier('image name', name);
    return join(this.imagesDir, name);
  }

  stagingPath(kind: StagingKind): string {
    return join(this.stagingDir, `${kind}.part`);
  }
}
