export {
  generateKeyPair,
  keyIdOf,
  parsePublicKeyHex,
  readPublicKeyFile,
  readSecretKeyFile,
  writeKeyPair,
  type PublicKey,
  type SecretKey,
} from './keys.js';
export { MAX_IDENTIFIER_LENGTH, patchFileName, validateIdentifier } from './names.js';
