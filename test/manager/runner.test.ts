import { expect } from 'chai';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { parseCsvInventory, runUpgrades, type RunEvent } from '../../manager/index.js';
import { freeUdpPort, makeTempDir } from '../support/index.js';
import { COMMUNITY, FROM_VERSION, TO_VERSION, copyPatchAs, publishFirmwarePatch, startFleet, type Fleet, type PatchSource } from './fleet.js';

describe('manager runner', function () {
  this.timeout(120_000);
  let dir: { path: string; remove: () => Promise<void> };
  let source: PatchSource;
  let fleet: Fleet | undefined;

  beforeEach(async () => {
    dir = await makeTempDir('snmp-upgrade-manager-');
    source = await publishFirmwarePatch(dir.path);
  });
  afterEach(async () => {
    await fleet?.close();
    fleet = undefined;
    await dir.remove();
  });

  it('upgrades a small fleet with traps', async () => {
    const trapPort = await freeUdpPort();
    fleet = await startFleet({ root: dir.path, count: 3, trustedKey: source.trustedKey, trapSink: { host: '127.0.0.1', port: trapPort } });
    const events: RunEvent[] = [];
    const summary = await runUpgrades(parseCsvInventory(fleet.inventoryCsv()), {
      urlPrefix: source.urlPrefix,
      concurrency: 2,
      traps: { host: '127.0.0.1', port: trapPort },
      onEvent: (event) => events.push(event),
    });
    console.log(summary.devices, events.filter((e) => e.event === 'trap').length);
    expect(summary.upgraded).to.equal(3);
  });
});
