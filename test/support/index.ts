import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, found from the compiled file's place in dist/test/support. */
export const REPO_ROOT = resolve(fileURLToPath(import.meta.url), '../../../..');

/** The real firmware pairs kept beside the repository. */
export const FIRMWARE_DIR = resolve(REPO_ROOT, '../shared/firmware');

/** Creates a fresh temporary folder; the returned function removes it. */
export async function makeTempDir(prefix = 'snmp-upgrade-test-'): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** A temporary folder with a served `patches` folder containing `a.patch`, and a staging path beside it. */
export interface PatchFolder {
  path: string;
  root: string;
  staging: string;
  remove: () => Promise<void>;
}

/** Creates a PatchFolder whose `patches/a.patch` contains `content`, for the transport tests. */
export async function makePatchFolder(content: Uint8Array): Promise<PatchFolder> {
  const dir = await makeTempDir();
  const root = join(dir.path, 'patches');
  await mkdir(root);
  await writeFile(join(root, 'a.patch'), content);
  return { ...dir, root, staging: join(dir.path, 'staging.bin') };
}

/** Picks a TCP port that is free on the loopback address at the time of the call. */
export function freeTcpPort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** Picks a UDP port that is free on the loopback address at the time of the call. */
export function freeUdpPort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    socket.once('error', reject);
    socket.bind(0, host, () => {
      const port = socket.address().port;
      socket.close(() => resolvePort(port));
    });
  });
}

/**
 * Returns the path of an external peer program (Net-SNMP tools, TFTP servers, bsdiff...), looking in the
 * given candidate paths and then on PATH. Under CI=true a missing peer fails the test; elsewhere it skips it.
 */
export function requirePeer(context: Mocha.Context, name: string, candidates: string[] = []): string {
  const searchPath = name.includes(' ') ? [] : (process.env.PATH ?? '').split(':').map((dir) => join(dir, name));
  const found = [...candidates, ...searchPath].find((path) => existsSync(path));
  if (found) return found;
  if (process.env.CI === 'true') {
    throw new Error(`peer program ${name} not found (looked in ${[...candidates, 'PATH'].join(', ')}); .ci/run installs it`);
  }
  context.skip();
}

/** Result of running the compiled `snmp-upgrade` program as a child process. */
export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs the compiled `snmp-upgrade` program with the given arguments, as an operator would. */
export function runProgram(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  const program = join(REPO_ROOT, 'dist/cli/main.js');
  return new Promise((resolveRun) => {
    execFile(
      process.execPath,
      [program, ...args],
      { cwd: options.cwd, env: { ...process.env, ...options.env }, timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const status = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolveRun({ status, stdout, stderr });
      },
    );
  });
}

/** Where .ci/run unpacks tftpd-hpa's server, which Debian will not install beside atftpd. */
export const TFTPD_HPA_PATH = '/opt/tftpd-hpa/usr/sbin/in.tftpd';

/**
 * Returns the path of tftpd-hpa's in.tftpd. Only its unpacked location counts: the atftpd package installs
 * /usr/sbin/in.tftpd as a link to atftpd, so a PATH lookup would test the wrong server.
 */
export function requireTftpdHpa(context: Mocha.Context): string {
  return requirePeer(context, 'tftpd-hpa in.tftpd', [TFTPD_HPA_PATH]);
}
