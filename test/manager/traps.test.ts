import { expect } from 'chai';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import snmp, { type Session, type Varbind } from 'net-snmp';

import { FAIL_CAUSES } from '../../errors/index.js';
import { OPER_STATUS, notificationOid, scalarInstanceOid } from '../../mib/index.js';
import { parseCsvInventory, runUpgrades, type RunEvent } from '../../manager/index.js';
import { freeUdpPort, makeTempDir, runProgram } from '../support/index.js';
import { FROM_VERSION, TO_VERSION, publishFirmwarePatch, startFleet, type Fleet } from './fleet.js';

const USER = { name: 'ops', level: 'authPriv', authProtocol: 'sha256', authPassword: 'auth-pass-1', privProtocol: 'aes', privPassword: 'priv-pass-1', write: true } as const;

function upgradeVarbinds(phase: keyof typeof OPER_STATUS, cause: keyof typeof FAIL_CAUSES, reason: string): Varbind[] {
  const text = (value: string) => ({ type: snmp.ObjectType.OctetString, value: Buffer.from(value) });
  return [
    { oid: scalarInstanceOid('upgradePatchName'), ...text('rpi4-recovery_2026-05-17.patch') },
    { oid: scalarInstanceOid('upgradeSourceVersion'), ...text(FROM_VERSION) },
    { oid: scalarInstanceOid('upgradeTargetVersion'), ...text(TO_VERSION) },
    { oid: scalarInstanceOid('upgradeOperStatus'), type: snmp.ObjectType.Integer, value: OPER_STATUS[phase] },
    { oid: scalarInstanceOid('upgradeFailCause'), type: snmp.ObjectType.Integer, value: FAIL_CAUSES[cause] },
    { oid: scalarInstanceOid('upgradeFailReason'), ...text(reason) },
  ];
}

function send(session: Session, kind: 'trap' | 'inform', oid: string, varbinds: Varbind[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (error: Error | null) => (error ? reject(error) : resolve());
    if (kind === 'inform') session.inform(oid, varbinds, {}, done);
    else session.trap(oid, varbinds, {}, done);
  });
}

describe('manager traps', function () {
  this.timeout(60_000);
  let dir: { path: string; remove: () => Promise<void> };
  beforeEach(async () => (dir = await makeTempDir('snmp-upgrade-traps-')));
  afterEach(async () => dir.remove());

  it('prints v2c, inform and v3 notifications', async () => {
    const port = await freeUdpPort();
    const inventory = join(dir.path, 'fleet.csv');
    await writeFile(inventory, `host,port,version,user,auth-protocol,auth-key,priv-protocol,priv-key\n127.0.0.1,161,3,ops,sha256,${USER.authPassword},aes,${USER.privPassword}\n`);
    const program = runProgram(['manager', 'traps', '--listen', `127.0.0.1:${port}`, '--count', '3', '--json', '--inventory', inventory]);

    // The inform is sent again until the listener, which starts in the child process, acknowledges it.
    const v2 = snmp.createSession('127.0.0.1', 'trap-community', { version: snmp.Version2c, trapPort: port, retries: 20, timeout: 300 });
    await send(v2, 'inform', notificationOid('upgradeFailed'), upgradeVarbinds('failed', 'wrongPlatform', 'patch is for rpi4-other'));
    await send(v2, 'trap', '1.3.6.1.6.3.1.1.5.1', [{ oid: '1.3.6.1.2.1.1.5.0', type: snmp.ObjectType.OctetString, value: Buffer.from('lab-router') }]);
    v2.close();

    // SNMPv3 inform: the sender first discovers the listener's engine ID, so the listener must respond to discovery.
    const v3 = snmp.createV3Session(
      '127.0.0.1',
      { name: USER.name, level: snmp.SecurityLevel.authPriv, authProtocol: snmp.AuthProtocols.sha256, authKey: USER.authPassword, privProtocol: snmp.PrivProtocols.aes, privKey: USER.privPassword },
      { version: snmp.Version3, trapPort: port, retries: 5, timeout: 500 },
    );
    await send(v3, 'inform', notificationOid('upgradeCompleted'), upgradeVarbinds('installedPendingReload', 'none', ''));
    v3.close();

    const run = await program;
    expect(run.status, run.stderr).to.equal(0);
    const lines = run.stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(lines).to.have.length(3);

    expect(lines[0]).to.include({ event: 'notification', version: '2c', kind: 'inform', name: 'upgradeFailed' });
    expect(lines[0].upgrade).to.deep.equal({
      patchName: 'rpi4-recovery_2026-05-17.patch',
      sourceVersion: FROM_VERSION,
      targetVersion: TO_VERSION,
      phase: 'failed',
      failCause: 'wrongPlatform',
      failReason: 'patch is for rpi4-other',
    });
    expect(lines[1]).to.include({ version: '2c', kind: 'trap', name: '1.3.6.1.6.3.1.1.5.1' });
    expect(lines[1].varbinds).to.deep.equal([{ oid: '1.3.6.1.2.1.1.5.0', value: 'lab-router' }]);
    expect(lines[2]).to.include({ version: '3', kind: 'inform', name: 'upgradeCompleted' });
    expect(lines[2].upgrade.phase).to.equal('installedPendingReload');
    expect(run.stdout).to.not.include('trap-community');
  });

  it('prints one readable line', async () => {
    const port = await freeUdpPort();
    const program = runProgram(['manager', 'traps', '--listen', `127.0.0.1:${port}`, '--count', '1']);
    const v2 = snmp.createSession('127.0.0.1', 'public', { version: snmp.Version2c, trapPort: port, retries: 20, timeout: 300 });
    await send(v2, 'inform', notificationOid('upgradeFailed'), upgradeVarbinds('failed', 'insufficientFlash', 'need 100,140 bytes'));
    v2.close();

    const run = await program;
    expect(run.status, run.stderr).to.equal(0);
    expect(run.stdout).to.match(
      /^\S+Z 127\.0\.0\.1:\d+ v2c inform upgradeFailed patch=rpi4-recovery_2026-05-17\.patch 2026-05-17 -> 2026-08-04 status=failed cause=insufficientFlash reason="need 100,140 bytes"\n$/,
    );
  });

  it('rejects a listen port of 0', async () => {
    const run = await runProgram(['manager', 'traps', '--listen', '127.0.0.1:0']);
    expect(run.status).to.equal(1);
    expect(run.stderr).to.match(/invalid --listen address: expected a port from 1 to 65535, got 0 \(cause: invalidArgument\)/);
  });
});

describe('manager over SNMPv3', function () {
  this.timeout(60_000);
  let dir: { path: string; remove: () => Promise<void> };
  let fleet: Fleet | undefined;
  beforeEach(async () => (dir = await makeTempDir('snmp-upgrade-v3-')));
  afterEach(async () => {
    await fleet?.close();
    await dir.remove();
  });

  it('upgrades with USM and hears v3 informs', async () => {
    const source = await publishFirmwarePatch(dir.path);
    const trapPort = await freeUdpPort();
    fleet = await startFleet({ root: dir.path, count: 1, trustedKey: source.trustedKey, trapSink: { host: '127.0.0.1', port: trapPort }, setups: new Map([[0, { usmUser: USER }]]) });
    const agent = fleet.agents[0]!;
    const devices = parseCsvInventory(
      `host,port,version,user,auth-protocol,auth-key,priv-protocol,priv-key\n127.0.0.1,${agent.port},3,ops,sha256,${USER.authPassword},aes,${USER.privPassword}\n`,
    );
    const events: RunEvent[] = [];
    const summary = await runUpgrades(devices, {
      urlPrefix: source.urlPrefix,
      concurrency: 1,
      traps: { host: '127.0.0.1', port: trapPort },
      timing: { pollIntervalMs: 1000 },
      onEvent: (event) => events.push(event),
    });
    expect([summary.devices[0]!.result, summary.devices[0]!.to]).to.deep.equal(['upgraded', TO_VERSION]);
    // Both informs arrive: the agent sets its notification session's port to the sink's, because net-snmp 3.29
    // sends a v3 inform that follows engine discovery to the session's port instead of its trapPort.
    const names = events.filter((event) => event.event === 'trap').map((event) => (event as { name: string }).name);
    expect(names).to.include('upgradeStarted');
    expect(names).to.include('upgradeCompleted');
  });
});
