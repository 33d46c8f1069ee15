/**
 * Child process of `npm run bench:fleet`: runs the manager alone in its own process over an inventory and
 * prints one JSON line with the run's wall time, this process's CPU time and its peak resident memory.
 */
import { loadInventory, runUpgrades } from '../manager/index.js';

const [inventoryPath, urlPrefix, trapPortText, concurrencyText] = process.argv.slice(2);
if (!inventoryPath || !urlPrefix) {
  process.stderr.write('usage: fleet-manager INVENTORY URL_PREFIX TRAP_PORT CONCURRENCY\n');
  process.exit(2);
}

const idleRssKiB = process.resourceUsage().maxRSS;
const devices = await loadInventory(inventoryPath);
const cpuBefore = process.cpuUsage();
const summary = await runUpgrades(devices, {
  urlPrefix,
  concurrency: Number(concurrencyText),
  traps: { host: '127.0.0.1', port: Number(trapPortText) },
});
const cpu = process.cpuUsage(cpuBefore);

process.stdout.write(
  `${JSON.stringify({
    devices: summary.total,
    upgraded: summary.upgraded,
    failed: summary.failed + summary.notStarted,
    wallMs: summary.durationMs,
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    // maxRSS is in KiB (getrusage); the idle figure is the process before it read the inventory.
    peakRssKiB: process.resourceUsage().maxRSS,
    idleRssKiB,
  })}\n`,
);
