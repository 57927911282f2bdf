import { randomBytes } from 'node:crypto';
import type { Database } from './database.js';
import { droppedTally, type Dropped } from './dropped.js';

/** A person of an Individual campaign: their Cronofy account, the application's id, the authorization to revoke. */
export interface CampaignUser {
  sub: string;
  userId?: string;
  /** Credential-store reference of their Read/Write authorization; without it the downgrade revokes by sub. */
  credentialRef?: string;
  /** Their address, for the consent link, reminders and the confirmation by email. */
  email?: string;
}

export interface CampaignCapture {
  captureId: string;
  count: number;
  dropped: Dropped;
}

export interface CampaignPreviewRecord {
  previewId: string;
  name: string;
  captureId: string;
  preview: unknown;
}

export interface CampaignReportRow {
  position: number;
  sub: string;
  userId?: string;
  /** The user's final state, or `pending` while their downgrade runs. */
  state: string;
  reason?: string;
  providerName?: string;
  recordedAt?: string;
}

const SUB = /^acc_[A-Za-z0-9_-]+$/;

/**
 * The people of an Individual campaign, captured in order before anything starts, and each one's outcome as their
 * own downgrade records it. The campaign pages through the capture by id and counts outcomes here.
 */
export class Campaigns {
  constructor(private readonly db: Database) {}

  /** Stores the users in order; a repeated sub is dropped (first place kept), and so is one that is not `acc_…`. */
  async capture(pages: Iterable<readonly CampaignUser[]> | AsyncIterable<readonly CampaignUser[]>) {
    const captureId = `cap_${randomBytes(12).toString('base64url')}`;
    const seen = new Set<string>();
    const { dropped, drop } = droppedTally();
    let count = 0;
    for await (const page of pages) {
      const fresh: CampaignUser[] = [];
      for (const user of page) {
        const sub = user.sub.trim();
        if (!SUB.test(sub)) drop('malformed', user.sub);
        else if (seen.has(sub)) drop('duplicates', sub);
        else {
          seen.add(sub);
          fresh.push({ ...user, sub });
        }
      }
      if (fresh.length === 0) continue;
      await this.db.query(
        `INSERT INTO campaign_users (capture_id, position, sub, user_id, credential_ref, email)
         SELECT $1, $2 + ordinality - 1, sub, user_id, credential_ref, email
         FROM unnest($3::text[], $4::text[], $5::text[], $6::text[])
           WITH ORDINALITY AS u(sub, user_id, credential_ref, email, ordinality)`,
        [
          captureId,
          count,
          fresh.map((user) => user.sub),
          fresh.map((user) => user.userId ?? null),
          fresh.map((user) => user.credentialRef ?? null),
          fresh.map((user) => user.email ?? null),
        ],
      );
      count += fresh.length;
    }
    return { captureId, count, dropped } satisfies CampaignCapture;
  }

  async page(captureId: string, offset: number, limit: number): Promise<CampaignUser[]> {
    const rows = await this.db.query<{
      sub: string;
      user_id: string | null;
      credential_ref: string | null;
      email: string | null;
    }>(
      `SELECT sub, user_id, credential_ref, email FROM campaign_users
       WHERE capture_id = $1 AND position >= $2 ORDER BY position LIMIT $3`,
      [captureId, offset, limit],
    );
    return rows.map((row) => ({
      sub: row.sub,
      userId: row.user_id ?? undefined,
      credentialRef: row.credential_ref ?? undefined,
      email: row.email ?? undefined,
    }));
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

  async countsByState(captureId: string): Promise<Record<string, number>> {
    const rows = await this.db.query<{ state: string; count: number }>(
      'SELECT state, count(*)::int AS count FROM campaign_user_outcomes WHERE capture_id = $1 GROUP BY state',
      [captureId],
    );
    return Object.fromEntries(rows.map((row) => [row.state, row.count]));
  }

  /** Positions before `before` with no outcome yet: the users still on their way. */
  async unfinishedPositions(captureId: string, before: number): Promise<number[]> {
    const rows = await this.db.query<{ position: number }>(
      `SELECT u.position FROM campaign_users u
       LEFT JOIN campaign_user_outcomes o ON o.capture_id = u.capture_id AND o.sub = u.sub
       WHERE u.capture_id = $1 AND u.position < $2 AND o.sub IS NULL ORDER BY u.position`,
      [captureId, before],
    );
    return rows.map((row) => Number(row.position));
  }

  async report(captureId: string, offset: number, limit: number): Promise<CampaignReportRow[]> {
    const rows = await this.db.query<{
      position: number;
      sub: string;
      user_id: string | null;
      state: string | null;
      reason: string | null;
      provider_name: string | null;
      updated_at: Date | string | null;
    }>(
      `SELECT u.position, u.sub, u.user_id, o.state, o.reason, o.provider_name, o.updated_at
       FROM campaign_users u
       LEFT JOIN campaign_user_outcomes o ON o.capture_id = u.capture_id AND o.sub = u.sub
       WHERE u.capture_id = $1 AND u.position >= $2 ORDER BY u.position LIMIT $3`,
      [captureId, offset, limit],
    );
    return rows.map((row) => ({
      position: Number(row.position),
      sub: row.sub,
      userId: row.user_id ?? undefined,
      state: row.state ?? 'pending',
      reason: row.reason ?? undefined,
      providerName: row.provider_name ?? undefined,
      recordedAt: row.updated_at ? new Date(row.updated_at).toISOString() : undefined,
    }));
  }

  async savePreview(record: CampaignPreviewRecord): Promise<void> {
    await this.db.query(
      `INSERT INTO previews (preview_id, kind, domain, capture_id, preview) VALUES ($1, 'campaign', $2, $3, $4::jsonb)`,
      [record.previewId, record.name, record.captureId, JSON.stringify(record.preview)],
    );
  }

  async getPreview(previewId: string): Promise<CampaignPreviewRecord | undefined> {
    const [row] = await this.db.query<{
      preview_id: string;
      domain: string;
      capture_id: string;
      preview: unknown;
    }>(
      "SELECT preview_id, domain, capture_id, preview FROM previews WHERE preview_id = $1 AND kind = 'campaign'",
      [previewId],
    );
    return (
      row && { previewId: row.preview_id, name: row.domain, captureId: row.capture_id, preview: row.preview }
    );
  }
}
