import { fileURLToPath } from 'node:url';
import type { DataConverter } from '@temporalio/common';
import { EncryptionCodec } from './encryptionCodec.js';

/** `.ts` when run from source (tsx), `.js` when run from the compiled `dist/`. */
const moduleExtension = new URL(import.meta.url).pathname.endsWith('.ts') ? '.ts' : '.js';

/**
 * Encodes failure messages so that the payload codec encrypts them (see failureConverter.ts). Loaded by path: the
 * workflow bundle, the workers and every client must use the same converter.
 */
export const failureConverterPath = fileURLToPath(
  new URL(`./failureConverter${moduleExtension}`, import.meta.url),
);

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
