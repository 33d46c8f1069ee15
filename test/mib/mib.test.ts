import { execFile } from 'node:child_process';
import { join } from 'node:path';

import { expect } from 'chai';
import snmp from 'net-snmp';

import { FAIL_CAUSES } from '../../errors/index.js';
import {
  ENUMERATIONS,
  HISTORY_COLUMNS,
  NOTIFICATIONS,
  NOTIFICATION_OBJECTS,
  OPER_STATUS,
  SCALARS,
  UPGRADE_ACTIONS,
  UPGRADE_MIB_FILE,
  UPGRADE_MIB_MODULE,
  UPGRADE_MIB_OID,
  UPGRADE_RESULTS,
  encodeDateAndTime,
  encodeUnsigned64,
  upgradeOid,
  type ObjectDefinition,
} from '../../mib/index.js';
import { UPGRADE_PHASES } from '../../upgrade/index.js';
import { REPO_ROOT, requirePeer } from '../support/index.js';

const MIB_PATH = join(REPO_ROOT, UPGRADE_MIB_FILE);
const BASE_MIBS = join(REPO_ROOT, 'node_modules/net-snmp/lib/mibs');

function run(program: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(program, args, { cwd: REPO_ROOT, env: { ...process.env, ...env }, timeout: 20_000 }, (error, stdout, stderr) => {
      let status = 0;
      if (error) status = typeof error.code === 'number' ? error.code : 1;
      resolve({ status, stdout, stderr });
    });
  });
}

/** net-snmp's wire type numbers for the SMI base types of mib/. */
const WIRE_TYPES: Record<ObjectDefinition['type'], number> = {
  Integer: snmp.ObjectType.Integer,
  OctetString: snmp.ObjectType.OctetString,
  Gauge32: snmp.ObjectType.Gauge,
  Unsigned32: snmp.ObjectType.Gauge,
};
const ACCESS = { 'read-only': 2, 'read-write': 3 } as const;

const ALL_OBJECTS: Record<string, ObjectDefinition> = { ...SCALARS, ...HISTORY_COLUMNS };

describe('UPGRADE-MIB', () => {
  describe('as net-snmp ModuleStore parses it', () => {
    const store = snmp.createModuleStore();
    store.loadFromFile(MIB_PATH);
    const module = store.getModule(UPGRADE_MIB_MODULE);
    const providers = store.getProvidersForModule(UPGRADE_MIB_MODULE);
    const scalars = new Map(providers.filter((provider) => provider.type === 1).map((provider) => [provider.name as string, provider]));
    const table = providers.find((provider) => provider.type === 2)!;
    const columns = new Map(
      (table.tableColumns as Array<Record<string, unknown>>).map((column) => [column.name as string, column]),
    );

    it('module identity sits at enterprises.32473', () => {
      expect(module.upgradeMIB!.OID).to.equal(UPGRADE_MIB_OID);
    });

    for (const [name, definition] of Object.entries(ALL_OBJECTS)) {
      it(`${name} matches mib/`, () => {
        expect(module[name]?.OID, 'OID').to.equal(upgradeOid(definition.arcs));
        const provider = scalars.get(name) ?? columns.get(name);
        expect(provider, 'provider').to.not.equal(undefined);
        expect(provider!.scalarType ?? provider!.type, 'type').to.equal(WIRE_TYPES[definition.type]);
        expect(provider!.maxAccess, 'max-access').to.equal(ACCESS[definition.access]);
      });
    }

    it('every accessible object is in mib/', () => {
      const accessible = Object.values(module)
        .filter((entry) => entry.MACRO === 'OBJECT-TYPE' && entry['MAX-ACCESS'] !== 'not-accessible')
        .map((entry) => entry.ObjectName as string);
      expect(accessible.sort()).to.deep.equal(Object.keys(ALL_OBJECTS).sort());
    });

    it('every object has a defined type', () => {
      for (const provider of scalars.values()) expect(provider.scalarType, provider.name as string).to.be.a('number');
      for (const column of columns.values()) expect(column.type, column.name as string).to.be.a('number');
    });

    it('history table is indexed by upgradeHistoryIndex', () => {
      expect(table.tableIndex).to.deep.equal([{ columnName: 'upgradeHistoryIndex' }]);
      expect(module.upgradeHistoryIndex!.OID).to.equal(upgradeOid([1, 5, 1, 1, 1]));
    });

    for (const [convention, values] of Object.entries(ENUMERATIONS)) {
      it(`${convention} enumeration matches mib/`, () => {
        const syntax = module[convention]!.SYNTAX as { INTEGER: Record<string, string> };
        const parsed = Object.fromEntries(Object.entries(syntax.INTEGER).map(([number, name]) => [name, Number(number)]));
        expect(parsed).to.deep.equal(values);
      });
    }

    it('objects use the matching enumeration', () => {
      const enumeration = (provider: Record<string, unknown>) =>
        (provider.constraints as { enumeration: Record<string, string> }).enumeration;
      expect(Object.keys(enumeration(scalars.get('upgradeFailCause')!)).map(Number)).to.deep.equal(Object.values(FAIL_CAUSES));
      expect(Object.keys(enumeration(scalars.get('upgradeOperStatus')!)).map(Number)).to.deep.equal(Object.values(OPER_STATUS));
      expect(Object.keys(enumeration(scalars.get('upgradeAction')!)).map(Number)).to.deep.equal(Object.values(UPGRADE_ACTIONS));
      expect(Object.keys(enumeration(columns.get('upgradeHistoryResult')!)).map(Number)).to.deep.equal(Object.values(UPGRADE_RESULTS));
    });

    for (const [name, arcs] of Object.entries(NOTIFICATIONS)) {
      it(`${name} carries the notification objects`, () => {
        expect(module[name]!.OID).to.equal(upgradeOid(arcs));
        expect(module[name]!.OBJECTS).to.deep.equal([...NOTIFICATION_OBJECTS]);
      });
    }
  });

  describe('enumerations derived from shared constants', () => {
    it('upgradeOperStatus numbers phases from 1', () => {
      expect(OPER_STATUS.idle).to.equal(1);
      expect(OPER_STATUS.failed).to.equal(UPGRADE_PHASES.length);
    });

    it('upgradeFailCause starts with none(1)', () => {
      expect(ENUMERATIONS.UpgradeFailureCause!.none).to.equal(1);
    });
  });

  describe('encodings', () => {
    it('UpgradeUnsigned64 keeps 64 bits', () => {
      expect(encodeUnsigned64(6n * 1024n ** 3n).toString('hex')).to.equal('0000000180000000');
      expect(encodeUnsigned64(2n ** 64n - 1n).toString('hex')).to.equal('ffffffffffffffff');
    });

    it('DateAndTime is 11 octets in UTC', () => {
      const octets = encodeDateAndTime(new Date(Date.UTC(2026, 11, 4, 19, 5, 9, 300)));
      // 2026 (07ea), 12, 4, 19:05:09.3, '+' (2b), 0 hours, 0 minutes east of UTC.
      expect(octets.toString('hex')).to.equal('07ea0c0413050903' + '2b0000');
    });

    it('DateAndTime of no time is 8 zero octets', () => {
      expect(encodeDateAndTime(undefined).toString('hex')).to.equal('0000000000000000');
    });
  });

  describe('with libsmi and Net-SNMP', function () {
    this.timeout(30_000);

    it('smilint -l 6 reports nothing', async function () {
      const smilint = requirePeer(this, 'smilint', ['/usr/bin/smilint']);
      // smilint has no path flag; SMIPATH replaces its search path, so the imports resolve to net-snmp's copies.
      const result = await run(smilint, ['-l', '6', '-s', MIB_PATH], { SMIPATH: BASE_MIBS });

      expect(result.stdout + result.stderr).to.equal('');
      expect(result.status).to.equal(0);
    });

    it('snmptranslate resolves every object', async function () {
      const snmptranslate = requirePeer(this, 'snmptranslate', ['/usr/bin/snmptranslate']);
      const names = [...Object.keys(ALL_OBJECTS), 'upgradeHistoryIndex', ...Object.keys(NOTIFICATIONS)];
      const result = await run(snmptranslate, ['-M', `+${BASE_MIBS}:${REPO_ROOT}`, '-m', '+UPGRADE-MIB', '-On', ...names.map((name) => `UPGRADE-MIB::${name}`)]);

      const arcsOf = (name: string): readonly number[] => {
        if (name in ALL_OBJECTS) return ALL_OBJECTS[name]!.arcs;
        if (name === 'upgradeHistoryIndex') return [1, 5, 1, 1, 1];
        return NOTIFICATIONS[name as keyof typeof NOTIFICATIONS];
      };
      const expected = names.map((name) => `.${upgradeOid(arcsOf(name))}`);
      // snmptranslate prints a blank line between two OIDs.
      expect(result.stdout.split('\n').filter((line) => line !== '')).to.deep.equal(expected);
    });

    it('snmptranslate shows UpgradeUnsigned64 as a number', async function () {
      const snmptranslate = requirePeer(this, 'snmptranslate', ['/usr/bin/snmptranslate']);
      const result = await run(snmptranslate, ['-M', `+${BASE_MIBS}:${REPO_ROOT}`, '-m', '+UPGRADE-MIB', '-Td', 'UPGRADE-MIB::upgradeFlashFreeBytes']);

      expect(result.stdout).to.include('DISPLAY-HINT\t"8d"');
      expect(result.stdout).to.match(/SYNTAX\tOCTET STRING \(8\)/);
    });
  });
});
