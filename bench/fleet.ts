/**
 * `npm run bench:fleet`: upgrades fleets of 10, 50 and 200 agents from one patch folder and reports, per size,
 * the wall time, devices per minute, and the manager's CPU time and peak memory. The agents run in one child
 * process and the manager in another, so the manager's figures are its own.
 *
 * Usage: node dist/bench/fleet.js [--sizes 10,50,200] [--concurrency 20]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { freeUdpPort, makeTempDir } from '../test/support/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const option = (name: string, fallback: string) => {
  const position = process.argv.indexOf(`--${name}`);
  return position === -1 ? fallback : process.argv[position + 1] ?? fallback;
};
const sizes = option('sizes', '10,50,200').split(',').map(Number);
const concurrency = Number(option('concurrency', '20'));

interface ManagerFigures {
  devices: number;
  upgraded: number;
  failed: number;
  wallMs: number;
  cpuMs: number;
  peakRssKiB: number;
  idleRssKiB: number;
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => resolve(line));
    child.once('exit', (code) => reject(new Error(`child exited with status ${code} before reporting`)));
  });
}

async function runSize(count: number): Promise<ManagerFigures> {
  const dir = await makeTempDir('snmp-upgrade-bench-fleet-');
  const trapPort = await freeUdpPort();
  const agents = spawn(process.execPath, [join(here, 'fleet-agents.js'), String(count), dir.path, String(trapPort)], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const { inventory, urlPrefix } = JSON.parse(await firstLine(agents)) as { inventory: string; urlPrefix: string };
    const manager = spawn(process.execPath, [join(here, 'fleet-manager.js'), inventory, urlPrefix, String(trapPort), String(concurrency)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    return JSON.parse(await firstLine(manager)) as ManagerFigures;
  } finally {
    const exited = new Promise((resolve) => agents.once('exit', resolve));
    agents.stdin!.end();
    await exited;
    await dir.remove();
  }
}

process.stdout.write(
  `fleet benchmark: rpi4-recovery image (100,140 bytes), full-image patch over file:, one agent process, ` +
    `manager concurrency ${concurrency}, traps on, ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}\n\n`,
);
const header = '| devices | upgraded | wall time | devices/min | manager CPU | CPU per device | manager peak RSS | idle RSS |';
process.stdout.write(`${header}\n|---:|---:|---:|---:|---:|---:|---:|---:|\n`);
for (const size of sizes) {
  const figures = await runSize(size);
  const perMinute = (figures.devices / figures.wallMs) * 60_000;
  process.stdout.write(
    `| ${figures.devices} | ${figures.upgraded} | ${(figures.wallMs / 1000).toFixed(2)} s | ${perMinute.toFixed(0)} | ` +
      `${figures.cpuMs} ms | ${(figures.cpuMs / figures.devices).toFixed(1)} ms | ${(figures.peakRssKiB / 1024).toFixed(1)} MiB | ` +
      `${(figures.idleRssKiB / 1024).toFixed(1)} MiB |\n`,
  );
  if (figures.failed > 0) process.exitCode = 1;
}
