import { open, realpath, type FileHandle } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';

import { AccessViolationError, FileNotFoundError } from '../errors/index.js';

/** A file opened for serving, with what the HTTP and TFTP servers announce about it. */
export interface ServedFile {
  handle: FileHandle;
  size: number;
  mtime: Date;
  /** Strong validator: changes whenever the file is replaced or rewritten. */
  etag: string;
}

/**
 * Opens a file below `root` for reading. The requested name is resolved against the root and then, with symbolic
 * links followed, checked to still lie inside it by its relative path, so `..`, absolute names and links that
 * point out are all refused. A plain prefix check would let `/srv/patches-old` pass for root `/srv/patches`.
 */
export async function openServedFile(root: string, requestedName: string): Promise<ServedFile> {
  const shown = JSON.stringify(requestedName);
  if (requestedName.includes('\0')) {
    throw new AccessViolationError(`invalid file name ${shown}: expected no NUL characters`);
  }

  // Clients send both `a.patch` and `/a.patch` (tftp-hpa keeps the leading slash), so names are relative to root.
  const realRoot = await realpath(root);
  const candidate = resolve(realRoot, `.${sep}${requestedName.replace(/\\/g, '/')}`);
  assertInside(realRoot, candidate, shown);

  let realFile: string;
  try {
    realFile = await realpath(candidate);
  } catch {
    throw new FileNotFoundError(`file ${shown} not found below the served folder`);
  }
  assertInside(realRoot, realFile, shown);

  let handle: FileHandle;
  try {
    handle = await open(realFile, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') throw new AccessViolationError(`file ${shown} cannot be read: permission denied`);
    throw new FileNotFoundError(`file ${shown} cannot be opened: ${(error as Error).message}`);
  }

  const info = await handle.stat();
  if (!info.isFile()) {
    await handle.close();
    throw new FileNotFoundError(`file ${shown} is not a regular file`);
  }
  const etag = `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}-${info.ino.toString(16)}"`;
  return { handle, size: info.size, mtime: info.mtime, etag };
}

function assertInside(root: string, path: string, shown: string): void {
  const rel = relative(root, path);
  if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new AccessViolationError(`file ${shown} is outside the served folder`);
  }
}
