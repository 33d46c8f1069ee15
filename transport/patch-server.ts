import { stat } from 'node:fs/promises';

import { InvalidArgumentError } from '../errors/index.js';
import { formatTransferRecord, startHttpServer, type TransferRecord } from './http-server.js';
import { startTftpServer, type TftpServerSettings } from './tftp-server.js';

export interface PatchServerOptions {
  /** Folder whose files are served, read-only; nothing outside it is reachable. */
  root: string;
  tftp?: { host: string; port: number } & TftpServerSettings;
  http?: { host: string; port: number };
  /** Receives one line per transfer: protocol, client, file, bytes, duration and result. */
  log?: (line: string) => void;
}

export interface PatchServer {
  tftpAddress?: { host: string; port: number };
  httpAddress?: { host: string; port: number };
  /** Stops listening, ends running transfers and resolves once every socket is closed. */
  close(): Promise<void>;
}

/** Starts the management station's patch server over TFTP, HTTP or both. */
export async function startPatchServer(options: PatchServerOptions): Promise<PatchServer> {
  const info = await stat(options.root).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new InvalidArgumentError(`patch folder ${options.root} not found: expected an existing folder to serve`);
  }
  if (!options.tftp && !options.http) {
    throw new InvalidArgumentError('no protocol to serve: expected a TFTP address, an HTTP address or both');
  }

  const record = (entry: TransferRecord) => options.log?.(formatTransferRecord(entry));
  const http = options.http ? await startHttpServer(options.root, options.http, record) : undefined;
  let tftp;
  try {
    tftp = options.tftp ? await startTftpServer(options.root, options.tftp, record, options.tftp) : undefined;
  } catch (error) {
    await http?.close();
    throw error;
  }

  return {
    tftpAddress: tftp?.address,
    httpAddress: http?.address,
    close: async () => {
      await Promise.all([tftp?.close(), http?.close()]);
    },
  };
}
