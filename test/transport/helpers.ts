import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { once } from 'node:events';

/** Awaits a promise that must reject with the given class and a message matching `message`. */
export async function expectRejection(
  promise: Promise<unknown>,
  errorClass: new (...args: never[]) => Error,
  message: RegExp,
): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    expect(error, String(error)).to.be.instanceOf(errorClass);
    expect((error as Error).message).to.match(message);
    return error as Error;
  }
  expect.fail(`expected a ${errorClass.name}, the promise resolved`);
}

/** Writes `bytes` random bytes to `path` in 1 MiB pieces, returning their SHA-256. */
export async function writeRandomFile(path: string, bytes: number): Promise<string> {
  const hash = createHash('sha256');
  const stream = createWriteStream(path);
  for (let written = 0; written < bytes; ) {
    const piece = randomBytes(Math.min(1024 * 1024, bytes - written));
    hash.update(piece);
    if (!stream.write(piece)) await once(stream, 'drain');
    written += piece.length;
  }
  stream.end();
  await once(stream, 'finish');
  return hash.digest('hex');
}

export async function sha256File(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}
