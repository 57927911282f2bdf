import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const alphanumeric = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
// The largest multiple of 62 below 256: bytes above it are dropped so every character is equally likely.
const unbiasedByteLimit = 248;

export function randomAlphanumeric(length: number): string {
  let result = '';
  while (result.length < length) {
    for (const byte of randomBytes(length)) {
      if (byte < unbiasedByteLimit && result.length < length)
        result += alphanumeric[byte % alphanumeric.length];
    }
  }
  return result;
}

/** Cronofy-style identifiers such as `acc_5700a00eb0ccd07000000000`. */
export function randomId(prefix: 'acc' | 'pro' | 'aut' | 'ser'): string {
  return `${prefix}_${randomBytes(12).toString('hex')}`;
}

export function constantTimeEqual(a: string, b: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(a), digest(b));
}
