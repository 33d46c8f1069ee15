import { open } from 'node:fs/promises';

import type { SourceReader } from './index.js';

/**
 * Opens a source image for positioned reads. NOTE: no read cache yet; the delta codec is expected to add one
 * sized for the device's RAM budget.
 */
export async function openSourceFile(path: string): Promise<SourceReader & { close(): Promise<void> }> {
  const handle = await open(path, 'r');
  const { size } = await handle.stat();
  return {
    size,
    async read(position: number, length: number): Promise<Buffer> {
      const buffer = Buffer.alloc(length);
      let filled = 0;
      while (filled < length) {
        const { bytesRead } = await handle.read(buffer, filled, length - filled, position + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return filled === length ? buffer : buffer.subarray(0, filled);
    },
    close: () => handle.close(),
  };
}
