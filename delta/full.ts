import { constants, brotliCompress } from 'node:zlib';
import { promisify } from 'node:util';

import { CodecError, formatBytes } from '../errors/index.js';
import { BrotliReader } from './brotli-reader.js';
import type { BodyCodec, SourceReader } from './index.js';

const compress = promisify(brotliCompress);

/** Codec 1: the whole target image, brotli-compressed. Used when no delta exists or the source is unknown. */
export const fullCodec: BodyCodec = {
  id: 1,
  name: 'full',
  needsSource: false,

  async encode(_source: Buffer | undefined, target: Buffer): Promise<Buffer> {
    return compress(target, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
        [constants.BROTLI_PARAM_LGWIN]: constants.BROTLI_MAX_WINDOW_BITS,
        [constants.BROTLI_PARAM_SIZE_HINT]: target.length,
      },
    });
  },

  decode(body: AsyncIterable<Uint8Array>, _source: SourceReader | undefined, targetSize: number): AsyncIterable<Buffer> {
    return decodeFull(body, targetSize);
  },
};

/** Size of the one buffer the decoded image is yielded from, piece by piece. */
const OUTPUT_PIECE = 1 << 18;

async function* decodeFull(compressedBody: AsyncIterable<Uint8Array>, targetSize: number): AsyncIterable<Buffer> {
  const body = new BrotliReader(compressedBody, 'full body');
  const piece = Buffer.allocUnsafe(OUTPUT_PIECE);
  let written = 0;
  try {
    for (;;) {
      // One byte more than the declared size is requested, so a body that expands past it is rejected before
      // the extra bytes reach flash.
      const length = await body.read(piece, 0, Math.min(piece.length, targetSize - written + 1));
      if (length === 0) break;
      written += length;
      if (written > targetSize) {
        throw new CodecError(`full body decodes to more than the declared target size of ${formatBytes(targetSize)}`);
      }
      yield piece.subarray(0, length);
    }

    if (written !== targetSize) {
      throw new CodecError(`full body decodes to ${formatBytes(written)}, expected the declared target size of ${formatBytes(targetSize)}`);
    }
    await body.expectEnd();
  } finally {
    await body.close();
  }
}
