import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { join } from 'node:path';

import { REPO_ROOT, requirePeer } from '../support/index.js';

export interface ToolResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** MIB options for Net-SNMP's tools: net-snmp's base modules and the repository root, where MIB-UPGRADE.txt is. */
export const MIB_ARGS = ['-M', `+${join(REPO_ROOT, 'node_modules/net-snmp/lib/mibs')}:${REPO_ROOT}`, '-m', '+UPGRADE-MIB'];

/** Runs a Net-SNMP tool found with requirePeer, with a short timeout and no retries unless given. */
export function runTool(context: Mocha.Context, name: string, args: string[]): Promise<ToolResult> {
  const program = requirePeer(context, name, [`/usr/bin/${name}`, `/usr/sbin/${name}`]);
  return new Promise((resolve) => {
    execFile(program, args, { timeout: 20_000 }, (error, stdout, stderr) => {
      let status = 0;
      if (error) status = typeof error.code === 'number' ? error.code : 1;
      resolve({ status, stdout, stderr });
    });
  });
}

/** A foreground snmptrapd whose log lines are collected as they arrive. */
export class TrapReceiver {
  output = '';
  private constructor(private readonly child: ChildProcess) {
    child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
  }

  /** Starts snmptrapd on 127.0.0.1:port with the given configuration file, and waits until it listens. */
  static async start(context: Mocha.Context, port: number, configFile: string): Promise<TrapReceiver> {
    const program = requirePeer(context, 'snmptrapd', ['/usr/sbin/snmptrapd']);
    const child = spawn(program, ['-f', '-Lo', '-C', '-c', configFile, ...MIB_ARGS, '-n', `udp:127.0.0.1:${port}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const receiver = new TrapReceiver(child);
    await receiver.waitFor(/NET-SNMP version|Starting snmptrapd/, 10_000);
    return receiver;
  }

  async waitFor(pattern: RegExp, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const match = pattern.exec(this.output);
      if (match) return match[0];
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`snmptrapd output did not match ${pattern} within ${timeoutMs} ms; output:\n${this.output}`);
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null) return resolve();
      this.child.once('exit', () => resolve());
      this.child.kill('SIGTERM');
    });
  }
}

/** A loopback UDP relay between a tool and the agent that records the requests, so a test can replay one. */
export class UdpRelay {
  readonly requests: Buffer[] = [];
  private client: RemoteInfo | undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly agentPort: number,
  ) {
    socket.on('message', (message, rinfo) => {
      if (rinfo.port === this.agentPort) {
        if (this.client) socket.send(message, this.client.port, this.client.address);
        return;
      }
      this.client = rinfo;
      this.requests.push(message);
      socket.send(message, this.agentPort, '127.0.0.1');
    });
  }

  static async start(agentPort: number): Promise<UdpRelay> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return new UdpRelay(socket, agentPort);
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** Sends a recorded request from a fresh socket and returns whether any response came within half a second. */
  async replay(request: Buffer, port: number): Promise<boolean> {
    const socket = createSocket('udp4');
    try {
      const response = new Promise<boolean>((resolve) => {
        socket.once('message', () => resolve(true));
        setTimeout(() => resolve(false), 500);
      });
      socket.send(request, port, '127.0.0.1');
      return await response;
    } finally {
      socket.close();
    }
  }

  close(): void {
    this.socket.close();
  }
}
