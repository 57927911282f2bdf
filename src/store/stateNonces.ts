import type { Database } from './database.js';

/** One callback's claim: its state's nonce and, on a first callback with a code, the secret to store. */
export interface NonceClaim {
  nonce: string;
  expiresAt: Date;
  secret?: { ref: string; purpose: string; valueEnc: string; ttlSeconds: number };
}

/**
 * One statement for a batch of callbacks' claims (CredentialStore.claimStateNonce): each uses its state's nonce and,
 * the first time only, stores the secret it carried. A nonce twice in one batch is claimed by its first occurrence.
 */
export async function claimStateNonces(
  db: Database,
  claims: NonceClaim[],
): Promise<Array<{ secretRef?: string } | undefined>> {
  const firstOfNonce = new Map<string, NonceClaim>();
  for (const claim of claims) if (!firstOfNonce.has(claim.nonce)) firstOfNonce.set(claim.nonce, claim);
  const firsts = [...firstOfNonce.values()];
  const claimed = await db.query<{ nonce: string }>(
    `WITH input AS (
       SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::float8[])
         AS input (nonce, expires_at, ref, purpose, value_enc, ttl_seconds)
     ), claimed AS (
       -- In nonce order: two batches (two callback servers) locking the same nonces in one order cannot deadlock.
       INSERT INTO state_nonces (nonce, expires_at) SELECT nonce, expires_at FROM input ORDER BY nonce
       ON CONFLICT (nonce) DO NOTHING RETURNING nonce
     ), stored AS (
       INSERT INTO secrets (ref, purpose, value_enc, expires_at)
       SELECT input.ref, input.purpose, input.value_enc, now() + input.ttl_seconds * interval '1 second'
       FROM input JOIN claimed USING (nonce) WHERE input.ref IS NOT NULL
     )
     SELECT nonce FROM claimed`,
    [
      firsts.map((claim) => claim.nonce),
      firsts.map((claim) => claim.expiresAt.toISOString()),
      firsts.map((claim) => claim.secret?.ref ?? null),
      firsts.map((claim) => claim.secret?.purpose ?? null),
      firsts.map((claim) => claim.secret?.valueEnc ?? null),
      firsts.map((claim) => claim.secret?.ttlSeconds ?? null),
    ],
    { prepareAs: 'claim_state_nonces' },
  );
  const won = new Set(claimed.map(({ nonce }) => nonce));
  return claims.map((claim) => {
    if (firstOfNonce.get(claim.nonce) !== claim || !won.has(claim.nonce)) return undefined;
    return claim.secret ? { secretRef: claim.secret.ref } : {};
  });
}
