import { expect } from 'chai';

import { BadUrlError } from '../../errors/index.js';
import { joinPatchUrl, redactUrl, validateFileName, validateUrlPrefix } from '../../transport/index.js';

describe('transport URLs', () => {
  describe('validateUrlPrefix', () => {
    const accepted = [
      'tftp://127.0.0.1/patches',
      'tftp://127.0.0.1:6969/',
      'http://user:secret@127.0.0.1:8080/patches/',
      'https://[::1]/a/b',
      'file:///media/usb/patches',
      'file://localhost/media/usb',
    ];
    for (const prefix of accepted) {
      it(`accepts ${prefix}`, () => {
        expect(() => validateUrlPrefix(prefix)).not.to.throw();
      });
    }

    const rejected: Array<[string, RegExp]> = [
      ['ftp://127.0.0.1/patches', /expected one of file: tftp: http: https:, got ftp:/],
      ['javascript:alert(1)', /unsupported URL scheme/],
      ['patches/', /invalid URL/],
      ['http://127.0.0.1/p?x=1', /no query/],
      ['http://127.0.0.1/p#frag', /no query/],
      ['http://127.0.0.1/a/../b', /no \. or \.\. path segments/],
      ['http://127.0.0.1/a/%2e%2E/b', /no \. or \.\. path segments/],
      ['tftp://127.0.0.1/a\\b', /backslash/],
      ['file://remote-host/share', /expected a local path/],
      ['tftp://user:pw@127.0.0.1/', /TFTP has no authentication/],
      ['http://127.0.0.1/pa tches', /no spaces or control characters/],
      ['http://', /invalid URL/],
      ['tftp:/nohost', /expected a host name/],
      ['http://127.0.0.1:0/', /expected a port from 1 to 65535, got 0/],
      ['tftp://[::1]:0/', /expected a port from 1 to 65535, got 0/],
    ];
    for (const [prefix, message] of rejected) {
      it(`rejects ${prefix}`, () => {
        expect(() => validateUrlPrefix(prefix)).to.throw(BadUrlError, message);
      });
    }

    it('keeps credentials out of its messages', () => {
      expect(() => validateUrlPrefix('http://admin:hunter2@127.0.0.1/p?x')).to.throw(BadUrlError).that.satisfies(
        (error: Error) => !error.message.includes('hunter2') && !error.message.includes('admin'),
      );
    });
  });

  describe('joinPatchUrl', () => {
    it('adds exactly one slash', () => {
      expect(joinPatchUrl('tftp://127.0.0.1:6969/patches', 'a-1.patch')).to.equal('tftp://127.0.0.1:6969/patches/a-1.patch');
      expect(joinPatchUrl('http://127.0.0.1/patches/', 'a-1.patch')).to.equal('http://127.0.0.1/patches/a-1.patch');
      expect(joinPatchUrl('file:///media/usb', 'a.patch')).to.equal('file:///media/usb/a.patch');
      expect(joinPatchUrl('tftp://127.0.0.1', 'a.patch')).to.equal('tftp://127.0.0.1/a.patch');
    });

    it('keeps the prefix credentials', () => {
      expect(joinPatchUrl('http://u:p@127.0.0.1/x', 'a.patch')).to.equal('http://u:p@127.0.0.1/x/a.patch');
    });

    const hostile: Array<[string, RegExp]> = [
      ['..', /dot segment/],
      ['.', /dot segment/],
      ['%2e%2e', /percent-encoding/],
      ['%2E%2e%2Fetc', /percent-encoding/],
      ['../etc/passwd', /path separator/],
      ['..\\boot.ini', /path separator/],
      ['sub\\a.patch', /path separator/],
      ['/etc/passwd', /path separator/],
      ['C:', /colon/],
      ['c:boot.ini', /colon/],
      ['', /non-empty/],
      ['a\u0000b', /control characters/],
      ['a\nb', /control characters/],
      ['x'.repeat(256), /at most 255/],
    ];
    for (const [name, message] of hostile) {
      it(`rejects the file name ${JSON.stringify(name).slice(0, 40)}`, () => {
        expect(() => joinPatchUrl('http://127.0.0.1/patches', name)).to.throw(BadUrlError, message);
        expect(() => validateFileName(name)).to.throw(BadUrlError, message);
      });
    }

    it('rejects a bad prefix', () => {
      expect(() => joinPatchUrl('gopher://127.0.0.1/', 'a.patch')).to.throw(BadUrlError, /unsupported URL scheme/);
    });
  });

  describe('redactUrl', () => {
    it('strips user name and password', () => {
      expect(redactUrl('http://admin:hunter2@127.0.0.1:8080/p/a.patch')).to.equal('http://127.0.0.1:8080/p/a.patch');
      expect(redactUrl('https://token@127.0.0.1/a')).to.equal('https://127.0.0.1/a');
    });

    it('leaves URLs without credentials alone', () => {
      expect(redactUrl('tftp://127.0.0.1:69/a.patch')).to.equal('tftp://127.0.0.1:69/a.patch');
    });

    it('cleans strings that do not parse', () => {
      const redacted = redactUrl('http://admin:hun ter2@[bad/a');
      expect(redacted).not.to.include('hun');
      expect(redacted).not.to.include('admin');
    });
  });
});
