/**
 * Delta engine benchmark: this engine, bsdiff 4.3, xdelta3 -9 and zstd -19 --long=27 --patch-from, side by side
 * in one run, on the real firmware pairs and on two large executables fetched with `npm pack`.
 *
 *   npm run bench:delta
 *
 * Every tool runs as a child process under GNU time (`/usr/bin/time -f %M`) for its peak resident set size. The
 * wall time is taken around the child, to the millisecond. Each run is repeated REPEATS times and the fastest
 * kept. Each applied image is checked against the target's SHA-256.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { packedPairs, run, type Pair } from './packed-pairs.js';

const REPO_ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
const FIRMWARE_DIR = resolve(REPO_ROOT, '../shared/firmware');
const TOOL = join(REPO_ROOT, 'dist/bench/delta-tool.js');
const TIME = '/usr/bin/time';

/** Runs per tool and pair; the table keeps the fastest, because the machine may be shared. */
const REPEATS = 3;

interface Measure {
  seconds: number;
  peakKiB: number;
  stdout: string;
}

interface Row {
  pair: string;
  tool: string;
  patchBytes: number;
  newBytes: number;
  create: Measure;
  apply: Measure;
  /** For this engine: the seconds the apply took inside the process, without Node's start-up. */
  applyInside?: number;
}

async function pairs(): Promise<Pair[]> {
  const result: Pair[] = [
    {
      name: 'rpi4-recovery',
      oldPath: join(FIRMWARE_DIR, 'rpi4-recovery-2026-05-17.bin'),
      newPath: join(FIRMWARE_DIR, 'rpi4-recovery-2026-08-04.bin'),
    },
    {
      name: 'iwlwifi-cc-a0',
      oldPath: join(FIRMWARE_DIR, 'iwlwifi-cc-a0-67.ucode'),
      newPath: join(FIRMWARE_DIR, 'iwlwifi-cc-a0-68.ucode'),
    },
  ];
  result.push(...(await packedPairs()));
  return result;
}

/**
 * The tools' environment: this one without NODE_EXTRA_CA_CERTS. With it, every Node process parses that
 * certificate bundle before running any code, which on the machine of docs/benchmarks.md made `node -e 0` take
 * 50 ms instead of 20. That is a setting of the shell, not start-up cost of the engine, and no other tool pays it.
 */
const TOOL_ENV: NodeJS.ProcessEnv = { ...process.env, NODE_EXTRA_CA_CERTS: undefined };

/** Runs a command under GNU time and returns its wall time, peak resident memory and standard output. */
async function measure(command: string, args: string[], scratch: string): Promise<Measure> {
  const report = join(scratch, 'time.txt');
  const started = performance.now();
  const stdout = await run(TIME, ['-f', '%M', '-o', report, command, ...args], undefined, TOOL_ENV);
  const seconds = (performance.now() - started) / 1000;
  const peakKiB = Number((await readFile(report, 'utf8')).trim().split('\n').pop());
  return { seconds, peakKiB, stdout };
}

interface Tool {
  name: string;
  create(pair: Pair, patch: string): [string, string[]];
  apply(pair: Pair, patch: string, out: string, size: number): [string, string[]];
}

const TOOLS: Tool[] = [
  {
    name: 'this engine',
    create: (pair, patch) => [process.execPath, [TOOL, 'create', pair.oldPath, pair.newPath, patch]],
    apply: (pair, patch, out, size) => [process.execPath, [TOOL, 'apply', pair.oldPath, patch, out, String(size)]],
  },
  {
    name: 'bsdiff 4.3',
    create: (pair, patch) => ['bsdiff', [pair.oldPath, pair.newPath, patch]],
    apply: (pair, patch, out) => ['bspatch', [pair.oldPath, out, patch]],
  },
  {
    name: 'xdelta3 -9',
    create: (pair, patch) => ['xdelta3', ['-9', '-f', '-s', pair.oldPath, pair.newPath, patch]],
    apply: (pair, patch, out) => ['xdelta3', ['-d', '-f', '-s', pair.oldPath, patch, out]],
  },
  {
    name: 'zstd -19 --long=27',
    create: (pair, patch) => ['zstd', ['-q', '-f', '-19', '--long=27', `--patch-from=${pair.oldPath}`, pair.newPath, '-o', patch]],
    apply: (pair, patch, out) => ['zstd', ['-q', '-f', '-d', '--long=27', `--patch-from=${pair.oldPath}`, patch, '-o', out]],
  },
];

async function sha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** Keeps the fastest time and the highest peak of repeated runs, since other load only slows a run down. */
function best(first: Measure, second: Measure): Measure {
  const faster = second.seconds < first.seconds ? second : first;
  return { ...faster, peakKiB: Math.max(first.peakKiB, second.peakKiB) };
}

async function benchmarkPair(pair: Pair, scratch: string, repeats: number): Promise<Row[]> {
  const newBytes = (await stat(pair.newPath)).size;
  const expected = await sha256(pair.newPath);
  const rows: Row[] = [];
  for (const tool of TOOLS) {
    const patch = join(scratch, 'patch');
    const out = join(scratch, 'out');
    // Each apply writes a new file, as the device writes a new staging file, so no run pays for truncating
    // the previous run's output.
    const applyOnce = async (): Promise<Measure> => {
      await rm(out, { force: true });
      return measure(...tool.apply(pair, patch, out, newBytes), scratch);
    };
    let create = await measure(...tool.create(pair, patch), scratch);
    let apply = await applyOnce();
    if ((await sha256(out)) !== expected) throw new Error(`${tool.name} rebuilt a wrong image for ${pair.name}`);
    for (let run = 1; run < repeats; run++) {
      create = best(create, await measure(...tool.create(pair, patch), scratch));
      apply = best(apply, await applyOnce());
    }

    const row: Row = { pair: pair.name, tool: tool.name, patchBytes: (await stat(patch)).size, newBytes, create, apply };
    if (tool === TOOLS[0]) row.applyInside = (JSON.parse(apply.stdout) as { seconds: number }).seconds;
    rows.push(row);
    await rm(patch);
    await rm(out);
  }
  return rows;
}

function mib(kib: number): string {
  return (kib / 1024).toFixed(1);
}

function ratio(value: number, reference: number): string {
  return reference > 0 ? `${(value / reference).toFixed(2)}x` : '-';
}

function printTable(rows: Row[], baselineKiB: number): void {
  const lines = [
    '| pair | tool | patch bytes | % of new | size vs ours | create s | create vs ours | apply s | apply vs ours | create peak MiB | apply peak MiB |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const ours = new Map(rows.filter((row) => row.tool === TOOLS[0].name).map((row) => [row.pair, row]));
  for (const row of rows) {
    const reference = ours.get(row.pair)!;
    lines.push(
      `| ${row.pair} | ${row.tool} | ${row.patchBytes.toLocaleString('en-US')} | ${((100 * row.patchBytes) / row.newBytes).toFixed(2)} | ` +
        `${ratio(row.patchBytes, reference.patchBytes)} | ${row.create.seconds.toFixed(3)} | ${ratio(row.create.seconds, reference.create.seconds)} | ` +
        `${row.apply.seconds.toFixed(3)} | ${ratio(row.apply.seconds, reference.apply.seconds)} | ${mib(row.create.peakKiB)} | ${mib(row.apply.peakKiB)} |`,
    );
  }
  console.log(lines.join('\n'));

  console.log(`\nNode baseline (delta-tool baseline, peak RSS): ${mib(baselineKiB)} MiB`);
  console.log('| pair | our apply inside the process s | output MB/s | apply peak above baseline MiB |');
  console.log('|---|---:|---:|---:|');
  for (const row of ours.values()) {
    const inside = row.applyInside!;
    console.log(
      `| ${row.pair} | ${inside.toFixed(3)} | ${(row.newBytes / 1e6 / inside).toFixed(0)} | ${mib(row.apply.peakKiB - baselineKiB)} |`,
    );
  }
}

async function main(): Promise<void> {
  if (!existsSync(TIME)) throw new Error(`${TIME} (GNU time) not found; the benchmark needs it to measure peak memory`);
  if (process.env.NODE_EXTRA_CA_CERTS !== undefined) {
    process.stderr.write('the tools run without NODE_EXTRA_CA_CERTS, which is set here (see TOOL_ENV)\n');
  }
  const scratch = await mkdtemp(join(tmpdir(), 'bench-delta-'));
  try {
    const all = await pairs();
    const baseline = await measure(process.execPath, [TOOL, 'baseline'], scratch);
    const rows: Row[] = [];
    for (const pair of all) {
      process.stderr.write(`benchmarking ${pair.name}...\n`);
      // The 34 MB pair runs once: it is there for the apply's peak memory, and a run of all four tools is minutes.
      rows.push(...(await benchmarkPair(pair, scratch, pair.name === 'turbo' ? 1 : REPEATS)));
    }
    printTable(rows, baseline.peakKiB);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

await main();
