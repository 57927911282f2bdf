import { CapturedPeople, type Capture, type ReportFields } from './capturedPeople.js';
import type { Database } from './database.js';

/** A person of an Individual campaign: their Cronofy account, the application's id, the authorization to revoke. */
export interface CampaignUser {
  sub: string;
  userId?: string;
  /** Credential-store reference of their Read/Write authorization; without it the downgrade revokes by sub. */
  credentialRef?: string;
  /** Their address, for the consent link, reminders and the confirmation by email. */
  email?: string;
}

export interface CampaignPreviewRecord {
  previewId: string;
  name: string;
  captureId: string;
  preview: unknown;
}

export interface CampaignReportRow extends ReportFields {
  sub: string;
  userId?: string;
}

const SUB = /^acc_[A-Za-z0-9_-]+$/;

type UserRow = { sub: string; user_id: string | null; credential_ref: string | null; email: string | null };

function toUser(row: UserRow): CampaignUser {
  return {
    sub: row.sub,
    userId: row.user_id ?? undefined,
    credentialRef: row.credential_ref ?? undefined,
    email: row.email ?? undefined,
  };
}

/**
 * The people of an Individual campaign, captured in order before anything starts, and each one's outcome as their
 * own downgrade records it. The campaign pages through the capture by id and counts outcomes here.
 */
export class Campaigns extends CapturedPeople {
  constructor(db: Database) {
    super(db, 'campaign');
  }

  /** Stores the users in order; a repeated sub is dropped (first place kept), and so is one that is not `acc_…`. */
  capture(
    pages: Iterable<readonly CampaignUser[]> | AsyncIterable<readonly CampaignUser[]>,
  ): Promise<Capture> {
    return this.captureInOrder<CampaignUser, CampaignUser>(
      pages,
      (user) => {
        const sub = user.sub.trim();
        return SUB.test(sub) ? { key: sub, person: { ...user, sub } } : { malformed: user.sub };
      },
      async (captureId, from, users) => {
        await this.db.query(
          `INSERT INTO campaign_users (capture_id, position, sub, user_id, credential_ref, email)
           SELECT $1, $2 + ordinality - 1, sub, user_id, credential_ref, email
           FROM unnest($3::text[], $4::text[], $5::text[], $6::text[])
             WITH ORDINALITY AS u(sub, user_id, credential_ref, email, ordinality)`,
          [
            captureId,
            from,
            users.map((user) => user.sub),
            users.map((user) => user.userId ?? null),
            users.map((user) => user.credentialRef ?? null),
            users.map((user) => user.email ?? null),
          ],
        );
      },
    );
  }

  async page(captureId: string, offset: number, limit: number): Promise<CampaignUser[]> {
    const rows = await this.db.query<UserRow>(
      `SELECT sub, user_id, credential_ref, email FROM campaign_users
       WHERE capture_id = $1 AND position >= $2 ORDER BY position LIMIT $3`,
      [captureId, offset, limit],
    );
    return rows.map(toUser);
  }

  /** A page of the people whose downgrade ended in one of `states`, in capture order, as they were captured. */
  async peopleEnded(captureId: string, states: readonly string[], offset: number, limit: number) {
    const rows = await this.db.query<UserRow>(
      `SELECT u.sub, u.user_id, u.credential_ref, u.email FROM campaign_users u
       JOIN campaign_user_outcomes o ON o.capture_id = u.capture_id AND o.sub = u.sub
       WHERE u.capture_id = $1 AND o.state = ANY($2::text[]) ORDER BY u.position OFFSET $3 LIMIT $4`,
      [captureId, states, offset, limit],
    );
    return rows.map(toUser);
  }

  /** Idempotent per user: a retried activity writes the same row again. */
  async recordOutcome(
    captureId: string,
    outcome: { sub: string; state: string; reason?: string; providerName?: string; credentialRef?: string },
  ): Promise<void> {
    await this.db.query(
      `INSERT INTO campaign_user_outcomes (capture_id, sub, state, reason, provider_name, credential_ref)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (capture_id, sub) DO UPDATE
         SET state = EXCLUDED.state, reason = EXCLUDED.reason, provider_name = EXCLUDED.provider_name,
             credential_ref = EXCLUDED.credential_ref, updated_at = now()`,
      [
        captureId,
        outcome.sub,
        outcome.state,
        outcome.reason ?? null,
        outcome.providerName ?? null,
        outcome.credentialRef ?? null,
      ],
    );
  }

  /** A page of the report (CapturedPeople.reportPage): each person by sub, with the application's id. */
  report(captureId: string, offset: number, limit: number): Promise<CampaignReportRow[]> {
    return this.reportPage(captureId, offset, limit, (row) => ({
      sub: row.sub as string,
      userId: (row.user_id as string | null) ?? undefined,
    }));
  }

  async savePreview(record: CampaignPreviewRecord): Promise<void> {
    await this.storePreview({ ...record, subject: record.name });
  }

  async getPreview(previewId: string): Promise<CampaignPreviewRecord | undefined> {
    const stored = await this.storedPreview(previewId);
    return (
      stored && { previewId, name: stored.subject, captureId: stored.captureId, preview: stored.preview }
    );
  }
}
