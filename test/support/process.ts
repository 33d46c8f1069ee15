import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

import { REPO_ROOT } from './index.js';

/** A long-running child process (an agent, a server, snmptrapd) whose output a test reads. */
export interface RunningProcess {
  child: ChildProcess;
  /** Everything written to standard output and standard error so far. */
  output(): string;
  /** Resolves once the output matches `pattern`; rejects after `timeoutMs` or when the process exits first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Sends SIGTERM, then SIGKILL after a grace period, and resolves when the process has exited. */
  stop(): Promise<void>;
}

export function startProcess(command: string, args: string[], options: { env?: NodeJS.ProcessEnv } = {}): RunningProcess {
  const child = spawn(command, args, { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let exited = false;
  const listeners = new Set<() => void>();
  const notify = () => listeners.forEach((listener) => listener());
  child.stdout!.on('data', (chunk: Buffer) => ((output += chunk.toString()), notify()));
  child.stderr!.on('data', (chunk: Buffer) => ((output += chunk.toString()), notify()));
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      notify();
      resolve();
    }),
  );

  return {
    child,
    output: () => output,
    waitFor(pattern, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = output.match(pattern);
          if (match) return finish(() => resolve(match));
          if (exited) finish(() => reject(new Error(`${command} exited before printing ${pattern}; output:\n${output}`)));
        };
        const timer = setTimeout(() => finish(() => reject(new Error(`${command} did not print ${pattern} within ${timeoutMs} ms; output:\n${output}`))), timeoutMs);
        const finish = (settle: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          settle();
        };
        listeners.add(check);
        check();
      });
    },
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exit;
      clearTimeout(killer);
    },
  };
}

/** Starts the compiled `snmp-upgrade` program as a long-running child process. */
export function startProgram(args: string[]): RunningProcess {
  return startProcess(process.execPath, [join(REPO_ROOT, 'dist/cli/main.js'), ...args]);
}
