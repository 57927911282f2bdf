import { createCipheriv, createDecipheriv, randomBytes, type KeyObject } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';
import { parseKeySpec, type KeySpec } from '../store/encryption.js';

const { Payload: PayloadMessage } = proto.temporal.api.common.v1;

const ALGORITHM = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;
export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';

/** An encrypted payload cannot be decoded: its key is not configured, or it is malformed or tampered with. */
export class PayloadDecryptionError extends Error {
  override name = 'PayloadDecryptionError';
}

/**
 * Encrypts every payload, whole (metadata included), with AES-256-GCM under the active key of a key spec
 * `"k2:BASE64,k1:BASE64"`. Decoding uses the key named in each payload, so rotating keys (prepend a new one)
 * leaves older histories readable; payloads that were never encrypted pass through.
 */
export class EncryptionCodec implements PayloadCodec {
  private constructor(private readonly spec: KeySpec) {}

  /** @throws InvalidKeySpecError naming the bad entry (never its key material). */
  static fromSpec(spec: string): EncryptionCodec {
    return new EncryptionCodec(parseKeySpec(spec));
  }

  get activeKeyId(): string {
    return this.spec.activeKeyId;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.#encrypt(payload));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) =>
      metadataText(payload, 'encoding') === ENCRYPTED_ENCODING ? this.#decrypt(payload) : payload,
    );
  }

  #encrypt(payload: Payload): Payload {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv(ALGORITHM, this.#key(this.spec.activeKeyId), iv, {
      authTagLength: TAG_BYTES,
    });
    const plaintext = PayloadMessage.encode(payload).finish();
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return {
      metadata: {
        encoding: Buffer.from(ENCRYPTED_ENCODING),
        [KEY_ID_METADATA]: Buffer.from(this.spec.activeKeyId),
      },
      data: Buffer.concat([iv, ciphertext, cipher.getAuthTag()]),
    };
  }

  #decrypt(payload: Payload): Payload {
    const keyId = metadataText(payload, KEY_ID_METADATA);
    if (keyId === undefined) {
      throw new PayloadDecryptionError(`encrypted payload has no "${KEY_ID_METADATA}" metadata`);
    }
    const data = payload.data ?? new Uint8Array();
    if (data.length < IV_BYTES + TAG_BYTES) {
      throw new PayloadDecryptionError(`encrypted payload under key "${keyId}" is too short to be valid`);
    }
    const decipher = createDecipheriv(ALGORITHM, this.#key(keyId), data.subarray(0, IV_BYTES), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    let plaintext: Buffer;
    try {
      plaintext = Buffer.concat([
        decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      throw new PayloadDecryptionError(
        `encrypted payload under key "${keyId}" failed authentication: tampered with, or the key changed`,
      );
    }
    return PayloadMessage.decode(plaintext);
  }

  #key(keyId: string): KeyObject {
    const key = this.spec.keys.get(keyId);
    if (!key) {
      throw new PayloadDecryptionError(
        `payload was encrypted with key "${keyId}", which is not configured (configured: ${[...this.spec.keys.keys()].join(', ')})`,
      );
    }
    return key;
  }
}

function metadataText(payload: Payload, name: string): string | undefined {
  const value = payload.metadata?.[name];
  return value ? Buffer.from(value).toString('utf8') : undefined;
}
