/**
 * The patch file: its format, vendor signatures and the checks a device runs before it writes to flash.
 */
export {
  checkPublicKey,
  formatPublicKeyFile,
  generateKeyPair,
  keyIdOf,
  parseKeyId,
  parsePublicKeyHex,
  readPublicKeyFile,
  readSecretKeyFile,
  writeKeyPair,
  type PublicKey,
  type SecretKey,
} from './keys.js';
export { MAX_IDENTIFIER_LENGTH, patchFileName, validateIdentifier } from './names.js';
export {
  encodeHead,
  encodeHeader,
  MAX_HEAD_BYTES,
  parsePatchHead,
  PREFIX_BYTES,
  type ParsedPatch,
  type PatchHeader,
  type PatchSignature,
} from './format.js';
export { signHeader, signingInput, verifySignatures, type TrustSet } from './signatures.js';
export {
  addSignature,
  checkPlatform,
  checkSource,
  checkTarget,
  codecOf,
  createPatch,
  decodeBody,
  digestFile,
  readPatchHead,
  sha256File,
  sha256Hex,
  verifyBodyDigest,
  type CreatePatchOptions,
} from './patch.js';
export { verifyPatchFile, type VerifyReport } from './verify.js';
