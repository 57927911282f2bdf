import { randomBytes } from 'node:crypto';
import type { Database } from './database.js';

export interface UserOutcome {
  email: string;
  state: string;
  reason?: string;
  credentialRef?: string;
}

/**
 * The users of an Enterprise Connect domain, captured before the service account is revoked (revoking it revokes
 * them), and each user's outcome. Workflows page through a capture by id, so a domain of 50,000 users never
 * travels as one payload.
 */
export class EnterpriseUsers {
  constructor(private readonly db: Database) {}

  /** Stores the users in order and returns the capture's id; duplicates are dropped, first place kept. */
  async capture(
    pages: Iterable<readonly string[]> | AsyncIterable<readonly string[]>,
  ): Promise<{ captureId: string; count: number }> {
    const captureId = `cap_${randomBytes(12).toString('base64url')}`;
    const seen = new Set<string>();
    let count = 0;
    for await (const page of pages) {
      const fresh = page
        .map((email) => email.trim().toLowerCase())
        .filter((email) => email && !seen.has(email) && seen.add(email));
      for (let start = 0; start < fresh.length; start += 1000) {
        const chunk = fresh.slice(start, start + 1000);
        await this.db.query(
          `INSERT INTO enterprise_users (capture_id, position, email)
           SELECT $1, $2 + ordinality - 1, email FROM unnest($3::text[]) WITH ORDINALITY AS u(email, ordinality)`,
          [captureId, count, chunk],
        );
        count += chunk.length;
      }
    }
    return { captureId, count };
  }

  async page(captureId: string, offset: number, limit: number): Promise<string[]> {
    const rows = await this.db.query<{ email: string }>(
      'SELECT email FROM enterprise_users WHERE capture_id = $1 AND position >= $2 ORDER BY position LIMIT $3',
      [captureId, offset, limit],
    );
    return rows.map((row) => row.email);
  }

  /** Idempotent per user: a retried activity or a replayed child writes the same row again. */
  async recordOutcome(captureId: string, outcome: UserOutcome): Promise<void> {
    await this.db.query(
      `INSERT INTO enterprise_user_outcomes (capture_id, email, state, reason, credential_ref)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (capture_id, email) DO UPDATE
         SET state = EXCLUDED.state, reason = EXCLUDED.reason, credential_ref = EXCLUDED.credential_ref,
             attempts = enterprise_user_outcomes.attempts + 1, updated_at = now()`,
      [captureId, outcome.email, outcome.state, outcome.reason ?? null, outcome.credentialRef ?? null],
    );
  }

  /** Positions before `before` with no outcome recorded yet: the users still on their way. */
  async unfinishedPositions(captureId: string, before: number): Promise<number[]> {
    const rows = await this.db.query<{ position: number }>(
      `SELECT u.position FROM enterprise_users u
       LEFT JOIN enterprise_user_outcomes o ON o.capture_id = u.capture_id AND o.email = u.email
       WHERE u.capture_id = $1 AND u.position < $2 AND o.email IS NULL ORDER BY u.position`,
      [captureId, before],
    );
    return rows.map((row) => Number(row.position));
  }

  async countsByState(captureId: string): Promise<Record<string, number>> {
    const rows = await this.db.query<{ state: string; count: number }>(
      'SELECT state, count(*)::int AS count FROM enterprise_user_outcomes WHERE capture_id = $1 GROUP BY state',
      [captureId],
    );
    return Object.fromEntries(rows.map((row) => [row.state, row.count]));
  }

  async outcomes(
    captureId: string,
    options: { states?: string[]; offset?: number; limit?: number } = {},
  ): Promise<UserOutcome[]> {
    const rows = await this.db.query<{
      email: string;
      state: string;
      reason: string | null;
      credential_ref: string | null;
    }>(
      `SELECT email, state, reason, credential_ref FROM enterprise_user_outcomes
       WHERE capture_id = $1 AND ($2::text[] IS NULL OR state = ANY($2))
       ORDER BY email OFFSET $3 LIMIT $4`,
      [captureId, options.states ?? null, options.offset ?? 0, options.limit ?? 1000],
    );
    return rows.map((row) => ({
      email: row.email,
      state: row.state,
      reason: row.reason ?? undefined,
      credentialRef: row.credential_ref ?? undefined,
    }));
  }
}
