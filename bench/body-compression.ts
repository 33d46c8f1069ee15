/**
 * Compresses the engine's uncompressed delta body of the esbuild pair in the ways docs/benchmarks.md compares.
 * Those are brotli settings, zstd, bzip2 and xz, three separate streams instead of one, and the bytewise
 * differences without run-length coding. The turbo pair's body adds figures for the brotli window.
 *
 *   npm run bench:body
 *
 * It fetches the pairs as `npm run bench:delta` does, unless they are in bench/data already. Times are wall
 * seconds of one run.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { brotliCompressSync, brotliDecompressSync, constants } from 'node:zlib';

import { codecByName } from '../delta/index.js';
import { packedPairs, type Pair } from './packed-pairs.js';

interface Result {
  name: string;
  bytes: number;
  seconds: number;
}

/** Returns the uncompressed delta body that the engine writes for the pair. */
async function rawBody(pair: Pair): Promise<Buffer> {
  const [source, target] = await Promise.all([readFile(pair.oldPath), readFile(pair.newPath)]);
  return brotliDecompressSync(await codecByName('delta')!.encode(source, target));
}

function brotli(body: Buffer, quality: number, windowBits: number, blockBits?: number): Result {
  const params: Record<number, number> = { [constants.BROTLI_PARAM_QUALITY]: quality, [constants.BROTLI_PARAM_LGWIN]: windowBits };
  if (blockBits !== undefined) params[constants.BROTLI_PARAM_LGBLOCK] = blockBits;
  const started = performance.now();
  const bytes = brotliCompressSync(body, { params }).length;
  const blocks = blockBits === undefined ? 'default blocks' : `blocks of 2^${blockBits}`;
  return { name: `brotli quality ${quality}, window 2^${windowBits}, ${blocks}`, bytes, seconds: (performance.now() - started) / 1000 };
}

/** Runs a compressor that reads standard input and writes standard output, and returns its output size. */
function tool(name: string, command: string, args: string[], body: Buffer): Promise<Result> {
  return new Promise((resolveRun, reject) => {
    const started = performance.now();
    const child = execFile(command, args, { encoding: 'buffer', maxBuffer: 64 << 20 }, (error, stdout) => {
      if (error) reject(new Error(`${command} failed: ${error.message}`));
      else resolveRun({ name, bytes: stdout.length, seconds: (performance.now() - started) / 1000 });
    });
    child.stdin!.end(body);
  });
}

/** Reads an unsigned LEB128 varint at `at`, and returns the value and the offset after it. */
function varint(bytes: Buffer, at: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (;;) {
    const byte = bytes[at++];
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return [value, at];
    scale *= 128;
  }
}

/**
 * Splits the body into its three kinds of content, and expands the difference tokens into the bytewise
 * differences of every copied byte, zeros included.
 */
function splitBody(body: Buffer): { controls: Buffer; differences: Buffer; literals: Buffer; expanded: Buffer } {
  const controls: Buffer[] = [];
  const differences: Buffer[] = [];
  const literals: Buffer[] = [];
  const expanded: Buffer[] = [];
  for (let at = 0; at < body.length; ) {
    const lengths: number[] = [];
    for (let field = 0; field < 4; field++) {
      let value: number;
      [value, at] = varint(body, at);
      lengths.push(value);
    }
    const [, controlsLength, differencesLength, literalsLength] = lengths;
    const sectionControls = body.subarray(at, at + controlsLength);
    const sectionDifferences = body.subarray(at + controlsLength, at + controlsLength + differencesLength);
    controls.push(sectionControls);
    differences.push(sectionDifferences);
    literals.push(body.subarray(at + controlsLength + differencesLength, at + controlsLength + differencesLength + literalsLength));
    at += controlsLength + differencesLength + literalsLength;

    // Each entry is seek, copy length and literal length. Each copy's tokens are (run, byte) pairs and a final run.
    let token = 0;
    for (let entry = 0; entry < sectionControls.length; ) {
      let copy: number;
      [, entry] = varint(sectionControls, entry);
      [copy, entry] = varint(sectionControls, entry);
      [, entry] = varint(sectionControls, entry);
      if (copy === 0) continue;
      const bytes = Buffer.alloc(copy);
      for (let position = 0; ; ) {
        let run: number;
        [run, token] = varint(sectionDifferences, token);
        position += run;
        if (position === copy) break;
        bytes[position++] = sectionDifferences[token++];
      }
      expanded.push(bytes);
    }
  }
  return {
    controls: Buffer.concat(controls),
    differences: Buffer.concat(differences),
    literals: Buffer.concat(literals),
    expanded: Buffer.concat(expanded),
  };
}

function print(title: string, results: Result[]): void {
  console.log(`\n${title}\n| compressor | bytes | seconds |\n|---|---:|---:|`);
  for (const result of results) console.log(`| ${result.name} | ${result.bytes.toLocaleString('en-US')} | ${result.seconds.toFixed(2)} |`);
}

async function main(): Promise<void> {
  const [esbuild, turboPair] = await packedPairs();
  const body = await rawBody(esbuild);
  console.log(`esbuild: uncompressed body ${body.length.toLocaleString('en-US')} bytes`);
  print('Same uncompressed body (esbuild)', [
    brotli(body, 11, 20, 16),
    brotli(body, 11, 20),
    brotli(body, 10, 20, 16),
    brotli(body, 10, 18, 16),
    brotli(body, 10, 17, 16),
    brotli(body, 10, 16, 16),
    brotli(body, 10, 20),
    brotli(body, 9, 20),
    await tool('zstd -19', 'zstd', ['-19', '-c'], body),
    await tool('zstd --ultra -22 --long=27', 'zstd', ['--ultra', '-22', '--long=27', '-c'], body),
    await tool('bzip2 -9', 'bzip2', ['-9', '-c'], body),
    await tool('xz -9e', 'xz', ['-9e', '-c'], body),
  ]);

  const parts = splitBody(body);
  const zeros = parts.expanded.reduce((count, byte) => count + (byte === 0 ? 1 : 0), 0);
  console.log(`\nBytewise differences: ${parts.expanded.length.toLocaleString('en-US')} bytes, ${((100 * zeros) / parts.expanded.length).toFixed(1)}% zeros; tokens ${parts.differences.length.toLocaleString('en-US')} bytes`);
  print('Differences alone, brotli quality 11, window 2^22', [
    { ...brotli(parts.expanded, 11, 22), name: 'bytewise differences' },
    { ...brotli(parts.differences, 11, 22), name: '(zero run, byte) tokens' },
  ]);

  const separate = [parts.controls, parts.differences, parts.literals].map((stream) => brotli(stream, 11, 22));
  print('One stream against three, brotli quality 11, window 2^22', [
    { ...brotli(body, 11, 22), name: 'single stream of sections' },
    { name: 'controls, differences and literals apart', bytes: separate.reduce((sum, part) => sum + part.bytes, 0), seconds: separate.reduce((sum, part) => sum + part.seconds, 0) },
  ]);

  const turbo = await rawBody(turboPair);
  console.log(`\nturbo: uncompressed body ${turbo.length.toLocaleString('en-US')} bytes`);
  print(
    'Windows, brotli quality 11',
    [20, 21, 22].flatMap((bits) => [
      { ...brotli(body, 11, bits), name: `esbuild, window 2^${bits}` },
      { ...brotli(turbo, 11, bits), name: `turbo, window 2^${bits}` },
    ]),
  );
}

await main();
