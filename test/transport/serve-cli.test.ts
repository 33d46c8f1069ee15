import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { copyFile, mkdir } from 'node:fs/promises';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';

import { defaultFetcher } from '../../transport/index.js';
import { FIRMWARE_DIR, REPO_ROOT, freeTcpPort, freeUdpPort, makeTempDir, runProgram } from '../support/index.js';
import { sha256File } from './helpers.js';

describe('serve command', function () {
  this.timeout(30_000);
  let dir: { path: string; remove: () => Promise<void> };
  let root: string;

  beforeEach(async () => {
    dir = await makeTempDir();
    root = join(dir.path, 'patches');
    await mkdir(root);
    await copyFile(join(FIRMWARE_DIR, 'iwlwifi-cc-a0-68.ucode'), join(root, 'iwlwifi-cc-a0-68.ucode'));
  });
  afterEach(() => dir.remove());

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`serves both protocols and stops on ${signal}`, async () => {
      const tftpPort = await freeUdpPort();
      const httpPort = await freeTcpPort();
      const child = spawn(process.execPath, [join(REPO_ROOT, 'dist/cli/main.js'), 'serve', '--root', root, '--tftp', `127.0.0.1:${tftpPort}`, '--http', `127.0.0.1:${httpPort}`], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const exited = once(child, 'exit');

      try {
        const deadline = Date.now() + 10_000;
        while (!output.includes('serving')) {
          if (Date.now() > deadline || child.exitCode !== null) throw new Error(`serve did not start: ${output}`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        expect(output).to.match(new RegExp(`serving .* on tftp 127\\.0\\.0\\.1:${tftpPort}, http 127\\.0\\.0\\.1:${httpPort}`));

        for (const url of [`tftp://127.0.0.1:${tftpPort}/iwlwifi-cc-a0-68.ucode`, `http://127.0.0.1:${httpPort}/iwlwifi-cc-a0-68.ucode`]) {
          const staging = join(dir.path, 'staging.bin');
          await defaultFetcher.fetchToFile(url, staging, { maxBytes: 10_000_000, timeoutMs: 10_000 });
          expect(await sha256File(staging)).to.equal(await sha256File(join(root, 'iwlwifi-cc-a0-68.ucode')));
        }
      } finally {
        child.kill(signal);
      }

      const [code] = await exited;
      expect(code).to.equal(0);
      const lines = output.trim().split('\n');
      expect(lines.filter((line) => / tftp client=127\.0\.0\.1:\d+ file="iwlwifi-cc-a0-68\.ucode" bytes=1314392 duration_ms=\d+ result=ok$/.test(line))).to.have.length(1);
      expect(lines.filter((line) => / http client=127\.0\.0\.1:\d+ file="iwlwifi-cc-a0-68\.ucode" bytes=1314392 duration_ms=\d+ result=ok$/.test(line))).to.have.length(1);
      expect(lines.at(-2)).to.match(new RegExp(`stopping on ${signal}$`));
      expect(lines.at(-1)).to.match(/stopped$/);
    });
  }

  it('rejects a missing folder', async () => {
    const result = await runProgram(['serve', '--root', join(dir.path, 'missing'), '--tftp', `127.0.0.1:${await freeUdpPort()}`]);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.match(/patch folder .*missing not found: expected an existing folder to serve \(cause: invalidArgument\)/);
  });

  it('names an HTTP port already in use', async () => {
    const occupied = createServer();
    occupied.listen(0, '127.0.0.1');
    await once(occupied, 'listening');
    const { port } = occupied.address() as AddressInfo;
    try {
      const result = await runProgram(['serve', '--root', root, '--http', `127.0.0.1:${port}`]);
      expect(result.status).to.equal(1);
      expect(result.stderr).to.match(new RegExp(`^snmp-upgrade: cannot serve HTTP on 127\\.0\\.0\\.1:${port}: listen EADDRINUSE.*\\(cause: invalidArgument\\)\\n$`));
    } finally {
      occupied.close();
    }
  });

  it('names a TFTP port already in use', async () => {
    const occupied = createSocket('udp4');
    occupied.bind(0, '127.0.0.1');
    await once(occupied, 'listening');
    const { port } = occupied.address();
    const httpPort = await freeTcpPort();
    try {
      const result = await runProgram(['serve', '--root', root, '--http', `127.0.0.1:${httpPort}`, '--tftp', `127.0.0.1:${port}`]);
      expect(result.status).to.equal(1);
      expect(result.stderr).to.match(new RegExp(`^snmp-upgrade: cannot serve TFTP on 127\\.0\\.0\\.1:${port}: bind EADDRINUSE.*\\(cause: invalidArgument\\)\\n$`));
    } finally {
      occupied.close();
    }
  });

  for (const blksize of ['7', '70000']) {
    it(`rejects --tftp-max-blksize ${blksize}`, async () => {
      const result = await runProgram(['serve', '--root', root, '--tftp', `127.0.0.1:${await freeUdpPort()}`, '--tftp-max-blksize', blksize]);
      expect(result.status).to.equal(1);
      expect(result.stderr).to.include(`invalid TFTP maximum blksize ${blksize}: expected an integer from 8 to 65464`);
    });
  }

  it('rejects a malformed address', async () => {
    const result = await runProgram(['serve', '--root', root, '--http', 'localhost']);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.include('invalid --http "localhost": expected HOST:PORT such as 127.0.0.1:6969 or [::1]:6969');
  });
});
