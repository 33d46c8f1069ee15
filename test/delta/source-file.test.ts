import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { expect } from 'chai';

import { openSourceFile } from '../../delta/index.js';
import { makeTempDir } from '../support/index.js';

describe('openSourceFile', function () {
  it('reads any range as the file holds it', async function () {
    const folder = await makeTempDir();
    try {
      const path = join(folder.path, 'image.bin');
      const image = Buffer.alloc(300_000);
      for (let i = 0; i < image.length; i++) image[i] = (i * 31 + (i >> 9)) & 0xff;
      await writeFile(path, image);

      const file = await openSourceFile(path);
      try {
        expect(file.size).to.equal(image.length);
        const block = 1 << 16;
        const ranges: [number, number][] = [
          [0, 1],
          [block - 1, 2],
          [block - 10, block + 20],
          [3 * block - 5, 2 * block + 10],
          [5, 2 * block + 1],
          [image.length - 7, 7],
          [12_345, 100],
        ];
        // Twice, so the second pass is served from the cache.
        for (let pass = 0; pass < 2; pass++) {
          for (const [position, length] of ranges) {
            const read = await file.read(position, length);
            expect(read.equals(image.subarray(position, position + length)), `read ${position}+${length}`).to.equal(true);
          }
        }
        const into = Buffer.alloc(200_000);
        expect(file.readInto!(into, 10, 150_000, 1000), 'readInto count').to.equal(150_000);
        expect(into.subarray(10, 150_010).equals(image.subarray(1000, 151_000)), 'readInto bytes').to.equal(true);
        expect(file.readInto!(into, 0, 100, image.length - 40), 'readInto past the end').to.equal(40);

        expect((await file.read(image.length - 3, 10)).length, 'read past the end').to.equal(3);
        expect((await file.read(image.length, 10)).length, 'read at the end').to.equal(0);
      } finally {
        await file.close();
      }
    } finally {
      await folder.remove();
    }
  });
});
