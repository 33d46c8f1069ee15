/**
 * The delta engine as a command-line tool, so the benchmark can run it as a child process exactly like
 * bsdiff, xdelta3 and zstd, and measure its wall time and peak memory from outside.
 *
 *   node dist/bench/delta-tool.js create OLD NEW PATCH
 *   node dist/bench/delta-tool.js apply OLD PATCH OUT TARGET_SIZE
 *   node dist/bench/delta-tool.js baseline
 *
 * Each command prints one JSON line: the seconds spent in the codec itself, after Node has started.
 */
import { createHash } from 'node:crypto';
import { open, readFile, writeFile } from 'node:fs/promises';

import { codecByName, openSourceFile, readFileRange } from '../delta/index.js';

const codec = codecByName('delta');

async function create(oldPath: string, newPath: string, patchPath: string): Promise<object> {
  const [source, target] = await Promise.all([readFile(oldPath), readFile(newPath)]);
  const started = performance.now();
  const body = await codec!.encode(source, target);
  const seconds = (performance.now() - started) / 1000;
  await writeFile(patchPath, body);
  return { seconds, bytes: body.length };
}

/**
 * Applies as the device does: reads the patch with readFileRange, the source with openSourceFile, and hashes
 * each decoded piece before writing it.
 */
async function apply(oldPath: string, patchPath: string, outPath: string, targetSize: number): Promise<object> {
  const started = performance.now();
  const source = await openSourceFile(oldPath);
  const output = await open(outPath, 'w');
  const digest = createHash('sha256');
  try {
    for await (const piece of codec!.decode(readFileRange(patchPath), source, targetSize)) {
      digest.update(piece);
      await output.write(piece);
    }
  } finally {
    await output.close();
    await source.close();
  }
  const seconds = (performance.now() - started) / 1000;
  return { seconds, sha256: digest.digest('hex') };
}

async function main(args: string[]): Promise<void> {
  const [command, ...rest] = args;
  let result: object;
  if (command === 'create' && rest.length === 3) {
    result = await create(rest[0], rest[1], rest[2]);
  } else if (command === 'apply' && rest.length === 4) {
    result = await apply(rest[0], rest[1], rest[2], Number(rest[3]));
  } else if (command === 'baseline' && rest.length === 0) {
    // Node with this module loaded and nothing done: the floor that the apply's peak memory is compared to.
    result = {};
  } else {
    process.stderr.write('usage: delta-tool create OLD NEW PATCH | apply OLD PATCH OUT TARGET_SIZE | baseline\n');
    process.exitCode = 2;
    return;
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main(process.argv.slice(2));
