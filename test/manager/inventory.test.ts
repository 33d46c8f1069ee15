import { expect } from 'chai';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { UpgradeError } from '../../errors/index.js';
import { parseCsvInventory, parseJsonInventory } from '../../manager/index.js';
import { makeTempDir, runProgram } from '../support/index.js';

const HEADER = 'host,port,community,version,user,auth-protocol,auth-key,priv-protocol,priv-key,image,url';

function parseError(text: string): UpgradeError {
  try {
    parseCsvInventory(text, 'fleet.csv');
  } catch (error) {
    expect(error).to.be.instanceOf(UpgradeError);
    return error as UpgradeError;
  }
  throw new Error('expected the inventory to be rejected');
}

describe('manager inventory', () => {
  it('reads v2c and v3 devices', () => {
    const devices = parseCsvInventory(
      [
        HEADER,
        '# lab routers',
        '127.0.0.11,161,rw-lab,,,,,,,,',
        '',
        '127.0.0.12,1161,,3,ops,sha256,authpass1,aes,privpass1,core.bin,"tftp://127.0.0.9/patches/"',
        '::1,161,,3,ops,SHA512,authpass1,,,,',
      ].join('\r\n'),
      'fleet.csv',
    );
    expect(devices.map((device) => device.name)).to.deep.equal(['127.0.0.11:161', '127.0.0.12:1161', '[::1]:161']);
    expect(devices[0]!.credentials).to.deep.equal({ version: '2c', community: 'rw-lab' });
    expect(devices[0]!.source).to.equal('fleet.csv line 3');
    expect(devices[1]!.credentials).to.deep.equal({
      version: '3',
      user: 'ops',
      level: 'authPriv',
      authProtocol: 'sha256',
      authKey: 'authpass1',
      privProtocol: 'aes',
      privKey: 'privpass1',
    });
    expect(devices[1]!.image).to.equal('core.bin');
    expect(devices[1]!.url).to.equal('tftp://127.0.0.9/patches/');
    expect(devices[2]!.credentials).to.include({ level: 'authNoPriv', authProtocol: 'sha512' });
  });

  it('reads the minimal three columns', () => {
    const devices = parseCsvInventory('host,port,community\nrouter-1.example.net,161,"a,b""c"\n');
    expect(devices[0]!.credentials).to.deep.equal({ version: '2c', community: 'a,b"c' });
  });

  const cases: Array<[string, string, RegExp]> = [
    ['unknown column', 'host,port,comunity\n127.0.0.11,161,x\n', /fleet\.csv line 1, column 3: unknown column "comunity"/],
    ['missing port column', 'host,community\n127.0.0.11,x\n', /fleet\.csv line 1: the header has no port column/],
    ['repeated column', 'host,port,port\n127.0.0.11,161,161\n', /line 1: column port appears twice/],
    ['bad port', 'host,port,community\n127.0.0.11,161,x\n127.0.0.12,16x1,x\n', /fleet\.csv line 3, column 2 \(port\): expected a UDP port from 1 to 65535, got "16x1"/],
    ['port zero', 'host,port,community\n127.0.0.11,0,x\n', /line 2, column 2 \(port\): expected a UDP port/],
    ['bad host', 'host,port,community\nrouter_1!,161,x\n', /line 2, column 1 \(host\): expected a host name or IP address, got "router_1!"/],
    ['bad IPv4 address', 'host,port,community\n999.999.1.1,161,x\n', /line 2, column 1 \(host\): expected a valid IPv4 address, got "999.999.1.1"/],
    ['empty community', 'host,port,community\n127.0.0.11,161,\n', /line 2, column 3 \(community\): expected the SNMPv2c community/],
    ['field count', 'host,port,community\n127.0.0.11,161\n', /line 2: expected 3 fields as in the header, got 2/],
    ['bad version', 'host,port,community,version\n127.0.0.11,161,x,1\n', /line 2, column 4 \(version\): expected 2c or 3, got "1"/],
    ['v3 without user', `${HEADER}\n127.0.0.11,161,,3,,sha256,authpass1,,,,\n`, /line 2, column 5 \(user\): expected an SNMPv3 user name/],
    ['bad auth protocol', `${HEADER}\n127.0.0.11,161,,3,ops,md5,authpass1,,,,\n`, /line 2, column 6 \(auth-protocol\): expected one of sha224, sha256, sha384, sha512, got "md5"/],
    ['short auth key', `${HEADER}\n127.0.0.11,161,,3,ops,sha256,short,,,,\n`, /line 2, column 7 \(auth-key\): expected at least 8 characters, got 5/],
    ['bad priv protocol', `${HEADER}\n127.0.0.11,161,,3,ops,sha256,authpass1,des,privpass1,,\n`, /line 2, column 8 \(priv-protocol\): expected one of aes, aes256b, aes256r/],
    ['priv key alone', `${HEADER}\n127.0.0.11,161,,3,ops,sha256,authpass1,,privpass1,,\n`, /column 8 \(priv-protocol\)/],
    ['community on v3', `${HEADER}\n127.0.0.11,161,x,3,ops,sha256,authpass1,,,,\n`, /line 2, column 3 \(community\): is an SNMPv2c setting/],
    ['user on v2c', 'host,port,community,version,user\n127.0.0.11,161,x,2c,ops\n', /line 2, column 5 \(user\): is an SNMPv3 setting/],
    ['bad image', 'host,port,community,image\n127.0.0.11,161,x,../core.bin\n', /line 2, column 4 \(image\): invalid image name/],
    ['duplicate device', 'host,port,community\n127.0.0.11,161,x\n127.0.0.11,161,y\n', /fleet\.csv line 3: device 127\.0\.0\.11:161 is already listed at fleet\.csv line 2/],
    ['open quote', 'host,port,community\n127.0.0.11,161,"x\n', /line 2: a quoted field is not closed/],
    ['no devices', 'host,port,community\n', /expected at least one device after the header/],
    ['empty file', '', /expected a header row/],
  ];
  for (const [name, text, expected] of cases) {
    it(`rejects ${name}`, () => {
      const error = parseError(text);
      expect(error.message).to.match(expected);
      expect(error.code).to.equal('invalidArgument');
    });
  }

  it('rejects a URL of another scheme', () => {
    const error = parseError('host,port,community,url\n127.0.0.11,161,x,ftp://127.0.0.9/p/\n');
    expect(error.message).to.match(/fleet\.csv line 2, column 4 \(url\): unsupported URL scheme/);
    expect(error.code).to.equal('badUrl');
  });

  it('hides URL credentials in errors', () => {
    const error = parseError('host,port,community,url\n127.0.0.11,161,x,tftp://ops:s3cret@127.0.0.9/p/\n');
    expect(error.message).to.match(/line 2, column 4 \(url\): invalid TFTP URL/);
    expect(error.code).to.equal('badUrl');
    expect(error.message).to.not.include('s3cret');
  });

  it('rejects a character device as the inventory', async () => {
    const result = await runProgram(['manager', 'status', '--inventory', '/dev/zero']);
    expect(result.status).to.equal(1);
    expect(result.stderr).to.equal('snmp-upgrade: invalid inventory /dev/zero: expected a file, got a character device (cause: invalidArgument)\n');
  });

  it('reads a JSON inventory', () => {
    const devices = parseJsonInventory(JSON.stringify([{ host: '127.0.0.11', port: 161, community: 'x' }]), 'fleet.json');
    expect(devices[0]!.name).to.equal('127.0.0.11:161');
  });

  it('names the JSON entry and key', () => {
    expect(() => parseJsonInventory('[{"host":"127.0.0.11","port":161,"community":"x"},{"host":"127.0.0.12","port":"x","community":"y"}]', 'fleet.json')).to.throw(
      /fleet\.json entry 2 \(port\): expected a UDP port/,
    );
    expect(() => parseJsonInventory('[{"host":"127.0.0.11","prot":161}]', 'fleet.json')).to.throw(/entry 1: unknown key "prot"/);
    expect(() => parseJsonInventory('{"host":"127.0.0.11"}', 'fleet.json')).to.throw(/expected a JSON array of devices/);
  });

  it('rejects a number for a text key', () => {
    expect(() => parseJsonInventory('[{"host":"127.0.0.11","port":161,"community":5}]', 'fleet.json')).to.throw(
      /fleet\.json entry 1 \(community\): expected a string, got 5/,
    );
  });

  it('prints the error and exits 1 from the command', async () => {
    const dir = await makeTempDir();
    try {
      const inventory = join(dir.path, 'fleet.csv');
      await writeFile(inventory, 'host,port,community\n127.0.0.11,99999,secret-community\n');
      const run = await runProgram(['manager', 'status', '--inventory', inventory]);
      expect(run.status).to.equal(1);
      expect(run.stderr).to.match(/fleet\.csv line 2, column 2 \(port\): expected a UDP port from 1 to 65535, got "99999" \(cause: invalidArgument\)/);
      expect(run.stderr).to.not.include('secret-community');
    } finally {
      await dir.remove();
    }
  });
});
