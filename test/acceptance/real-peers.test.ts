/**
 * Acceptance on real firmware with the peers operators use: tftpd-hpa or this product's patch server,
 * Net-SNMP's snmpset to trigger, snmptrapd to receive the notification, and the agent as a separate process.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { FIRMWARE_DIR, REPO_ROOT, freeTcpPort, freeUdpPort, makeTempDir, requirePeer, requireTftpdHpa, runProgram } from '../support/index.js';
import { startProcess, startProgram, type RunningProcess } from '../support/process.js';
import { sha256, snapshotFlash } from '../upgrade/fixtures.js';

const run = promisify(execFile);
const MIB_OPTIONS = ['-M', `+${join(REPO_ROOT, 'node_modules/net-snmp/lib/mibs')}:${REPO_ROOT}`, '-m', 'SNMPv2-MIB:UPGRADE-MIB'];

const V3_OPERATOR = {
  name: 'operator', level: 'authPriv', authProtocol: 'sha256', authPassword: 'auth-secret-1', privProtocol: 'aes', privPassword: 'priv-secret-1', write: true,
};
const V3_SECURITY = ['-v3', '-l', 'authPriv', '-u', 'operator', '-a', 'SHA-256', '-A', 'auth-secret-1', '-x', 'AES', '-X', 'priv-secret-1'];

interface Pair {
  platform: string;
  old: string;
  new: string;
  from: string;
  to: string;
}

const IWLWIFI: Pair = { platform: 'iwlwifi-cc-a0', old: 'iwlwifi-cc-a0-67.ucode', new: 'iwlwifi-cc-a0-68.ucode', from: '67', to: '68' };
const RPI4: Pair = { platform: 'rpi4-recovery', old: 'rpi4-recovery-2026-05-17.bin', new: 'rpi4-recovery-2026-08-04.bin', from: '2026-05-17', to: '2026-08-04' };

describe('acceptance with real peers', function () {
  this.timeout(120_000);
  let temp: { path: string; remove: () => Promise<void> };
  const processes: RunningProcess[] = [];

  beforeEach(async () => {
    temp = await makeTempDir();
    await cli(['keygen', '--out', join(temp.path, 'vendor')]);
  });
  afterEach(async () => {
    await Promise.all(processes.splice(0).map((running) => running.stop()));
    await temp.remove();
  });

  async function cli(args: string[]): Promise<string> {
    const result = await runProgram(args);
    expect(result.status, `snmp-upgrade ${args.join(' ')}\n${result.stderr}`).to.equal(0);
    return result.stdout;
  }

  /** Creates the signed patch for a pair in `folder` and returns its path. */
  async function publish(pair: Pair, folder: string): Promise<string> {
    const out = await cli([
      'patch', 'create', '--old', join(FIRMWARE_DIR, pair.old), '--new', join(FIRMWARE_DIR, pair.new), '--platform', pair.platform,
      '--from', pair.from, '--to', pair.to, '--counter', '2', '--key', join(temp.path, 'vendor.key'), '--out', folder,
    ]);
    return out.trim();
  }

  /** Makes a flash holding the pair's old image and starts the agent and snmptrapd; returns their ports. */
  async function startDevice(context: Mocha.Context, pair: Pair) {
    const snmptrapd = requirePeer(context, 'snmptrapd', ['/usr/sbin/snmptrapd']);
    const flash = join(temp.path, 'flash');
    await cli([
      'flash', 'init', '--flash', flash, '--size', '8M', '--platform', pair.platform, '--image', 'core.img', '--version', pair.from,
      '--from', join(FIRMWARE_DIR, pair.old), '--trust-key', join(temp.path, 'vendor.pub'),
    ]);

    const trapPort = await freeUdpPort();
    const trapConfig = join(temp.path, 'snmptrapd.conf');
    await writeFile(trapConfig, 'disableAuthorization yes\n');
    const trapd = startProcess(snmptrapd, ['-f', '-Lo', '-C', '-c', trapConfig, ...MIB_OPTIONS, `udp:127.0.0.1:${trapPort}`]);
    processes.push(trapd);
    await trapd.waitFor(/NET-SNMP version/);

    const agentPort = await freeUdpPort();
    const config = join(temp.path, 'agent.json');
    await writeFile(config, JSON.stringify({ users: [V3_OPERATOR] }));
    const agent = startProgram([
      'agent', '--flash', flash, '--listen', `127.0.0.1:${agentPort}`, '--ro-community', 'public', '--rw-community', 'private',
      '--trap-sink', `127.0.0.1:${trapPort}/public`, '--config', config,
    ]);
    processes.push(agent);
    await agent.waitFor(/event=agentStarted/);
    return { flash, agentPort, trapd };
  }

  async function snmpset(context: Mocha.Context, port: number, urlPrefix: string, security = ['-v2c', '-c', 'private']): Promise<void> {
    const command = requirePeer(context, 'snmpset', ['/usr/bin/snmpset']);
    await run(command, [
      ...security, ...MIB_OPTIONS, `127.0.0.1:${port}`,
      'UPGRADE-MIB::upgradeUrlPrefix.0', 's', urlPrefix, 'UPGRADE-MIB::upgradeAction.0', 'i', '2',
    ]);
  }

  async function bootSha256(flash: string): Promise<string> {
    return JSON.parse(await cli(['flash', 'show', '--flash', flash, '--json'])).bootSha256;
  }

  it('upgrades iwlwifi 67 to 68 from tftpd-hpa on snmpset', async function () {
    const tftpd = requireTftpdHpa(this);
    const served = join(temp.path, 'tftpboot');
    await publish(IWLWIFI, served);
    const tftpPort = await freeUdpPort();
    processes.push(startProcess(tftpd, ['-L', '-a', `127.0.0.1:${tftpPort}`, '-s', served]));

    const { flash, agentPort, trapd } = await startDevice(this, IWLWIFI);
    await snmpset(this, agentPort, `tftp://127.0.0.1:${tftpPort}/`);

    const trap = await trapd.waitFor(/UPGRADE-MIB::upgradeCompleted.*\n?.*/, 30_000);
    expect(trap[0]).to.include('upgradePatchName.0 = STRING: iwlwifi-cc-a0_67.patch');
    expect(trapd.output()).to.match(/upgradeTargetVersion\.0 = STRING: 68/);
    const expected = sha256(await readFile(join(FIRMWARE_DIR, IWLWIFI.new)));
    expect(await bootSha256(flash)).to.equal(expected);

    const snmpget = requirePeer(this, 'snmpget', ['/usr/bin/snmpget']);
    const { stdout } = await run(snmpget, ['-v2c', '-c', 'public', ...MIB_OPTIONS, `127.0.0.1:${agentPort}`, 'UPGRADE-MIB::upgradeBootVersion.0']);
    expect(stdout.trim()).to.equal('UPGRADE-MIB::upgradeBootVersion.0 = STRING: 68');
  });

  it('upgrades the rpi4 pair over HTTP on an SNMPv3 authPriv SET', async function () {
    const served = join(temp.path, 'www');
    await publish(RPI4, served);
    const httpPort = await freeTcpPort();
    const server = startProgram(['serve', '--root', served, '--http', `127.0.0.1:${httpPort}`]);
    processes.push(server);
    await server.waitFor(/serving .* on http 127\.0\.0\.1:\d+/);

    const { flash, agentPort, trapd } = await startDevice(this, RPI4);
    await snmpset(this, agentPort, `http://127.0.0.1:${httpPort}/`, V3_SECURITY);

    await trapd.waitFor(/UPGRADE-MIB::upgradeCompleted/, 30_000);
    expect(trapd.output()).to.match(/upgradePatchName\.0 = STRING: rpi4-recovery_2026-05-17\.patch/);
    const expected = sha256(await readFile(join(FIRMWARE_DIR, RPI4.new)));
    expect(await bootSha256(flash)).to.equal(expected);
    expect(server.output()).to.match(/http client=127\.0\.0\.1:\d+ file="rpi4-recovery_2026-05-17\.patch" bytes=\d+ duration_ms=\d+ result=ok/);
  });

  it('refuses the rpi4 patch saved under the iwlwifi name', async function () {
    const served = join(temp.path, 'www');
    const rpi4Patch = await publish(RPI4, join(temp.path, 'made'));
    await mkdir(served);
    await copyFile(rpi4Patch, join(served, 'iwlwifi-cc-a0_67.patch'));
    const httpPort = await freeTcpPort();
    const server = startProgram(['serve', '--root', served, '--http', `127.0.0.1:${httpPort}`]);
    processes.push(server);
    await server.waitFor(/serving .* on http 127\.0\.0\.1:\d+/);

    const { flash, agentPort, trapd } = await startDevice(this, IWLWIFI);
    // The SET stores the URL prefix, as it should; apart from it, images, staging and NVRAM must not change.
    const images = async () => {
      const { urlPrefix, ...shown } = JSON.parse(await cli(['flash', 'show', '--flash', flash, '--json']));
      return { images: await snapshotFlash(join(flash, 'images')), staging: await snapshotFlash(join(flash, 'staging')), shown, urlPrefix: typeof urlPrefix };
    };
    const before = await images();
    await snmpset(this, agentPort, `http://127.0.0.1:${httpPort}/`);

    await trapd.waitFor(/UPGRADE-MIB::upgradeFailed/, 30_000);
    expect(trapd.output()).to.match(/upgradeFailCause\.0 = INTEGER: (sourceMismatch|wrongPlatform)\(\d+\)/);
    expect(await images()).to.deep.equal(before);
    expect(await bootSha256(flash)).to.equal(sha256(await readFile(join(FIRMWARE_DIR, IWLWIFI.old))));
  });
});
