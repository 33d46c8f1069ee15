/**
 * Transport benchmark: 40 MB over loopback, this product's TFTP client and server next to tftpd-hpa and the
 * tftp-hpa client at blksize 512 and 1468, and HTTP next to curl. Prints one Markdown table of medians and ratios.
 *
 * Run with `npm run bench:transport`. Peers are looked up where .ci/run installs them; a missing one is reported.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';

import { defaultFetcher } from '../transport/index.js';
import { floorClient, startFloorServer } from './tftp-floor.js';

const run = promisify(execFile);
const FILE_BYTES = 40 * 1024 * 1024;
const RUNS = 5;

function findProgram(name: string, candidates: string[]): string {
  const found = [...candidates, ...(process.env.PATH ?? '').split(':').map((dir) => join(dir, name))].find((path) => existsSync(path));
  if (!found) throw new Error(`${name} not found (looked in ${candidates.join(', ')} and PATH); .ci/run installs it`);
  return found;
}

function freePort(kind: 'udp' | 'tcp'): Promise<number> {
  return new Promise((resolve) => {
    if (kind === 'udp') {
      const socket = createSocket('udp4');
      socket.bind(0, '127.0.0.1', () => {
        const { port } = socket.address();
        socket.close(() => resolve(port));
      });
    } else {
      const server = createServer();
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    }
  });
}

/** Times one transfer in milliseconds. */
async function timeOnce(transfer: () => Promise<void>): Promise<number> {
  const started = process.hrtime.bigint();
  await transfer();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

async function checkSize(path: string): Promise<void> {
  const { size } = await stat(path);
  if (size !== FILE_BYTES) throw new Error(`${path} has ${size} bytes, expected ${FILE_BYTES}`);
  await rm(path);
}

async function main(): Promise<void> {
  // Only tftpd-hpa's unpacked server counts: atftpd installs /usr/sbin/in.tftpd as a link to itself.
  const inTftpd = findProgram('tftpd-hpa in.tftpd', ['/opt/tftpd-hpa/usr/sbin/in.tftpd']);
  const tftpHpa = findProgram('tftp', ['/usr/bin/tftp']);
  const atftp = findProgram('atftp', ['/usr/bin/atftp']);
  const curl = findProgram('curl', ['/usr/bin/curl']);

  const dir = await mkdtemp(join(tmpdir(), 'snmp-upgrade-bench-'));
  await chmod(dir, 0o755);
  const root = join(dir, 'root');
  await mkdir(root);
  const out = join(dir, 'out.bin');
  const pieces: Buffer[] = [];
  for (let done = 0; done < FILE_BYTES; done += 1024 * 1024) pieces.push(randomBytes(1024 * 1024));
  const contents = Buffer.concat(pieces);
  await writeFile(join(root, 'image.bin'), contents);

  const hpaPort = await freePort('udp');
  const hpa = spawn(inTftpd, ['-L', '-a', `127.0.0.1:${hpaPort}`, '-s', root, '-u', 'root', '-B', '65464'], { stdio: 'ignore' });
  // This server runs as its own process, as an operator starts it, so it does not share an event loop with the client.
  const oursPort = await freePort('udp');
  const oursHttpPort = await freePort('tcp');
  const program = fileURLToPath(new URL('../cli/main.js', import.meta.url));
  const ours = spawn(process.execPath, [program, 'serve', '--root', root, '--tftp', `127.0.0.1:${oursPort}`, '--http', `127.0.0.1:${oursHttpPort}`], { stdio: 'ignore' });
  // The floor server runs in this process; it is idle while the other rows run.
  const floor = await startFloorServer(contents);
  await new Promise((resolve) => setTimeout(resolve, 1000));

  const ourClient = (url: string, blksize?: number, windowsize?: number) => async () => {
    await defaultFetcher.fetchToFile(url, out, { maxBytes: FILE_BYTES, timeoutMs: 120_000, tftp: { blksize, windowsize } });
    await checkSize(out);
  };
  const hpaClient = (port: number) => async () => {
    await run(tftpHpa, ['-m', 'binary', '127.0.0.1', String(port), '-c', 'get', 'image.bin', out]);
    await checkSize(out);
  };
  const floorRead = (port: number, blksize: number) => async () => {
    const received = await floorClient(port, 'image.bin', blksize);
    if (received !== FILE_BYTES) throw new Error(`floor client received ${received} bytes, expected ${FILE_BYTES}`);
  };
  const atftpClient = (port: number, blksize: number, windowsize = 1) => async () => {
    const window = windowsize > 1 ? ['--option', `windowsize ${windowsize}`] : [];
    await run(atftp, ['--option', `blksize ${blksize}`, ...window, '-g', '-r', 'image.bin', '-l', out, '127.0.0.1', String(port)]);
    await checkSize(out);
  };

  // Transfers run round-robin, RUNS rounds, so load from other processes that drifts during the run affects every
  // row alike; each row reports its median.
  const plan: Array<{ label: string; group: string; transfer: () => Promise<void>; durations: number[] }> = [];
  const measure = (label: string, group: string, transfer: () => Promise<void>) => {
    plan.push({ label, group, transfer, durations: [] });
  };

  try {
    measure('tftp-hpa client <- tftpd-hpa, blksize 512', 'ref512', hpaClient(hpaPort));
    measure('this client <- tftpd-hpa, blksize 512', 'ref512', ourClient(`tftp://127.0.0.1:${hpaPort}/image.bin`, 512));
    measure('tftp-hpa client <- this server, blksize 512', 'ref512', hpaClient(oursPort));
    measure('this client <- this server, blksize 512', 'ref512', ourClient(`tftp://127.0.0.1:${oursPort}/image.bin`, 512));
    measure('node:dgram floor client <- tftpd-hpa, blksize 512', 'ref512', floorRead(hpaPort, 512));
    measure('tftp-hpa client <- node:dgram floor server, blksize 512', 'ref512', hpaClient(floor.port));

    measure('atftp client <- tftpd-hpa, blksize 1468', 'ref1468', atftpClient(hpaPort, 1468));
    measure('this client <- tftpd-hpa, blksize 1468', 'ref1468', ourClient(`tftp://127.0.0.1:${hpaPort}/image.bin`, 1468));
    measure('atftp client <- this server, blksize 1468', 'ref1468', atftpClient(oursPort, 1468));
    measure('this client <- this server, blksize 1468', 'ref1468', ourClient(`tftp://127.0.0.1:${oursPort}/image.bin`, 1468));
    measure('node:dgram floor client <- tftpd-hpa, blksize 1468', 'ref1468', floorRead(hpaPort, 1468));
    measure('atftp client <- node:dgram floor server, blksize 1468', 'ref1468', atftpClient(floor.port, 1468));
    measure('this client <- this server, blksize 1468 windowsize 16', 'ref1468', ourClient(`tftp://127.0.0.1:${oursPort}/image.bin`, 1468, 16));

    const httpUrl = `http://127.0.0.1:${oursHttpPort}/image.bin`;
    measure('curl <- this HTTP server', 'refhttp', async () => {
      await run(curl, ['-s', '-o', out, httpUrl]);
      await checkSize(out);
    });
    measure('this client <- this HTTP server', 'refhttp', ourClient(httpUrl));

    for (let round = 0; round < RUNS; round += 1) {
      for (const entry of plan) entry.durations.push(await timeOnce(entry.transfer));
    }
  } finally {
    hpa.kill('SIGTERM');
    ours.kill('SIGTERM');
    await floor.stop();
    await rm(dir, { recursive: true, force: true });
  }

  const rows = plan.map((entry) => {
    const sorted = [...entry.durations].sort((a, b) => a - b);
    return { label: entry.label, group: entry.group, ms: sorted[Math.floor(sorted.length / 2)] };
  });
  const referenceMs = new Map<string, number>();
  for (const row of rows) if (!referenceMs.has(row.group)) referenceMs.set(row.group, row.ms);

  const { stdout: hpaVersion } = await run(tftpHpa, ['-V']);
  console.log(`40 MiB over 127.0.0.1, median of ${RUNS} runs, Node ${process.version}, ${hpaVersion.trim().split('\n')[0]}`);
  console.log('');
  console.log('| transfer | median ms | MB/s | throughput ratio to the first row of its group |');
  console.log('|---|---:|---:|---:|');
  for (const { label, group, ms } of rows) {
    const rate = FILE_BYTES / 1e6 / (ms / 1000);
    const ratio = referenceMs.get(group)! / ms;
    console.log(`| ${label} | ${ms.toFixed(0)} | ${rate.toFixed(1)} | ${ratio.toFixed(2)} |`);
  }
}

await main();
