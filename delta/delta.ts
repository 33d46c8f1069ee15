import type { BodyCodec, SourceReader } from './index.js';
import { CodecError } from '../errors/index.js';
import { decodeDelta } from './delta-decode.js';
import { encodeDelta } from './delta-encode.js';

/**
 * Codec 2: the target image as a binary delta from the source image on the device (docs/delta-format.md).
 * Decoding streams: its memory use depends on the format's section limits, not on the image sizes.
 */
export const deltaCodec: BodyCodec = {
  id: 2,
  name: 'delta',
  needsSource: true,

  async encode(source: Buffer | undefined, target: Buffer): Promise<Buffer> {
    if (source === undefined) {
      throw new CodecError('delta codec needs the source image to encode against, but no source image was given');
    }
    return encodeDelta(source, target);
  },

  decode(body: AsyncIterable<Uint8Array>, source: SourceReader | undefined, targetSize: number): AsyncIterable<Buffer> {
    return decodeDelta(body, source, targetSize);
  },
};
