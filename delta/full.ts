import { constants, createBrotliDecompress, brotliCompress } from 'node:zlib';
import { promisify } from 'node:util';

import { CodecError } from '../errors/index.js';
import { feedChunk } from './delta-decode.js';
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

async function* decodeFull(body: AsyncIterable<Uint8Array>, targetSize: number): AsyncIterable<Buffer> {
  const decompressor = createBrotliDecompress();
  const feeding = (async () => {
    try {
      for await (const chunk of body) {
        if (decompressor.destroyed) break;
        await feedChunk(decompressor, chunk);
      }
      decompressor.end();
    } catch (error) {
      decompressor.destroy(error as Error);
    }
  })();

  let written = 0;
  try {
    for await (const chunk of decompressor as AsyncIterable<Buffer>) {
      written += chunk.length;
      // A body that expands past the declared size is refused before the extra bytes reach flash.
      if (written > targetSize) {
        throw new CodecError(`full body decodes to more than the declared target size of ${targetSize} bytes`);
      }
      yield chunk;
    }
  } catch (error) {
    if (error instanceof CodecError) throw error;
    throw new CodecError(`full body is not a valid brotli stream: ${(error as Error).message}`, { cause: error });
  } finally {
    decompressor.destroy();
    await feeding;
  }

  if (written !== targetSize) {
    throw new CodecError(`full body decodes to ${written} bytes, expected the declared target size of ${targetSize} bytes`);
  }
}
