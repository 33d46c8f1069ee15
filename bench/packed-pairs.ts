/**
 * The large image pairs of the delta benchmarks: executables from npm packages, fetched with `npm pack` and
 * unpacked under bench/data (ignored by git) on first use.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const DATA_DIR = resolve(fileURLToPath(import.meta.url), '../../../bench/data');

/** A source image and the target image made from it. */
export interface Pair {
  name: string;
  oldPath: string;
  newPath: string;
}

/** npm packages whose executables make the large pairs. */
const PACKED_PAIRS = [
  { name: 'esbuild', old: '@esbuild/linux-x64@0.28.1', new: '@esbuild/linux-x64@0.28.2', file: 'package/bin/esbuild' },
  { name: 'turbo', old: 'turbo-linux-64@2.8.16', new: 'turbo-linux-64@2.8.17', file: 'turbo-linux-x64/bin/turbo' },
];

/**
 * Runs a command and returns its standard output. A failure names the command and its standard error. Without
 * `env` the command gets this process's environment.
 */
export function run(command: string, args: string[], cwd?: string, env?: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolveRun, reject) => {
    execFile(command, args, { cwd, env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')} failed: ${stderr || error.message}`));
      else resolveRun(stdout);
    });
  });
}

/** Fetches and unpacks one npm package into bench/data unless it is there already, and returns its folder. */
async function unpack(spec: string): Promise<string> {
  const folder = join(DATA_DIR, spec.replace(/[@/]/g, '_'));
  if (existsSync(folder)) return folder;

  await mkdir(DATA_DIR, { recursive: true });
  const tarball = (await run('npm', ['pack', '--silent', spec], DATA_DIR)).trim().split('\n').pop()!;
  await mkdir(folder, { recursive: true });
  await run('tar', ['-xzf', join(DATA_DIR, tarball), '-C', folder]);
  await rm(join(DATA_DIR, tarball));
  return folder;
}

/** Returns the large pairs, esbuild (about 11 MB) then turbo (about 34 MB), fetching them first if needed. */
export async function packedPairs(): Promise<Pair[]> {
  const pairs: Pair[] = [];
  for (const packed of PACKED_PAIRS) {
    pairs.push({
      name: packed.name,
      oldPath: join(await unpack(packed.old), packed.file),
      newPath: join(await unpack(packed.new), packed.file),
    });
  }
  return pairs;
}
