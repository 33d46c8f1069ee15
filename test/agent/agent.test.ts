import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { expect } from 'chai';

import { startAgent, type AgentLogEvent, type RunningAgent, type StartAgentOptions } from '../../agent/index.js';
import { scalarInstanceOid } from '../../mib/index.js';
import { freeUdpPort, makeTempDir } from '../support/index.js';
import { FakeDevice } from './fake-device.js';
import { MIB_ARGS, TrapReceiver, UdpRelay, runTool } from './tools.js';

const AUTH_PASSWORD = 'auth-secret-1';
const PRIV_PASSWORD = 'priv-secret-1';

/** SNMPv3 arguments of the writer user: authPriv, SHA-256 and AES-128. */
const V3_WRITER = ['-v3', '-l', 'authPriv', '-u', 'operator', '-a', 'SHA-256', '-A', AUTH_PASSWORD, '-x', 'AES', '-X', PRIV_PASSWORD];
/** SNMPv3 arguments of the reader user: authNoPriv, SHA-512. */
const V3_READER = ['-v3', '-l', 'authNoPriv', '-u', 'viewer', '-a', 'SHA-512', '-A', AUTH_PASSWORD];

const NUMERIC_ACTION = scalarInstanceOid('upgradeAction');
const NUMERIC_URL = scalarInstanceOid('upgradeUrlPrefix');

describe('SNMP agent with Net-SNMP tools', function () {
  this.timeout(30_000);

  let temp: { path: string; remove: () => Promise<void> };
  let device: FakeDevice;
  let agent: RunningAgent | undefined;
  let target: string;

  async function start(overrides: Partial<StartAgentOptions> = {}): Promise<RunningAgent> {
    const port = await freeUdpPort();
    agent = await startAgent({
      device,
      stateFile: join(temp.path, 'agent-state.json'),
      listen: { host: '127.0.0.1', port },
      roCommunities: ['public'],
      rwCommunities: ['private'],
      users: [
        { name: 'operator', level: 'authPriv', authProtocol: 'sha256', authPassword: AUTH_PASSWORD, privProtocol: 'aes', privPassword: PRIV_PASSWORD, write: true },
        { name: 'viewer', level: 'authNoPriv', authProtocol: 'sha512', authPassword: AUTH_PASSWORD, write: false },
      ],
      sinks: [],
      informRetries: 2,
      informTimeoutMs: 500,
      system: { sysName: 'test-router', sysLocation: 'lab' },
      ...overrides,
    });
    target = `udp:127.0.0.1:${agent.address.port}`;
    return agent;
  }

  /** Polls until the fake device has finished its operation. */
  async function waitForPhase(phases: string[]): Promise<void> {
    const deadline = Date.now() + 5000;
    while (!phases.includes(device.status().phase)) {
      if (Date.now() > deadline) throw new Error(`device stayed in phase ${device.status().phase}, expected ${phases.join(' or ')}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  beforeEach(async () => {
    temp = await makeTempDir();
    device = new FakeDevice();
  });

  afterEach(async () => {
    await agent?.close();
    agent = undefined;
    device.release();
    await temp.remove();
  });

  describe('reads', () => {
    it('snmpwalk lists every UPGRADE-MIB object', async function () {
      await start();
      const result = await runTool(this, 'snmpwalk', [...MIB_ARGS, '-v2c', '-c', 'public', target, 'UPGRADE-MIB::upgradeMIB']);

      expect(result.status, result.stderr).to.equal(0);
      for (const name of ['upgradeUrlPrefix', 'upgradeAction', 'upgradeSpinLock', 'upgradeOperStatus', 'upgradeFlashFreeBytes', 'upgradeSecurityCounter']) {
        expect(result.stdout).to.include(`UPGRADE-MIB::${name}.0 = `);
      }
      expect(result.stdout).to.include('UPGRADE-MIB::upgradeOperStatus.0 = INTEGER: idle(1)');
      expect(result.stdout).to.include('UPGRADE-MIB::upgradePlatform.0 = STRING: test-router');
    });

    it('flash sizes keep bytes beyond 32 bits', async function () {
      await start();
      const result = await runTool(this, 'snmpget', [
        ...MIB_ARGS, '-v2c', '-c', 'public', target,
        'UPGRADE-MIB::upgradeFlashSize.0', 'UPGRADE-MIB::upgradeFlashSizeBytes.0', 'UPGRADE-MIB::upgradeFlashFreeBytes.0',
      ]);

      expect(result.status, result.stderr).to.equal(0);
      expect(result.stdout).to.include('upgradeFlashSize.0 = Gauge32: 6291456 KiB');
      expect(result.stdout).to.include(`upgradeFlashSizeBytes.0 = STRING: ${6 * 1024 ** 3}`);
      expect(result.stdout).to.include(`upgradeFlashFreeBytes.0 = STRING: ${5 * 1024 ** 3 + 123}`);
    });

    it('snmpbulkwalk from the root over SNMPv3 authPriv', async function () {
      await start();
      const result = await runTool(this, 'snmpbulkwalk', [...MIB_ARGS, ...V3_WRITER, '-On', target, '.1']);

      expect(result.status, result.stderr).to.equal(0);
      const lines = result.stdout.trim().split('\n');
      expect(lines[0]).to.match(/^\.1\.3\.6\.1\.2\.1\.1\.1\.0 = STRING: /);
      expect(result.stdout).to.include(`.${scalarInstanceOid('upgradeFlashFreeBytes')} = `);
      // A walk of the whole tree ends with the agent's endOfMibView, which snmpbulkwalk prints this way.
      expect(lines.at(-1)).to.include('No more variables left in this MIB View');
    });

    it('snmpwalk from the root as the authNoPriv reader', async function () {
      await start();
      const result = await runTool(this, 'snmpwalk', [...MIB_ARGS, ...V3_READER, '-On', target, '.1']);

      expect(result.status, result.stderr).to.equal(0);
      expect(result.stdout).to.include(`.${scalarInstanceOid('upgradeRunningVersion')} = STRING: 67`);
    });

    it('serves IPv6 on ::1', async function () {
      await start({ listen: { host: '::1', port: await freeUdpPort('::1') } });
      const result = await runTool(this, 'snmpget', [...MIB_ARGS, '-v2c', '-c', 'public', `udp6:[::1]:${agent!.address.port}`, 'UPGRADE-MIB::upgradePlatform.0']);

      expect(agent!.address.family).to.equal('IPv6');
      expect(result.stdout).to.include('upgradePlatform.0 = STRING: test-router');
    });

    it('system group and snmpEngineBoots per start', async function () {
      await start();
      await agent!.close();
      await start();
      const result = await runTool(this, 'snmpget', [
        ...MIB_ARGS, '-v2c', '-c', 'public', '-On', target,
        '1.3.6.1.2.1.1.1.0', '1.3.6.1.2.1.1.2.0', '1.3.6.1.2.1.1.3.0', '1.3.6.1.2.1.1.5.0', '1.3.6.1.2.1.1.6.0', '1.3.6.1.6.3.10.2.1.2.0',
      ]);

      expect(result.status, result.stderr).to.equal(0);
      expect(agent!.engineBoots).to.equal(2);
      expect(result.stdout).to.match(/\.1\.3\.6\.1\.2\.1\.1\.1\.0 = STRING: .*UPGRADE-MIB/);
      expect(result.stdout).to.include('.1.3.6.1.2.1.1.2.0 = OID: .1.3.6.1.4.1.32473');
      expect(result.stdout).to.match(/\.1\.3\.6\.1\.2\.1\.1\.3\.0 = Timeticks: /);
      expect(result.stdout).to.include('.1.3.6.1.2.1.1.5.0 = STRING: test-router');
      expect(result.stdout).to.include('.1.3.6.1.6.3.10.2.1.2.0 = INTEGER: 2');
    });

    it('v3 keeps its engine ID across starts', async function () {
      const first = await start();
      await first.close();
      const second = await start();
      const result = await runTool(this, 'snmpget', [
        ...MIB_ARGS, ...V3_WRITER, '-On', '-Ox', target, '1.3.6.1.6.3.10.2.1.1.0', '1.3.6.1.6.3.10.2.1.2.0',
      ]);

      expect(result.status, result.stderr).to.equal(0);
      expect(second.engineId).to.equal(first.engineId);
      const engineId = /\.1\.3\.6\.1\.6\.3\.10\.2\.1\.1\.0 = Hex-STRING: ([0-9A-F \n]+)/.exec(result.stdout)?.[1];
      expect(engineId?.replace(/\s/g, '').toLowerCase()).to.equal(second.engineId);
      expect(result.stdout).to.include('.1.3.6.1.6.3.10.2.1.2.0 = INTEGER: 2');
    });
    it('v3 drops a request replayed after a restart', async function () {
      const first = await start();
      const relay = await UdpRelay.start(first.address.port);
      try {
        const result = await runTool(this, 'snmpget', [...MIB_ARGS, ...V3_WRITER, `udp:127.0.0.1:${relay.port}`, '1.3.6.1.2.1.1.5.0']);
        expect(result.stdout).to.include('STRING: test-router');
        // The first request is the discovery probe; the last one is authenticated and carries boots and time.
        const captured = relay.requests.at(-1)!;

        expect(await relay.replay(captured, first.address.port)).to.equal(true);
        await first.close();
        const second = await start({ listen: { host: '127.0.0.1', port: first.address.port } });

        expect(second.engineBoots).to.equal(first.engineBoots + 1);
        expect(await relay.replay(captured, second.address.port)).to.equal(false);
      } finally {
        relay.close();
      }
    });
  });

  describe('sets', () => {
    it('v2c snmpset of URL and action starts an upgrade', async function () {
      await start();
      const result = await runTool(this, 'snmpset', [
        ...MIB_ARGS, '-v2c', '-c', 'private', target,
        'UPGRADE-MIB::upgradeUrlPrefix.0', 's', 'tftp://127.0.0.1/patches/',
        'UPGRADE-MIB::upgradeAction.0', 'i', '2',
      ]);

      expect(result.status, result.stderr).to.equal(0);
      expect(result.stdout).to.include('upgradeAction.0 = INTEGER: upgrade(2)');
      expect(device.settingsValue.urlPrefix).to.equal('tftp://127.0.0.1/patches/');
      expect(device.startCount).to.equal(1);

      await waitForPhase(['installedPendingReload']);
      const boot = await runTool(this, 'snmpget', [...MIB_ARGS, '-v2c', '-c', 'public', target, 'UPGRADE-MIB::upgradeBootVersion.0', 'UPGRADE-MIB::upgradeOperStatus.0']);
      expect(boot.stdout).to.include('upgradeBootVersion.0 = STRING: 68');
      expect(boot.stdout).to.include('upgradeOperStatus.0 = INTEGER: installedPendingReload(7)');
    });

    it('v3 authPriv snmpset of URL and action', async function () {
      await start();
      const result = await runTool(this, 'snmpset', [
        ...MIB_ARGS, ...V3_WRITER, target,
        'UPGRADE-MIB::upgradeUrlPrefix.0', 's', 'http://127.0.0.1/p/',
        'UPGRADE-MIB::upgradeAction.0', 'i', 'check',
      ]);

      expect(result.status, result.stderr).to.equal(0);
      expect(device.settingsValue.urlPrefix).to.equal('http://127.0.0.1/p/');
      expect(device.startCount).to.equal(1);
      expect(device.status().action).to.equal('check');
    });

    it('spin lock makes a repeated SET run once', async function () {
      await start();
      const read = await runTool(this, 'snmpget', [...MIB_ARGS, '-v2c', '-c', 'private', '-Oqv', target, 'UPGRADE-MIB::upgradeSpinLock.0']);
      const lock = read.stdout.trim();
      expect(lock).to.match(/^\d+$/);
      const set = ['-v2c', '-c', 'private', target, 'UPGRADE-MIB::upgradeSpinLock.0', 'i', lock, 'UPGRADE-MIB::upgradeAction.0', 'i', '3'];

      const first = await runTool(this, 'snmpset', [...MIB_ARGS, ...set]);
      await waitForPhase(['idle']);
      const second = await runTool(this, 'snmpset', [...MIB_ARGS, ...set]);

      expect(first.status, first.stderr).to.equal(0);
      expect(second.status).to.not.equal(0);
      expect(second.stderr).to.include('inconsistentValue');
      expect(second.stderr).to.include('upgradeSpinLock.0');
      expect(device.startCount).to.equal(1);
      const after = await runTool(this, 'snmpget', [...MIB_ARGS, '-v2c', '-c', 'public', '-Oqv', target, 'UPGRADE-MIB::upgradeSpinLock.0']);
      expect(Number(after.stdout.trim())).to.equal((Number(lock) + 1) % 2 ** 31);
    });

    it('spin lock stays when the device turns busy', async function () {
      await start();
      const read = await runTool(this, 'snmpget', [...MIB_ARGS, '-v2c', '-c', 'private', '-Oqv', target, 'UPGRADE-MIB::upgradeSpinLock.0']);
      const lock = read.stdout.trim();
      device.busyOnNextStart = true;
      const set = await runTool(this, 'snmpset', [
        ...MIB_ARGS, '-v2c', '-c', 'private', target,
        'UPGRADE-MIB::upgradeSpinLock.0', 'i', lock,
        'UPGRADE-MIB::upgradeUrlPrefix.0', 's', 'tftp://127.0.0.1/',
        'UPGRADE-MIB::upgradeAction.0', 'i', '2',
      ]);

      expect(set.status).to.not.equal(0);
      expect(set.stderr, set.stderr).to.include('Reason: inconsistentValue');
      expect(device.startCount).to.equal(0);
      expect(device.settingsValue.urlPrefix).to.equal('');
      const after = await runTool(this, 'snmpget', [...MIB_ARGS, '-v2c', '-c', 'public', '-Oqv', target, 'UPGRADE-MIB::upgradeSpinLock.0']);
      expect(after.stdout.trim()).to.equal(lock);
    });

    it('read-only community gets noAccess', async function () {
      await start();
      const result = await runTool(this, 'snmpset', [
        ...MIB_ARGS, '-v2c', '-c', 'public', target, 'UPGRADE-MIB::upgradeUrlPrefix.0', 's', 'tftp://127.0.0.1/',
      ]);

      expect(result.status).to.not.equal(0);
      expect(result.stderr).to.include('noAccess');
      expect(device.settingsValue.urlPrefix).to.equal('');
    });

    it('read-only v3 user gets noAccess', async function () {
      await start();
      const result = await runTool(this, 'snmpset', [...MIB_ARGS, ...V3_READER, target, 'UPGRADE-MIB::upgradeAction.0', 'i', '2']);

      expect(result.status).to.not.equal(0);
      expect(result.stderr).to.include('noAccess');
      expect(device.startCount).to.equal(0);
    });

    it('no configuration means nobody may write', async function () {
      await start({ rwCommunities: [], users: [] });
      const result = await runTool(this, 'snmpset', [...MIB_ARGS, '-v2c', '-c', 'public', target, 'UPGRADE-MIB::upgradeAction.0', 'i', '2']);

      expect(result.stderr).to.include('noAccess');
      expect(device.startCount).to.equal(0);
    });

    /** Each case: extra snmpset options, the varbinds, the expected error status and the failed object. */
    const rejected: Array<{ name: string; options?: string[]; varbinds: string[]; status: string; failed: string }> = [
      // snmpset checks types and sizes against the MIB before sending; -m '' and -Ir keep it from doing so.
      { name: 'action as a string', options: ['-m', ''], varbinds: [NUMERIC_ACTION, 's', '2'], status: 'wrongType', failed: 'iso.3.6.1.4.1.32473.1.2.1.0' },
      { name: 'URL as an integer', options: ['-m', ''], varbinds: [NUMERIC_URL, 'i', '5'], status: 'wrongType', failed: 'iso.3.6.1.4.1.32473.1.1.1.0' },
      { name: 'empty URL', varbinds: ['UPGRADE-MIB::upgradeUrlPrefix.0', 's', ''], status: 'wrongLength', failed: 'UPGRADE-MIB::upgradeUrlPrefix.0' },
      {
        name: 'URL of 256 octets',
        options: ['-Ir'],
        varbinds: ['UPGRADE-MIB::upgradeUrlPrefix.0', 's', `tftp://${'a'.repeat(249)}`],
        status: 'wrongLength',
        failed: 'UPGRADE-MIB::upgradeUrlPrefix.0',
      },
      { name: 'scheme not allowed', varbinds: ['UPGRADE-MIB::upgradeUrlPrefix.0', 's', 'ftp://127.0.0.1/'], status: 'wrongValue', failed: 'UPGRADE-MIB::upgradeUrlPrefix.0' },
      { name: 'action out of range', options: ['-Ir'], varbinds: ['UPGRADE-MIB::upgradeAction.0', 'i', '9'], status: 'wrongValue', failed: 'UPGRADE-MIB::upgradeAction.0' },
      { name: 'abort while idle', varbinds: ['UPGRADE-MIB::upgradeAction.0', 'i', '4'], status: 'inconsistentValue', failed: 'UPGRADE-MIB::upgradeAction.0' },
      { name: 'read-only object', varbinds: ['UPGRADE-MIB::upgradeOperStatus.0', 'i', '1'], status: 'notWritable', failed: 'UPGRADE-MIB::upgradeOperStatus.0' },
      { name: 'unknown instance', varbinds: ['UPGRADE-MIB::upgradeAction.1', 'i', '2'], status: 'noCreation', failed: 'UPGRADE-MIB::upgradeAction.1' },
      {
        name: 'good URL then bad action',
        options: ['-Ir'],
        varbinds: ['UPGRADE-MIB::upgradeUrlPrefix.0', 's', 'tftp://127.0.0.1/', 'UPGRADE-MIB::upgradeAction.0', 'i', '0'],
        status: 'wrongValue',
        failed: 'UPGRADE-MIB::upgradeAction.0',
      },
      {
        name: 'good action then bad flash image',
        varbinds: ['UPGRADE-MIB::upgradeAction.0', 'i', '2', 'UPGRADE-MIB::upgradeFlashImage.0', 's', 'dir/image'],
        status: 'wrongValue',
        failed: 'UPGRADE-MIB::upgradeFlashImage.0',
      },
    ];
    for (const { name, options = [], varbinds, status, failed } of rejected) {
      it(`rejects ${name} with ${status}`, async function () {
        await start();
        const result = await runTool(this, 'snmpset', [...MIB_ARGS, ...options, '-v2c', '-c', 'private', target, ...varbinds]);

        expect(result.status).to.not.equal(0);
        expect(result.stderr).to.include(`Reason: ${status}`);
        expect(result.stderr).to.include(`Failed object: ${failed}`);
        expect(device.settingsValue).to.deep.equal({ urlPrefix: '', flashImage: '' });
        expect(device.startCount).to.equal(0);
      });
    }

    it('rejects a second upgrade while busy', async function () {
      await start();
      device.holdFetching = true;
      device.start('upgrade');
      const result = await runTool(this, 'snmpset', [...MIB_ARGS, '-v2c', '-c', 'private', target, 'UPGRADE-MIB::upgradeAction.0', 'i', '2']);

      expect(result.stderr).to.include('Reason: inconsistentValue');
      expect(device.startCount).to.equal(1);
      const status = await runTool(this, 'snmpget', [...MIB_ARGS, '-v2c', '-c', 'public', target, 'UPGRADE-MIB::upgradeOperStatus.0', 'UPGRADE-MIB::upgradeAction.0']);
      expect(status.stdout).to.include('fetching(2)');
      expect(status.stdout).to.include('upgradeAction.0 = INTEGER: upgrade(2)');
    });

    it('abort stops a running operation', async function () {
      await start();
      device.holdFetching = true;
      device.start('upgrade');
      const result = await runTool(this, 'snmpset', [...MIB_ARGS, '-v2c', '-c', 'private', target, 'UPGRADE-MIB::upgradeAction.0', 'i', 'abort']);

      expect(result.status, result.stderr).to.equal(0);
      await waitForPhase(['failed']);
      const status = await runTool(this, 'snmpget', [...MIB_ARGS, '-v2c', '-c', 'public', target, 'UPGRADE-MIB::upgradeFailCause.0']);
      expect(status.stdout).to.include('aborted(24)');
    });
    it('reload boots the installed image', async function () {
      const messages: string[] = [];
      await start({ log: (event) => event.event === 'reloaded' && messages.push(event.message) });
      device.start('upgrade');
      await waitForPhase(['installedPendingReload']);
      const result = await runTool(this, 'snmpset', [...MIB_ARGS, '-v2c', '-c', 'private', target, 'UPGRADE-MIB::upgradeAction.0', 'i', 'reload']);

      expect(result.status, result.stderr).to.equal(0);
      const running = await runTool(this, 'snmpget', [...MIB_ARGS, '-v2c', '-c', 'public', target, 'UPGRADE-MIB::upgradeRunningVersion.0', 'UPGRADE-MIB::upgradeOperStatus.0']);
      expect(running.stdout).to.include('upgradeRunningVersion.0 = STRING: 68');
      expect(running.stdout).to.include('upgradeOperStatus.0 = INTEGER: idle(1)');
      for (let wait = 0; messages.length === 0 && wait < 50; wait++) await delay(20);
      expect(messages).to.deep.equal(['reloaded by a SET: iwlwifi-cc-a0-68.ucode (version 68) now runs']);
    });
  });

  describe('notifications', () => {
    let receiver: TrapReceiver | undefined;

    afterEach(async () => {
      await receiver?.stop();
      receiver = undefined;
    });

    async function startReceiver(context: Mocha.Context): Promise<number> {
      const port = await freeUdpPort();
      const config = join(temp.path, 'snmptrapd.conf');
      await writeFile(config, 'disableAuthorization yes\n');
      receiver = await TrapReceiver.start(context, port, config);
      return port;
    }

    for (const inform of [false, true]) {
      it(`snmptrapd receives upgradeCompleted as ${inform ? 'an inform' : 'a trap'}`, async function () {
        const port = await startReceiver(this);
        await start({ sinks: [{ host: '127.0.0.1', port, version: '2c', community: 'public', inform }] });
        device.start('upgrade');
        await waitForPhase(['installedPendingReload']);
        await agent!.notificationsSettled();

        const line = await receiver!.waitFor(/UPGRADE-MIB::upgradeCompleted[^\n]*/, 5000);
        expect(receiver!.output).to.include('UPGRADE-MIB::upgradeStarted');
        expect(line).to.include('UPGRADE-MIB::upgradePatchName.0 = STRING: test-router-67.patch');
        expect(line).to.include('UPGRADE-MIB::upgradeSourceVersion.0 = STRING: 67');
        expect(line).to.include('UPGRADE-MIB::upgradeTargetVersion.0 = STRING: 68');
        expect(line).to.include('UPGRADE-MIB::upgradeOperStatus.0 = INTEGER: installedPendingReload(7)');
        expect(line).to.include('UPGRADE-MIB::upgradeFailCause.0 = INTEGER: none(1)');
        expect(line).to.match(/UPGRADE-MIB::upgradeEndTime\.0 = STRING: \d{4}-\d{1,2}-\d{1,2},/);
      });
    }

    for (const inform of [false, true]) {
      it(`snmptrapd receives an SNMPv3 authPriv ${inform ? 'inform' : 'trap'}`, async function () {
        const port = await freeUdpPort();
        const failures: string[] = [];
        const log = (event: AgentLogEvent) => event.event === 'notificationFailed' && failures.push(event.message);
        await start({ sinks: [{ host: '127.0.0.1', port, version: '3', user: 'operator', inform }], log });
        // A trap is sent with the agent's engine ID, an inform with snmptrapd's own, which it discovers.
        const engine = inform ? '' : `-e 0x${agent!.engineId} `;
        const config = join(temp.path, 'snmptrapd-v3.conf');
        await writeFile(config, `createUser ${engine}operator SHA-256 ${AUTH_PASSWORD} AES ${PRIV_PASSWORD}\nauthUser log operator authPriv\n`);
        receiver = await TrapReceiver.start(this, port, config);

        device.start('check');
        await waitForPhase(['idle']);
        await agent!.notificationsSettled();

        expect(failures).to.deep.equal([]);
        const line = await receiver.waitFor(/UPGRADE-MIB::upgradeCompleted[^\n]*/, 5000);
        expect(line).to.include('UPGRADE-MIB::upgradeOperStatus.0 = INTEGER: idle(1)');
      });
    }

    it('snmptrapd receives upgradeFailed with the cause', async function () {
      const port = await startReceiver(this);
      await start({ sinks: [{ host: '127.0.0.1', port, version: '2c', community: 'public', inform: false }] });
      device.failWith = { cause: 'badSignature', reason: 'signature check failed: expected a vendor key, got key 3f2a' };
      device.start('upgrade');
      await waitForPhase(['failed']);
      await agent!.notificationsSettled();

      const line = await receiver!.waitFor(/UPGRADE-MIB::upgradeFailed[^\n]*/, 5000);
      expect(line).to.include('UPGRADE-MIB::upgradeFailCause.0 = INTEGER: badSignature(10)');
      expect(line).to.include('UPGRADE-MIB::upgradeFailReason.0 = STRING: signature check failed: expected a vendor key, got key 3f2a');
      expect(line).to.include('upgradeOperStatus.0 = INTEGER: failed(8)');
    });

    it('an unacknowledged inform is given up after its retries', async function () {
      const port = await freeUdpPort();
      const events: string[] = [];
      await start({
        sinks: [{ host: '127.0.0.1', port, version: '2c', community: 'public', inform: true }],
        informRetries: 1,
        informTimeoutMs: 200,
        log: (event) => events.push(event.event),
      });
      device.start('check');
      await waitForPhase(['idle']);
      await agent!.notificationsSettled();

      expect(events.filter((event) => event === 'notificationFailed')).to.have.length(2);
    });

    it('history table records finished operations', async function () {
      await start();
      device.start('check');
      await waitForPhase(['idle']);
      await agent!.notificationsSettled();
      const result = await runTool(this, 'snmpwalk', [...MIB_ARGS, '-v2c', '-c', 'public', target, 'UPGRADE-MIB::upgradeHistoryTable']);

      expect(result.stdout).to.include('UPGRADE-MIB::upgradeHistoryAction.1 = INTEGER: check(3)');
      expect(result.stdout).to.include('UPGRADE-MIB::upgradeHistoryResult.1 = INTEGER: checked(3)');
      expect(result.stdout).to.include('UPGRADE-MIB::upgradeHistoryTargetVersion.1 = STRING: 68');

      // The rows come back from the state file after a restart.
      await agent!.close();
      await start();
      const restarted = await runTool(this, 'snmpget', [...MIB_ARGS, '-v2c', '-c', 'public', target, 'UPGRADE-MIB::upgradeHistoryResult.1']);
      expect(restarted.stdout).to.include('UPGRADE-MIB::upgradeHistoryResult.1 = INTEGER: checked(3)');

      const write = await runTool(this, 'snmpset', [...MIB_ARGS, '-v2c', '-c', 'private', target, 'UPGRADE-MIB::upgradeHistoryResult.1', 'i', '4']);
      expect(write.stderr).to.include('Reason: notWritable');
    });
  });
});
