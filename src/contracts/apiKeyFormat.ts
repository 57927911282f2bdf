import { randomBytes } from 'node:crypto';

/**
 * An API key's text, `cdk_<id>_<secret>`: the id finds the key's row, the secret is compared with its stored hash.
 * Both are random; the secret is 256 bits.
 */
export const API_KEY_PATTERN = /^cdk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/** A new key's text: what is shown once, to whoever made it. */
export function generateApiKey(): string {
  // Hex: an id never starts with `-`, which a command line would take for an option.
  return `cdk_${randomBytes(8).toString('hex')}_${randomBytes(32).toString('base64url')}`;
}
