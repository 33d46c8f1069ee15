import snmp, { type User } from 'net-snmp';

import type { UsmSecurity } from './options.js';

/** Converts a USM user's settings, of the agent or of a manager's inventory, to net-snmp's user object. */
export function toNetSnmpUser(user: UsmSecurity): User {
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
