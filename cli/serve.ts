import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';

import { InvalidArgumentError } from '../errors/index.js';
import { startPatchServer } from '../transport/index.js';

const DEFAULT_TFTP = '127.0.0.1:6969';
const DEFAULT_HTTP = '127.0.0.1:8080';

interface ServeArguments {
  root: string;
  tftp?: string;
  http?: string;
  'tftp-max-blksize'?: number;
  'tftp-max-windowsize'?: number;
}

/** Parses HOST:PORT, with IPv6 hosts in brackets ([::1]:6969). */
export function parseHostPort(text: string, option: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65_535) {
    throw new InvalidArgumentError(`invalid --${option} ${JSON.stringify(text)}: expected HOST:PORT such as 127.0.0.1:6969 or [::1]:6969`);
  }
  return { host: match[1] ?? match[2], port };
}

/** `serve`: the management station's read-only patch server over TFTP and HTTP. */
export const serveCommand: CommandModule<object, ServeArguments> = {
  command: 'serve',
  describe: 'Serve patch files read-only from a folder over TFTP and HTTP',
  builder: (yargs: Argv) =>
    yargs
      .option('root', { type: 'string', demandOption: true, describe: 'Folder whose files are served; nothing outside it is reachable' })
      .option('tftp', { type: 'string', describe: `TFTP address HOST:PORT (default ${DEFAULT_TFTP} when neither --tftp nor --http is given)` })
      .option('http', { type: 'string', describe: `HTTP address HOST:PORT (default ${DEFAULT_HTTP} when neither --tftp nor --http is given)` })
      .option('tftp-max-blksize', { type: 'number', describe: 'Largest TFTP blksize granted, in bytes (default 65464)' })
      .option('tftp-max-windowsize', { type: 'number', describe: 'Largest TFTP windowsize granted, in blocks (default 64)' })
      .example('$0 serve --root /srv/patches --tftp 127.0.0.1:6969 --http 127.0.0.1:8080', 'Serve both protocols on loopback') as unknown as Argv<ServeArguments>,
  handler: async (args: ArgumentsCamelCase<ServeArguments>) => {
    // Serving is opt-in per address, and the defaults stay on loopback so nothing is exposed by accident.
    const bothDefault = args.tftp === undefined && args.http === undefined;
    const tftp = args.tftp ?? (bothDefault ? DEFAULT_TFTP : undefined);
    const http = args.http ?? (bothDefault ? DEFAULT_HTTP : undefined);

    const server = await startPatchServer({
      root: args.root,
      tftp: tftp
        ? { ...parseHostPort(tftp, 'tftp'), maxBlksize: args.tftpMaxBlksize, maxWindowsize: args.tftpMaxWindowsize }
        : undefined,
      http: http ? parseHostPort(http, 'http') : undefined,
      log: (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`),
    });

    const addresses = [
      server.tftpAddress ? `tftp ${formatAddress(server.tftpAddress)}` : undefined,
      server.httpAddress ? `http ${formatAddress(server.httpAddress)}` : undefined,
    ].filter(Boolean);
    process.stdout.write(`${new Date().toISOString()} serving ${args.root} on ${addresses.join(', ')}\n`);

    await new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals) => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        process.stdout.write(`${new Date().toISOString()} stopping on ${signal}\n`);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    await server.close();
    process.stdout.write(`${new Date().toISOString()} stopped\n`);
  },
};

function formatAddress(address: { host: string; port: number }): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
