import { BadUrlError } from '../errors/index.js';

/** Schemes a patch URL prefix may use; anything else (ftp:, data:, javascript:, smb: ...) is rejected. */
export const ALLOWED_SCHEMES = ['file:', 'tftp:', 'http:', 'https:'] as const;
export type Scheme = (typeof ALLOWED_SCHEMES)[number];

// Whitespace and control characters are silently dropped or kept by URL parsers depending on where they sit,
// so a prefix that contains them could mean one thing to the operator and another to the fetcher.
const CONTROL_OR_SPACE = /[\u0000-\u0020\u007f]/;

/**
 * Removes the user name and password from a URL, so that it can go into logs, status objects and traps.
 * Strings that do not parse as URLs are cleaned with a pattern instead of being returned as they are.
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username === '' && parsed.password === '') return url;
    parsed.username = '';
    parsed.password = '';
    return parsed.href;
  } catch {
    return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#]*@/, '$1');
  }
}

/** Parses a URL, turning the parser's TypeError into a BadUrlError that names the redacted input. */
export function parseUrl(url: string): URL {
  if (CONTROL_OR_SPACE.test(url)) {
    throw new BadUrlError(`invalid URL ${JSON.stringify(redactUrl(url))}: expected no spaces or control characters`);
  }
  try {
    return new URL(url);
  } catch {
    throw new BadUrlError(`invalid URL ${JSON.stringify(redactUrl(url))}: expected scheme://host/path or file:///path`);
  }
}

/** Returns true when a path segment is `.` or `..`, also in percent-encoded form (`%2e%2E`, `.%2e`). */
function isDotSegment(segment: string): boolean {
  const decoded = segment.replace(/%2e/gi, '.');
  return decoded === '.' || decoded === '..';
}

/**
 * Checks a patch URL prefix: an allowed scheme, a host where the scheme needs one, no query or fragment, no
 * dot segments or backslashes, and credentials only where the protocol can send them (HTTP basic auth).
 * Throws BadUrlError naming the redacted prefix and the rule it breaks.
 */
export function validateUrlPrefix(prefix: string): void {
  const url = parseUrl(prefix);
  const shown = redactUrl(prefix);

  if (!(ALLOWED_SCHEMES as readonly string[]).includes(url.protocol)) {
    throw new BadUrlError(`unsupported URL scheme in ${shown}: expected one of ${ALLOWED_SCHEMES.join(' ')}, got ${url.protocol}`);
  }

  // A prefix is a folder that a file name is appended to, so a query or fragment would end up in the middle.
  if (url.search !== '' || url.hash !== '' || prefix.includes('?') || prefix.includes('#')) {
    throw new BadUrlError(`invalid URL prefix ${shown}: expected no query (?) or fragment (#)`);
  }

  // The WHATWG parser resolves `..` before the checks below see it. Rejecting it in the raw text keeps the prefix
  // exactly the folder the operator wrote, so it never walks up on the server.
  const rawPath = prefix.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]*/, '');
  if (rawPath.includes('\\')) {
    throw new BadUrlError(`invalid URL prefix ${shown}: expected / as path separator, got a backslash`);
  }
  if (rawPath.split('/').some(isDotSegment)) {
    throw new BadUrlError(`invalid URL prefix ${shown}: expected no . or .. path segments`);
  }

  if (url.protocol === 'file:') {
    if (url.hostname !== '' && url.hostname !== 'localhost') {
      throw new BadUrlError(`invalid file URL ${shown}: expected a local path (file:///...), got host ${url.hostname}`);
    }
    if (url.username !== '' || url.password !== '') {
      throw new BadUrlError(`invalid file URL ${shown}: expected no user name or password`);
    }
    return;
  }

  if (url.hostname === '') {
    throw new BadUrlError(`invalid URL prefix ${shown}: expected a host name`);
  }
  // Port 0 names no server: Node's HTTP client then connects to port 80 instead, which is never what was meant.
  if (url.port === '0') {
    throw new BadUrlError(`invalid URL prefix ${shown}: expected a port from 1 to 65535, got 0`);
  }

  // TFTP (RFC 1350) has no authentication, so credentials in a tftp: URL are a mistake that would only leak.
  if (url.protocol === 'tftp:' && (url.username !== '' || url.password !== '')) {
    throw new BadUrlError(`invalid TFTP URL ${shown}: expected no user name or password, TFTP has no authentication`);
  }
}

/**
 * Checks that a patch file name is a single plain name. Refuses the forms that would let a hostile name reach
 * outside the prefix folder on the server or on local media: `.` and `..` (also percent-encoded), `/` and `\`
 * separators, absolute and drive-letter paths, percent signs and control characters.
 */
export function validateFileName(fileName: string): void {
  const shown = JSON.stringify(fileName);

  if (fileName === '') {
    throw new BadUrlError('invalid patch file name "": expected a non-empty name');
  }
  if (fileName.length > 255) {
    throw new BadUrlError(`invalid patch file name of ${fileName.length} characters: expected at most 255`);
  }
  if (CONTROL_OR_SPACE.test(fileName)) {
    throw new BadUrlError(`invalid patch file name ${shown}: expected no spaces or control characters`);
  }
  if (fileName.includes('/') || fileName.includes('\\')) {
    throw new BadUrlError(`invalid patch file name ${shown}: expected a plain name, got a path separator`);
  }
  if (fileName.includes(':')) {
    throw new BadUrlError(`invalid patch file name ${shown}: expected a plain name, got a colon (drive letter or scheme)`);
  }
  // Patch names never need percent-encoding, and allowing `%` would let `%2e%2e` or `%2f` decode into a path.
  if (fileName.includes('%')) {
    throw new BadUrlError(`invalid patch file name ${shown}: expected no percent-encoding`);
  }
  if (isDotSegment(fileName)) {
    throw new BadUrlError(`invalid patch file name ${shown}: expected a file name, got a dot segment`);
  }
}

/**
 * Appends a patch file name to a URL prefix, with exactly one `/` between them. Both are checked first
 * (validateUrlPrefix, validateFileName), so the result always names a file directly inside the prefix folder.
 */
export function joinPatchUrl(prefix: string, fileName: string): string {
  validateUrlPrefix(prefix);
  validateFileName(fileName);

  const url = new URL(prefix);
  const folder = url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`;
  url.pathname = `${folder}${encodeURIComponent(fileName)}`;
  return url.href;
}
