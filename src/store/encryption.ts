import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';

const ALGORITHM = 'aes-256-gcm';
const ENVELOPE_VERSION = 'v1';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;
const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The key configuration is malformed. The message names the bad entry, never its key material. */
export class InvalidKeySpecError extends Error {
  override name = 'InvalidKeySpecError';
}

/** A ciphertext is malformed, was tampered with, belongs to another row or field, or its key is not configured. */
export class DecryptionError extends Error {
  override name = 'DecryptionError';
}

/** AES-256 keys by id, parsed from `"k2:BASE64,k1:BASE64"`; the first is the active one. */
export interface KeySpec {
  readonly keys: ReadonlyMap<string, KeyObject>;
  readonly activeKeyId: string;
}

/** Parses a key spec; errors name the bad entry by position and id, never its key material. */
export function parseKeySpec(spec: string): KeySpec {
  const entries = spec.split(',').map((entry) => entry.trim());
  if (entries.length === 1 && entries[0] === '') {
    throw new InvalidKeySpecError(
      'encryption key spec is empty; expected "keyId:BASE64KEY[,keyId:BASE64KEY...]"',
    );
  }
  const keys = new Map<string, KeyObject>();
  entries.forEach((entry, index) => {
    const position = `encryption key entry #${index + 1}`;
    const separator = entry.indexOf(':');
    if (separator < 0) {
      throw new InvalidKeySpecError(`${position} is not of the form "keyId:BASE64KEY"`);
    }
    const keyId = entry.slice(0, separator);
    const encoded = entry.slice(separator + 1);
    if (!KEY_ID_PATTERN.test(keyId)) {
      throw new InvalidKeySpecError(`${position} has an invalid key id (use 1-32 of A-Z a-z 0-9 _ -)`);
    }
    const named = `${position} ("${keyId}")`;
    if (keys.has(keyId)) throw new InvalidKeySpecError(`${named} repeats a key id`);
    if (!BASE64_PATTERN.test(encoded)) throw new InvalidKeySpecError(`${named} is not valid base64`);
    const key = Buffer.from(encoded, 'base64');
    if (key.length !== KEY_BYTES) {
      throw new InvalidKeySpecError(`${named} decodes to ${key.length} bytes; AES-256 needs ${KEY_BYTES}`);
    }
    keys.set(keyId, createSecretKey(key));
  });
  const [activeKeyId] = keys.keys();
  if (activeKeyId === undefined) throw new InvalidKeySpecError('encryption key spec has no keys');
  return { keys, activeKeyId };
}

/**
 * AES-256-GCM keys by id. The first key of the spec `"k2:BASE64,k1:BASE64"` encrypts; every key decrypts,
 * so keys rotate by prepending a new one and rewrapping (see CredentialStore.reencryptAll).
 */
export class Keyring {
  private constructor(private readonly spec: KeySpec) {}

  static parse(spec: string): Keyring {
    return new Keyring(parseKeySpec(spec));
  }

  /** A spec holding one new random key, for local development defaults. */
  static generateSpec(keyId = 'k1'): string {
    if (!KEY_ID_PATTERN.test(keyId)) throw new InvalidKeySpecError(`invalid key id "${keyId}"`);
    return `${keyId}:${randomBytes(KEY_BYTES).toString('base64')}`;
  }

  get activeKeyId(): string {
    return this.spec.activeKeyId;
  }

  /** `aad` binds the ciphertext to its place (row and field): decrypting with any other `aad` fails. */
  encrypt(plaintext: string, aad: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv(ALGORITHM, this.#key(this.spec.activeKeyId), iv, {
      authTagLength: TAG_BYTES,
    });
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [
      ENVELOPE_VERSION,
      this.spec.activeKeyId,
      iv.toString('base64url'),
      cipher.getAuthTag().toString('base64url'),
      ciphertext.toString('base64url'),
    ].join('.');
  }

  decrypt(envelope: string, aad: string): string {
    const [version, keyId, iv, tag, ciphertext, ...rest] = envelope.split('.');
    if (
      version !== ENVELOPE_VERSION ||
      keyId === undefined ||
      iv === undefined ||
      tag === undefined ||
      ciphertext === undefined ||
      rest.length > 0
    ) {
      throw new DecryptionError(`not a ${ENVELOPE_VERSION} ciphertext envelope`);
    }
    const ivBytes = Buffer.from(iv, 'base64url');
    const tagBytes = Buffer.from(tag, 'base64url');
    if (ivBytes.length !== IV_BYTES || tagBytes.length !== TAG_BYTES) {
      throw new DecryptionError('ciphertext envelope has a malformed IV or tag');
    }
    const decipher = createDecipheriv(ALGORITHM, this.#key(keyId), ivBytes, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(tagBytes);
    try {
      return Buffer.concat([
        decipher.update(Buffer.from(ciphertext, 'base64url')),
        decipher.final(),
      ]).toString('utf8');
    } catch {
      throw new DecryptionError(
        `ciphertext under key "${keyId}" failed authentication: tampered, or bound to another row or field`,
      );
    }
  }

  #key(keyId: string): KeyObject {
    const key = this.spec.keys.get(keyId);
    if (!key) throw new DecryptionError(`encryption key "${keyId}" is not configured`);
    return key;
  }
}
