import { expect } from 'chai';
import { createSocket } from 'node:dgram';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { AbortedError, UpgradeError } from '../../errors/index.js';
import { ProgressView, parseCsvInventory, runUpgrades, type DeviceReport, type InventoryDevice, type RunEvent, type RunSummary } from '../../manager/index.js';
import type { Fetcher } from '../../transport/index.js';
import { freeUdpPort, makeTempDir, runProgram } from '../support/index.js';
import { FROM_VERSION, PLATFORM, TO_VERSION, copyPatchAs, publishFirmwarePatch, startFleet, type DeviceSetup, type Fleet, type PatchSource } from './fleet.js';

type TrapEvent = Extract<RunEvent, { event: 'trap' }>;

/** Short timings so that failures and polling finish within a test's time. */
const FAST = { pollIntervalMs: 100, requestTimeoutMs: 300, requestRetries: 0, retries: 1 };

describe('manager rollout', function () {
  this.timeout(60_000);
  let dir: { path: string; remove: () => Promise<void> };
  let source: PatchSource;
  let fleet: Fleet | undefined;
  let emptyUrl: string;

  beforeEach(async () => {
    dir = await makeTempDir('snmp-upgrade-rollout-');
    source = await publishFirmwarePatch(dir.path);
    const empty = join(dir.path, 'empty');
    await mkdir(empty);
    emptyUrl = `${pathToFileURL(empty).href}/`;
  });
  afterEach(async () => {
    await fleet?.close();
    fleet = undefined;
    await dir.remove();
  });

  /** Starts `count` agents; the setups make some of them fail, `missing` lists devices given a patch folder without their patch. */
  async function start(count: number, setups: Array<[number, DeviceSetup]> = [], missing: number[] = [], trapSink?: number) {
    const sink = trapSink ?? (await freeUdpPort());
    fleet = await startFleet({ root: dir.path, count, trustedKey: source.trustedKey, trapSink: { host: '127.0.0.1', port: sink }, setups: new Map(setups) });
    return parseCsvInventory(fleet.inventoryCsv((_, position) => ({ url: missing.includes(position) ? emptyUrl : '' })));
  }

  it('names each failing device its own cause', async () => {
    // Device 1 reports another platform (its patch name exists, but the patch is for rpi4-recovery), device 2
    // has a flash too small for the download, device 3 finds no patch in its folder.
    await copyPatchAs(source, 'rpi4-other', FROM_VERSION);
    const devices = await start(4, [[1, { platform: 'rpi4-other' }], [2, { capacityBytes: 150_000 }]], [3]);
    const inventory = join(dir.path, 'inventory.csv');
    await writeFile(inventory, fleet!.inventoryCsv((_, position) => ({ url: position === 3 ? emptyUrl : '' })));

    const run = await runProgram(['manager', 'upgrade', '--inventory', inventory, '--url', source.urlPrefix, '--poll', '0.1', '--concurrency', '4']);
    expect(run.status).to.equal(1);
    const rows = run.stdout.split('\n').filter((line) => line.startsWith('127.0.0.1:')).map((line) => line.split(/ {2,}/));
    const byDevice = new Map(rows.map((row) => [row[0], row]));
    const row = (position: number) => byDevice.get(devices[position]!.name)!;

    expect(row(0).slice(1, 4)).to.deep.equal([FROM_VERSION, TO_VERSION, 'upgraded']);
    expect(row(1).slice(3, 5)).to.deep.equal(['failed', 'wrongPlatform']);
    expect(row(2).slice(3, 5)).to.deep.equal(['failed', 'insufficientFlash']);
    expect(row(3).slice(3, 5)).to.deep.equal(['failed', 'fileNotFound']);
    expect(run.stdout).to.include('4 devices: 1 upgraded, 3 failed');

    for (const position of [1, 2, 3]) {
      const state = await fleet!.agents[position]!.device.inventory();
      expect(state.bootVersion, `device ${position} boot version`).to.equal(FROM_VERSION);
    }
  });

  it('takes each URL from the inventory', async () => {
    await start(2);
    const inventory = join(dir.path, 'inventory.csv');
    await writeFile(inventory, fleet!.inventoryCsv(() => ({ url: source.urlPrefix })));
    const run = await runProgram(['manager', 'upgrade', '--inventory', inventory, '--poll', '0.1', '--json']);
    expect(run.status, run.stderr).to.equal(0);
    expect(JSON.parse(run.stdout.trim().split('\n').at(-1)!).upgraded).to.equal(2);
  });

  it('asks for --url without a device URL', async () => {
    await start(2);
    const inventory = join(dir.path, 'inventory.csv');
    await writeFile(inventory, fleet!.inventoryCsv((_, position) => ({ url: position === 0 ? source.urlPrefix : '' })));
    const run = await runProgram(['manager', 'upgrade', '--inventory', inventory, '--poll', '0.1']);
    expect(run.status).to.equal(1);
    expect(run.stderr).to.match(/no URL prefix for 127\.0\.0\.1:\d+ \(.*\): give --url or a url column \(cause: invalidArgument\)/);
  });

  it('finishes by polling when traps go nowhere', async () => {
    // The agents send to a port where nothing listens; the manager listens on another one.
    const devices = await start(5);
    const events: RunEvent[] = [];
    const summary = await runUpgrades(devices, {
      urlPrefix: source.urlPrefix,
      concurrency: 5,
      traps: { host: '127.0.0.1', port: await freeUdpPort() },
      timing: { ...FAST, pollIntervalMs: 300 },
      onEvent: (event) => events.push(event),
    });
    expect(summary.upgraded).to.equal(5);
    expect(events.filter((event) => event.event === 'trap')).to.have.length(0);
  });

  /** Runs with a poll timer far beyond a test's time, so only traps can finish the run quickly. */
  async function runOnTraps(devices: InventoryDevice[], trapPort: number): Promise<{ summary: RunSummary; traps: TrapEvent[] }> {
    const traps: TrapEvent[] = [];
    const summary = await runUpgrades(devices, {
      urlPrefix: source.urlPrefix,
      concurrency: devices.length,
      traps: { host: '127.0.0.1', port: trapPort },
      timing: { pollIntervalMs: 20_000 },
      onEvent: (event) => {
        if (event.event === 'trap') traps.push(event);
      },
    });
    return { summary, traps };
  }

  it('wakes polls on traps', async () => {
    const trapPort = await freeUdpPort();
    const { summary, traps } = await runOnTraps(await start(3, [], [], trapPort), trapPort);
    expect(summary.upgraded).to.equal(3);
    expect(summary.durationMs).to.be.below(15_000);
    expect(traps.map((event) => event.name)).to.include('upgradeCompleted');
  });

  it('wakes a device listed by host name', async () => {
    const trapPort = await freeUdpPort();
    const [listed] = await start(1, [], [], trapPort);
    // The agent listens on 127.0.0.1; the manager reaches it through the name, which resolves to loopback.
    const device = { ...listed!, host: 'localhost' };
    const { summary, traps } = await runOnTraps([device], trapPort);
    expect(summary.upgraded).to.equal(1);
    expect(summary.durationMs).to.be.below(15_000);
    expect(traps.flatMap((event) => event.devices)).to.include(device.name);
  });

  it('stops after a failed canary', async () => {
    const devices = await start(6, [], [1]);
    const summary = await runUpgrades(devices, { urlPrefix: source.urlPrefix, concurrency: 4, canary: 2, timing: FAST });

    const results = summary.devices.map((report: DeviceReport) => [report.result, report.cause]);
    expect(results[0]).to.deep.equal(['upgraded', 'none']);
    expect(results[1]).to.deep.equal(['failed', 'fileNotFound']);
    expect(results.slice(2)).to.deep.equal(Array(4).fill(['notStarted', 'canaryFailed']));
    for (const agent of fleet!.agents.slice(2)) expect((await agent.device.inventory()).bootVersion).to.equal(FROM_VERSION);
  });

  it('continues after a passing canary', async () => {
    const devices = await start(4);
    const summary = await runUpgrades(devices, { urlPrefix: source.urlPrefix, concurrency: 4, canary: 1, timing: FAST });
    expect(summary.upgraded).to.equal(4);
  });

  it('stops starting past max failures', async () => {
    const devices = await start(6, [], [0, 1, 2]);
    const summary = await runUpgrades(devices, { urlPrefix: source.urlPrefix, concurrency: 1, maxFailures: 1, timing: FAST });
    const results = summary.devices.map((report) => report.result);
    expect(results).to.deep.equal(['failed', 'failed', 'notStarted', 'notStarted', 'notStarted', 'notStarted']);
    expect(summary.devices[2]!.cause).to.equal('maxFailuresReached');
  });

  it('checks without writing on a dry run', async () => {
    const devices = await start(2, [[1, { capacityBytes: 150_000 }]]);
    const summary = await runUpgrades(devices, { urlPrefix: source.urlPrefix, concurrency: 2, dryRun: true, timing: FAST });
    expect(summary.devices.map((report) => [report.result, report.cause])).to.deep.equal([
      ['checked', 'none'],
      ['failed', 'insufficientFlash'],
    ]);
    expect((await fleet!.agents[0]!.device.inventory()).bootVersion).to.equal(FROM_VERSION);
  });

  it('skips a dry run of an upgraded device', async () => {
    // The device's boot image is then the target, so its check ends in installedPendingReload, not idle.
    const devices = await start(1);
    const upgraded = await runUpgrades(devices, { urlPrefix: source.urlPrefix, concurrency: 1, timing: FAST });
    expect(upgraded.devices[0]!.result).to.equal('upgraded');
    const summary = await runUpgrades(devices, { urlPrefix: source.urlPrefix, concurrency: 1, dryRun: true, timing: FAST });
    expect([summary.devices[0]!.result, summary.devices[0]!.cause]).to.deep.equal(['skipped', 'alreadyAtTarget']);
  });

  it('skips devices at a given target version', async () => {
    const devices = await start(2, [[1, { version: TO_VERSION }]]);
    const summary = await runUpgrades(devices, { urlPrefix: source.urlPrefix, concurrency: 2, targetVersion: TO_VERSION, timing: FAST });
    expect(summary.devices.map((report) => [report.result, report.cause])).to.deep.equal([
      ['upgraded', 'none'],
      ['skipped', 'alreadyAtTarget'],
    ]);
  });

  it('rejects a trap port in use', async () => {
    const devices = await start(1);
    const port = await freeUdpPort();
    const taken = createSocket('udp4');
    await new Promise<void>((resolve) => taken.bind(port, '127.0.0.1', resolve));
    try {
      await runUpgrades(devices, { urlPrefix: source.urlPrefix, concurrency: 1, traps: { host: '127.0.0.1', port } }).then(
        () => expect.fail('expected the run to be rejected'),
        (error: UpgradeError) => {
          expect(error.code).to.equal('invalidArgument');
          expect(error.message).to.match(new RegExp(`cannot listen for traps on 127\\.0\\.0\\.1:${port}`));
        },
      );
      expect((await fleet!.agents[0]!.device.inventory()).bootVersion).to.equal(FROM_VERSION);
    } finally {
      taken.close();
    }
  });

  it('reports a silent device as not answering', async () => {
    const port = await freeUdpPort();
    const devices = parseCsvInventory(`host,port,community\n127.0.0.1,${port},anything\n`);
    const started = performance.now();
    const summary = await runUpgrades(devices, { urlPrefix: source.urlPrefix, concurrency: 1, timing: FAST });
    expect([summary.devices[0]!.result, summary.devices[0]!.cause]).to.deep.equal(['failed', 'noResponse']);
    expect(performance.now() - started).to.be.below(5000);
  });

  it('reports a device that stops answering mid-upgrade', async () => {
    const devices = await start(1);
    // The agent goes away once the operation is under way, as a device that loses power would.
    const agent = fleet!.agents[0]!;
    let closed = false;
    agent.device.on('status', (status) => {
      if (status.phase !== 'verifying' || closed) return;
      closed = true;
      void agent.agent.close();
    });
    const summary = await runUpgrades(devices, { urlPrefix: source.urlPrefix, concurrency: 1, timing: FAST });
    expect([summary.devices[0]!.result, summary.devices[0]!.cause]).to.deep.equal(['failed', 'noResponse']);
    expect(summary.devices[0]!.reason).to.match(/stopped responding during/);
  });

  it('gives up on a phase past its deadline', async () => {
    // The transfer never ends until the device aborts it, as a stalled server would leave it.
    const stalled: Fetcher = {
      fetchToFile: (_url, _path, options) =>
        new Promise((_, reject) => options.signal?.addEventListener('abort', () => reject(new AbortedError('fetch aborted')))),
    };
    const devices = await start(1, [[0, { fetcher: stalled }]]);
    const summary = await runUpgrades(devices, {
      urlPrefix: source.urlPrefix,
      concurrency: 1,
      timing: { ...FAST, phaseDeadlinesMs: { fetching: 500 } },
    });
    const report = summary.devices[0]!;
    expect([report.result, report.cause]).to.deep.equal(['failed', 'phaseTimeout']);
    expect(report.reason).to.match(/phase fetching lasted more than/);

    // The manager's abort reached the device, which is free again.
    const outcome = await fleet!.agents[0]!.device.settled();
    expect(outcome?.result ?? 'aborted').to.equal('aborted');
    expect(fleet!.agents[0]!.device.status().failCause).to.equal('aborted');
  });

  it('keeps the platform of the device in the report', async () => {
    const devices = await start(1);
    const summary = await runUpgrades(devices, { urlPrefix: source.urlPrefix, concurrency: 1, timing: FAST });
    expect(summary.devices[0]!.platform).to.equal(PLATFORM);
  });
});

describe('manager output', function () {
  this.timeout(60_000);
  let dir: { path: string; remove: () => Promise<void> };
  let fleet: Fleet | undefined;
  beforeEach(async () => (dir = await makeTempDir('snmp-upgrade-output-')));
  afterEach(async () => {
    await fleet?.close();
    await dir.remove();
  });

  it('prints no community or URL password', async () => {
    const source = await publishFirmwarePatch(dir.path);
    fleet = await startFleet({ root: dir.path, count: 2, trustedKey: source.trustedKey, trapSink: { host: '127.0.0.1', port: await freeUdpPort() } });
    const inventory = join(dir.path, 'fleet.csv');
    await writeFile(inventory, fleet.inventoryCsv());

    // Nothing serves this URL, so both devices fail, and their failure reasons are printed too.
    const url = `http://operator:s3cret-pass@127.0.0.1:${await freeUdpPort()}/patches/`;
    for (const format of [[], ['--json']]) {
      const run = await runProgram(['manager', 'upgrade', '--inventory', inventory, '--url', url, '--poll', '0.1', ...format]);
      expect(run.status).to.equal(1);
      const output = run.stdout + run.stderr;
      expect(output).to.match(/failed/);
      expect(output).to.not.include('s3cret-pass');
      expect(output).to.not.include('fleet-rw');
    }
  });

  it('renders the progress view', () => {
    const view = new ProgressView();
    view.update({ event: 'runStarted', devices: 4, action: 'upgrade', concurrency: 2, canary: 0, maxFailures: null, urlPrefix: 'file:///p/', traps: null });
    view.update({ event: 'deviceState', device: '127.0.0.1:1001', state: 'applying', percent: 40 });
    view.update({ event: 'deviceState', device: '127.0.0.1:1002', state: 'fetching', percent: 0 });
    view.update({ event: 'deviceDone', device: '127.0.0.1:1003', platform: PLATFORM, from: FROM_VERSION, to: TO_VERSION, result: 'upgraded', cause: 'none', reason: '', durationMs: 10 });
    const lines = view.render();
    expect(lines[0]).to.match(/^\[#{8}\.{22}\] 1\/4 done, 2 in flight \(1 upgraded\), \d+\.\d s$/);
    expect(lines.slice(1)).to.deep.equal(['  127.0.0.1:1001  applying                40%', '  127.0.0.1:1002  fetching                 0%']);
  });
});
