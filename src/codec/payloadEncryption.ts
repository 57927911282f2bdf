import type { DataConverter } from '@temporalio/common';
import { modulePath } from '../modulePath.js';
import { EncryptionCodec } from './encryptionCodec.js';

/**
 * Encodes failure messages so that the payload codec encrypts them (see failureConverter.ts). Loaded by path: the
 * workflow bundle, the workers and every client must use the same converter.
 */
export const failureConverterPath = modulePath('./failureConverter', import.meta.url);

/**
 * The payload codec and data converter every process that talks to Temporal about downgrades uses: the worker, the
 * callback server, the codec server and any backend's client. `PAYLOAD_ENCRYPTION_KEYS` is the service's
 * (`<key id>:<base64 key>`, comma-separated, the first one encrypting).
 */
export function payloadEncryption(config: { PAYLOAD_ENCRYPTION_KEYS: string }): {
  codec: EncryptionCodec;
  dataConverter: DataConverter;
} {
  const codec = EncryptionCodec.fromSpec(config.PAYLOAD_ENCRYPTION_KEYS);
  return { codec, dataConverter: { payloadCodecs: [codec], failureConverterPath } };
}
