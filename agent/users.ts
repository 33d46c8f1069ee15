import snmp, { type User } from 'net-snmp';

import type { UsmUser } from './options.js';

/** Converts a configured USM user to net-snmp's user object. */
export function toNetSnmpUser(user: UsmUser): User {
  const converted: User = {
    name: user.name,
    level: user.level === 'authPriv' ? snmp.SecurityLevel.authPriv : snmp.SecurityLevel.authNoPriv,
    authProtocol: snmp.AuthProtocols[user.authProtocol],
    authKey: user.authPassword,
  };
  if (user.level === 'authPriv') {
    converted.privProtocol = snmp.PrivProtocols[user.privProtocol!];
    converted.privKey = user.privPassword;
  }
  return converted;
}
