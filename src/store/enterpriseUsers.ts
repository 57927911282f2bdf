import { z } from 'zod';
import { CapturedPeople, type Capture, type ReportFields } from './capturedPeople.js';

export type { Capture } from './capturedPeople.js';
import type { Database } from './database.js';

const Email = z.email();

export interface PreviewRecord {
  previewId: string;
  domain: string;
  captureId: string;
  serviceAccountRef?: string;
  serviceAccountSub?: string;
  preview: unknown;
}

export interface ReportRow extends ReportFields {
  email: string;
}

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
export class EnterpriseUsers extends CapturedPeople {
  constructor(db: Database) {
    super(db, 'enterprise');
  }

  /**
   * Stores the users in order and returns the capture's id. Emails are compared trimmed and lower-cased; a
   * duplicate is dropped (first place kept), and so is an address that is not an email (Cronofy would refuse the
   * whole batch of 50 it travels in). What was dropped is counted, with a few examples, for the preview.
   */
  capture(pages: Iterable<readonly string[]> | AsyncIterable<readonly string[]>): Promise<Capture> {
    return this.captureInOrder<string, string>(
      pages,
      (given) => {
        const email = given.trim().toLowerCase();
        return Email.safeParse(email).success ? { key: email, person: email } : { malformed: given };
      },
      async (captureId, from, emails) => {
        await this.db.query(
          `INSERT INTO enterprise_users (capture_id, position, email)
           SELECT $1, $2 + ordinality - 1, email FROM unnest($3::text[]) WITH ORDINALITY AS u(email, ordinality)`,
          [captureId, from, emails],
        );
      },
    );
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

  async savePreview(record: PreviewRecord): Promise<void> {
    await this.storePreview({ ...record, subject: record.domain });
  }

  async getPreview(previewId: string): Promise<PreviewRecord | undefined> {
    const stored = await this.storedPreview(previewId);
    if (!stored) return undefined;
    const { subject, ...record } = stored;
    return { ...record, domain: subject };
  }

  /** A page of the report (CapturedPeople.reportPage): each user by email. */
  report(captureId: string, offset: number, limit: number): Promise<ReportRow[]> {
    return this.reportPage(captureId, offset, limit, (row) => ({ email: row.email as string }));
  }
}
