import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';

import { openSourceFile } from '../delta/index.js';
import { InvalidArgumentError } from '../errors/index.js';
import type { ParsedPatch } from './format.js';
import { checkSource, checkTarget, codecOf, decodeBody, readPatchHead, sha256File, verifyBodyDigest } from './patch.js';
import { verifySignatures, type TrustSet } from './signatures.js';

export interface VerifyReport {
  patch: ParsedPatch & { fileSize: number };
  acceptedKeyIds: string[];
  /** Set when a source image was given: the decoded target's digest, equal to the header's. */
  targetSha256?: string;
}

/**
 * Verifies a patch file in the order a device does: format, signatures, codec, body digest and, when a source
 * image is given, its digest and the digest of the image that applying the body yields. Throws at the first
 * failure with its cause code.
 */
export async function verifyPatchFile(path: string, trust: TrustSet, options: { sourcePath?: string } = {}): Promise<VerifyReport> {
  const patch = await readPatchHead(path);
  const acceptedKeyIds = verifySignatures(patch, trust);
  codecOf(patch.header);
  await verifyBodyDigest(path, patch);
  if (options.sourcePath === undefined) return { patch, acceptedKeyIds };

  const sourceSize = await fileSize(options.sourcePath);
  checkSource(patch.header, { size: sourceSize, sha256: await sha256File(options.sourcePath), label: options.sourcePath });

  const source = await openSourceFile(options.sourcePath);
  try {
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of decodeBody(path, patch, source)) {
      hash.update(chunk);
      size += chunk.length;
    }
    const targetSha256 = hash.digest('hex');
    checkTarget(patch.header, { size, sha256: targetSha256 });
    return { patch, acceptedKeyIds, targetSha256 };
  } finally {
    await source.close();
  }
}

async function fileSize(path: string): Promise<number> {
  const info = await stat(path).catch((error: unknown) => {
    throw new InvalidArgumentError(`cannot read source image ${path}: ${(error as Error).message}`, { cause: error });
  });
  if (!info.isFile()) throw new InvalidArgumentError(`invalid source image ${path}: expected a file, got a folder or another kind of entry`);
  return info.size;
}
