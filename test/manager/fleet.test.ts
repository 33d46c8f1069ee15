import { expect } from 'chai';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { startPatchServer, type PatchServer } from '../../transport/index.js';
import { freeTcpPort, freeUdpPort, makeTempDir, runProgram } from '../support/index.js';
import { COMMUNITY, FROM_VERSION, PLATFORM, TO_VERSION, publishFirmwarePatch, startFleet, type Fleet, type PatchSource } from './fleet.js';

/** Rows of the final table whose first column is a device (host:port). */
function tableRows(stdout: string): string[][] {
  return stdout
    .split('\n')
    .filter((line) => /^127\.0\.0\.1:\d+ /.test(line))
    .map((line) => line.trim().split(/ {2,}/));
}

describe('manager upgrade of 50 agents', function () {
  this.timeout(180_000);
  const COUNT = 50;
  let dir: { path: string; remove: () => Promise<void> };
  let source: PatchSource;
  let fleet: Fleet;
  let inventory: string;
  let trapPort: number;
  let server: PatchServer;

  before(async () => {
    dir = await makeTempDir('snmp-upgrade-fleet-');
    source = await publishFirmwarePatch(dir.path);
    server = await startPatchServer({ root: source.dir, http: { host: '127.0.0.1', port: await freeTcpPort() } });
    trapPort = await freeUdpPort();
    fleet = await startFleet({ root: dir.path, count: COUNT, trustedKey: source.trustedKey, trapSink: { host: '127.0.0.1', port: trapPort }, inform: true });
    inventory = join(dir.path, 'inventory.csv');
    await writeFile(inventory, fleet.inventoryCsv());
  });
  after(async () => {
    await fleet?.close();
    await server?.close();
    await dir?.remove();
  });

  it('upgrades every device and tables it', async () => {
    // All 50 devices fetch from one patch server over HTTP, as a fleet at a site does.
    const url = `http://127.0.0.1:${server.httpAddress!.port}/`;
    const run = await runProgram(['manager', 'upgrade', '--inventory', inventory, '--url', url, '--concurrency', '10', '--traps', `127.0.0.1:${trapPort}`], {
      timeoutMs: 150_000,
    });
    expect(run.status, run.stderr).to.equal(0);

    const rows = tableRows(run.stdout);
    expect(rows).to.have.length(COUNT);
    for (const row of rows) {
      expect(row.slice(1, 4), row.join(' | ')).to.deep.equal([FROM_VERSION, TO_VERSION, 'upgraded']);
    }
    expect(run.stdout).to.include(`${COUNT} devices: ${COUNT} upgraded`);
    expect(run.stdout + run.stderr).to.not.include(COMMUNITY);

    for (const agent of fleet.agents) {
      const inventoryNow = await agent.device.inventory();
      expect(inventoryNow.bootVersion, agent.flashDir).to.equal(TO_VERSION);
      expect(inventoryNow.runningVersion, agent.flashDir).to.equal(FROM_VERSION);
    }
  });

  it('shows the fleet in one status table', async () => {
    const run = await runProgram(['manager', 'status', '--inventory', inventory]);
    expect(run.status, run.stderr).to.equal(0);
    const rows = tableRows(run.stdout);
    expect(rows).to.have.length(COUNT);
    for (const row of rows) expect(row.slice(1, 5)).to.deep.equal([PLATFORM, FROM_VERSION, TO_VERSION, 'installedPendingReload']);
  });

  it('skips devices already at the target', async () => {
    const run = await runProgram(['manager', 'upgrade', '--inventory', inventory, '--url', source.urlPrefix, '--concurrency', '10', '--poll', '0.2', '--json']);
    expect(run.status, run.stderr).to.equal(0);
    const summary = JSON.parse(run.stdout.trim().split('\n').at(-1)!);
    expect(summary.event).to.equal('summary');
    expect(summary.skipped).to.equal(COUNT);
    for (const report of summary.devices) expect([report.result, report.cause]).to.deep.equal(['skipped', 'alreadyAtTarget']);
  });
});
