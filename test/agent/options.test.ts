import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { expect } from 'chai';

import { parseAgentConfig, parseAgentFlags, parseHostPort, parseTrapSink, startAgent } from '../../agent/index.js';
import { InvalidArgumentError } from '../../errors/index.js';
import { freeUdpPort, makeTempDir } from '../support/index.js';
import { FakeDevice } from './fake-device.js';

const WRITER = {
  name: 'operator',
  level: 'authPriv',
  authProtocol: 'sha256',
  authPassword: 'auth-secret-1',
  privProtocol: 'aes',
  privPassword: 'priv-secret-1',
  write: true,
};

describe('agent options', () => {
  describe('parseHostPort', () => {
    it('reads IPv4 and bracketed IPv6', () => {
      expect(parseHostPort('127.0.0.1:1161', 'listen')).to.deep.equal({ host: '127.0.0.1', port: 1161 });
      expect(parseHostPort('[::1]:1161', 'listen')).to.deep.equal({ host: '::1', port: 1161 });
    });

    for (const bad of ['127.0.0.1', 'localhost:161', '127.0.0.1:70000', '127.0.0.1:0', '::1:161', '127.0.0.1:', '']) {
      it(`rejects ${JSON.stringify(bad)}`, () => {
        expect(() => parseHostPort(bad, '--listen address')).to.throw(InvalidArgumentError, /invalid --listen address/);
      });
    }
  });

  describe('parseTrapSink', () => {
    it('defaults the community to public', () => {
      expect(parseTrapSink('127.0.0.1:162', false)).to.deep.equal({ host: '127.0.0.1', port: 162, version: '2c', community: 'public', inform: false });
    });

    it('reads the community after the slash', () => {
      expect(parseTrapSink('[::1]:1162/ops', true)).to.include({ host: '::1', port: 1162, community: 'ops', inform: true });
    });

    it('rejects an empty community', () => {
      expect(() => parseTrapSink('127.0.0.1:162/', false)).to.throw(InvalidArgumentError, /community after "\/" is empty/);
    });

    it('rejects port 0', () => {
      expect(() => parseTrapSink('127.0.0.1:0', false)).to.throw(InvalidArgumentError, /expected a port from 1 to 65535, got 0/);
    });
  });

  describe('parseAgentFlags', () => {
    it('turns the flags into options', async () => {
      const options = await parseAgentFlags({
        listen: '127.0.0.1:1161',
        roCommunity: 'public',
        rwCommunity: ['private', 'ops'],
        trapSink: ['127.0.0.1:162/traps'],
        inform: true,
      });

      expect(options.listen).to.deep.equal({ host: '127.0.0.1', port: 1161 });
      expect(options.roCommunities).to.deep.equal(['public']);
      expect(options.rwCommunities).to.deep.equal(['private', 'ops']);
      expect(options.sinks).to.deep.equal([{ host: '127.0.0.1', port: 162, version: '2c', community: 'traps', inform: true }]);
      expect(options.users).to.deep.equal([]);
    });

    it('adds users and sinks from --config', async () => {
      const temp = await makeTempDir();
      try {
        const path = join(temp.path, 'agent.json');
        await writeFile(path, JSON.stringify({ users: [WRITER], sinks: [{ address: '127.0.0.1:1162', version: '3', user: 'operator', inform: true }], informRetries: 5 }));
        const options = await parseAgentFlags({ listen: '127.0.0.1:1161', trapSink: '127.0.0.1:162', config: path });

        expect(options.users).to.have.length(1);
        expect(options.sinks.map((sink) => sink.version)).to.deep.equal(['2c', '3']);
        expect(options.informRetries).to.equal(5);
      } finally {
        await temp.remove();
      }
    });

    for (const [flag, option] of [['roCommunity', '--ro-community'], ['rwCommunity', '--rw-community'], ['trapSink', '--trap-sink']]) {
      it(`rejects ${option} without a value`, async () => {
        const error = await parseAgentFlags({ listen: '127.0.0.1:1161', [flag]: [] }).catch((caught: unknown) => caught);
        expect(error).to.be.instanceOf(InvalidArgumentError);
        expect((error as Error).message).to.equal(`invalid ${option}: expected a value after it, got none`);
      });
    }

    it('rejects a missing config file', async () => {
      const error = await parseAgentFlags({ listen: '127.0.0.1:1161', config: '/nonexistent/agent.json' }).catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(InvalidArgumentError);
      expect((error as Error).message).to.match(/cannot read agent configuration \/nonexistent\/agent.json/);
    });

    it('rejects a character device as config', async () => {
      const error = await parseAgentFlags({ listen: '127.0.0.1:1161', config: '/dev/zero' }).catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(InvalidArgumentError);
      expect((error as Error).message).to.equal('invalid agent configuration /dev/zero: expected a file, got a character device');
    });

    it('rejects a config file that is not JSON', async () => {
      const temp = await makeTempDir();
      try {
        const path = join(temp.path, 'agent.json');
        await writeFile(path, 'users = operator');
        const error = await parseAgentFlags({ listen: '127.0.0.1:1161', config: path }).catch((caught: unknown) => caught);
        expect((error as Error).message).to.match(/invalid agent configuration .*expected JSON/);
      } finally {
        await temp.remove();
      }
    });
  });

  describe('parseAgentConfig', () => {
    it('accepts authNoPriv and authPriv users', () => {
      const config = parseAgentConfig({
        users: [WRITER, { name: 'viewer', level: 'authNoPriv', authProtocol: 'sha512', authPassword: 'auth-secret-2' }],
      });
      expect(config.users.map((user) => [user.name, user.write])).to.deep.equal([
        ['operator', true],
        ['viewer', false],
      ]);
    });

    /** Each bad configuration and the part of the message that names the problem. */
    const bad: Array<{ name: string; json: unknown; message: RegExp }> = [
      { name: 'not an object', json: [], message: /expected an object, got \[\]/ },
      { name: 'unknown key', json: { user: [] }, message: /unknown key "user"/ },
      { name: 'MD5 authentication', json: { users: [{ ...WRITER, authProtocol: 'md5' }] }, message: /authProtocol: expected one of sha224, sha256, sha384, sha512, got "md5"/ },
      { name: 'DES privacy', json: { users: [{ ...WRITER, privProtocol: 'des' }] }, message: /privProtocol: expected one of aes, aes256b, aes256r, got "des"/ },
      { name: 'noAuthNoPriv user', json: { users: [{ ...WRITER, level: 'noAuthNoPriv' }] }, message: /level: expected one of authNoPriv, authPriv/ },
      { name: 'short password', json: { users: [{ ...WRITER, authPassword: 'short' }] }, message: /authPassword: expected at least 8 characters, got 5/ },
      { name: 'privacy without authPriv', json: { users: [{ ...WRITER, level: 'authNoPriv' }] }, message: /need level "authPriv"/ },
      { name: 'duplicate user', json: { users: [WRITER, WRITER] }, message: /user "operator" is defined twice/ },
      { name: 'user name too long', json: { users: [{ ...WRITER, name: 'x'.repeat(33) }] }, message: /name: expected 1 to 32 octets/ },
      { name: 'write not boolean', json: { users: [{ ...WRITER, write: 'yes' }] }, message: /write: expected true or false, got "yes"/ },
      { name: 'sink with unknown user', json: { sinks: [{ address: '127.0.0.1:162', version: '3', user: 'nobody' }] }, message: /expected one of the configured users, got "nobody"/ },
      { name: 'sink with bad address', json: { sinks: [{ address: 'traps.example:162', version: '2c' }] }, message: /expected an IPv4 or IPv6 address/ },
      { name: 'sink version 1', json: { sinks: [{ address: '127.0.0.1:162', version: '1' }] }, message: /version: expected one of 2c, 3/ },
      { name: 'v2c sink with a user', json: { users: [WRITER], sinks: [{ address: '127.0.0.1:162', version: '2c', user: 'operator' }] }, message: /only SNMPv3 sinks name a user/ },
      { name: 'informRetries out of range', json: { informRetries: 50 }, message: /informRetries: expected an integer from 0 to 10, got 50/ },
    ];
    for (const { name, json, message } of bad) {
      it(`rejects ${name}`, () => {
        expect(() => parseAgentConfig(json, 'agent.json')).to.throw(InvalidArgumentError, message);
      });
    }
  });

  describe('state file', () => {
    it('rejects a damaged state file and leaves it alone', async () => {
      const temp = await makeTempDir();
      try {
        const stateFile = join(temp.path, 'state.json');
        await writeFile(stateFile, '{"engineBoots": "many"}');
        const error = await startAgent({
          device: new FakeDevice(),
          stateFile,
          listen: { host: '127.0.0.1', port: await freeUdpPort() },
          roCommunities: [],
          rwCommunities: [],
          users: [],
          sinks: [],
          informRetries: 0,
          informTimeoutMs: 100,
        }).catch((caught: unknown) => caught);

        expect(error).to.be.instanceOf(InvalidArgumentError);
        expect((error as Error).message).to.match(/invalid agent state file .*expected engineId/);
      } finally {
        await temp.remove();
      }
    });

    it('rejects a port already in use', async () => {
      const temp = await makeTempDir();
      const base = {
        device: new FakeDevice(),
        listen: { host: '127.0.0.1', port: await freeUdpPort() },
        roCommunities: [],
        rwCommunities: [],
        users: [],
        sinks: [],
        informRetries: 0,
        informTimeoutMs: 100,
      };
      const first = await startAgent({ ...base, stateFile: join(temp.path, 'a.json') });
      try {
        const error = await startAgent({ ...base, stateFile: join(temp.path, 'b.json') }).catch((caught: unknown) => caught);
        expect(error).to.be.instanceOf(InvalidArgumentError);
        expect((error as Error).message).to.match(/cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
      } finally {
        await first.close();
        await temp.remove();
      }
    });
  });
});
