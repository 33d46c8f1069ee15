/**
 * Child process of `npm run bench:fleet`: hosts N agents, each on its own flash folder, and one patch folder.
 * Prints one JSON line with the inventory path and the URL prefix once every agent listens, and stops its
 * agents when its standard input closes.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { publishFirmwarePatch, startFleet } from '../test/manager/fleet.js';

const [countText, root, trapPortText] = process.argv.slice(2);
const count = Number(countText);
const trapPort = Number(trapPortText);
if (!Number.isInteger(count) || count < 1 || !root || !Number.isInteger(trapPort)) {
  process.stderr.write('usage: fleet-agents COUNT ROOT TRAP_PORT\n');
  process.exit(2);
}

const source = await publishFirmwarePatch(root);
const fleet = await startFleet({ root, count, trustedKey: source.trustedKey, trapSink: { host: '127.0.0.1', port: trapPort } });
const inventory = join(root, 'inventory.csv');
await writeFile(inventory, fleet.inventoryCsv());
process.stdout.write(`${JSON.stringify({ inventory, urlPrefix: source.urlPrefix })}\n`);

process.stdin.resume();
await new Promise<void>((resolve) => process.stdin.once('end', resolve));
await fleet.close();

const upgraded = await Promise.all(fleet.agents.map(async (agent) => (await agent.device.inventory()).bootVersion));
process.stderr.write(`agents stopped; ${upgraded.filter((version) => version === '2026-08-04').length} of ${count} flashes set to boot the target\n`);
