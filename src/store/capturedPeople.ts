import { randomBytes } from 'node:crypto';
import type { Database } from './database.js';
import { droppedTally, type Dropped } from './dropped.js';

/**
 * The tables of each kind of operated run's people: a domain's users (named by email) and a campaign's people
 * (named by their Cronofy sub). Where a completed person's provider is read differs: a domain's users from the
 * credentials their grant stored, a campaign's from their outcome.
 */
const KINDS = {
  enterprise: {
    people: 'enterprise_users',
    outcomes: 'enterprise_user_outcomes',
    key: 'email',
    provider: 'c.provider_name',
    providerJoin: 'LEFT JOIN credentials c ON c.ref = o.credential_ref',
  },
  campaign: {
    people: 'campaign_users',
    outcomes: 'campaign_user_outcomes',
    key: 'sub',
    provider: 'o.provider_name',
    providerJoin: '',
  },
} as const;
export type PeopleKind = keyof typeof KINDS;

/** What a report says of each person, whatever the kind: their place, their outcome so far, and when. */
export interface ReportFields {
  position: number;
  /** The person's final state, or `pending` while their workflow runs. */
  state: string;
  reason?: string;
  /** The provider Cronofy reported for the person's new authorization, when one was verified. */
  providerName?: string;
  recordedAt?: string;
}

/** A preview as stored: bound to the capture it counted, and to the domain's or the campaign's name. */
export interface StoredPreview {
  previewId: string;
  /** The domain, or the campaign's name. */
  subject: string;
  captureId: string;
  serviceAccountRef?: string;
  serviceAccountSub?: string;
  preview: unknown;
}

type Row = Record<string, unknown>;

export interface Capture {
  captureId: string;
  /** The people kept, in order. */
  count: number;
  dropped: Dropped;
}

/** How many people one statement stores: a page may hold a whole domain. */
const STORE_CHUNK = 1000;

/**
 * The people an operated run captured before anything started, in order, and each one's outcome: what a domain's
 * and a campaign's runs read alike (progress, the people still on their way, the report, the preview). Each kind
 * adds how its people are captured, paged and recorded.
 */
export abstract class CapturedPeople {
  readonly #tables: (typeof KINDS)[PeopleKind];

  protected constructor(
    protected readonly db: Database,
    readonly kind: PeopleKind,
  ) {
    this.#tables = KINDS[kind];
  }

  /**
   * Stores the people given, in order, under a new capture id. `admit` names a person by their key (normalised), or
   * says what was malformed; a repeated key is dropped, its first place kept. What was dropped is counted, with a
   * few examples, for the preview. `store` writes people at positions `from` onwards.
   */
  protected async captureInOrder<G, P>(
    pages: Iterable<readonly G[]> | AsyncIterable<readonly G[]>,
    admit: (given: G) => { key: string; person: P } | { malformed: string },
    store: (captureId: string, from: number, people: P[]) => Promise<void>,
  ): Promise<Capture> {
    const captureId = `cap_${randomBytes(12).toString('base64url')}`;
    const seen = new Set<string>();
    const { dropped, drop } = droppedTally();
    let count = 0;
    for await (const page of pages) {
      const fresh: P[] = [];
      for (const given of page) {
        const admitted = admit(given);
        if ('malformed' in admitted) drop('malformed', admitted.malformed);
        else if (seen.has(admitted.key)) drop('duplicates', admitted.key);
        else {
          seen.add(admitted.key);
          fresh.push(admitted.person);
        }
      }
      for (let start = 0; start < fresh.length; start += STORE_CHUNK) {
        const chunk = fresh.slice(start, start + STORE_CHUNK);
        await store(captureId, count, chunk);
        count += chunk.length;
      }
    }
    return { captureId, count, dropped };
  }

  /** How many people have an outcome, by state: the run's progress. */
  async countsByState(captureId: string): Promise<Record<string, number>> {
    const rows = await this.db.query<{ state: string; count: number }>(
      `SELECT state, count(*)::int AS count FROM ${this.#tables.outcomes} WHERE capture_id = $1 GROUP BY state`,
      [captureId],
    );
    return Object.fromEntries(rows.map((row) => [row.state, row.count]));
  }

  /** Positions before `before` with no outcome recorded yet: the people still on their way. */
  async unfinishedPositions(captureId: string, before: number): Promise<number[]> {
    const { people, outcomes, key } = this.#tables;
    const rows = await this.db.query<{ position: number }>(
      `SELECT u.position FROM ${people} u
       LEFT JOIN ${outcomes} o ON o.capture_id = u.capture_id AND o.${key} = u.${key}
       WHERE u.capture_id = $1 AND u.position < $2 AND o.${key} IS NULL ORDER BY u.position`,
      [captureId, before],
    );
    return rows.map((row) => Number(row.position));
  }

  /**
   * A page of the report: every captured person in capture order with their outcome so far (`pending` while they
   * have none), the provider their new authorization was verified with, and when the outcome was recorded.
   * `person` reads the kind's own columns of the person.
   */
  protected async reportPage<P>(
    captureId: string,
    offset: number,
    limit: number,
    person: (row: Row) => P,
  ): Promise<Array<P & ReportFields>> {
    const { people, outcomes, key, provider, providerJoin } = this.#tables;
    const rows = await this.db.query<Row>(
      `SELECT u.*, o.state, o.reason, ${provider} AS provider_name, o.updated_at
       FROM ${people} u
       LEFT JOIN ${outcomes} o ON o.capture_id = u.capture_id AND o.${key} = u.${key}
       ${providerJoin}
       WHERE u.capture_id = $1 AND u.position >= $2 ORDER BY u.position LIMIT $3`,
      [captureId, offset, limit],
    );
    return rows.map((row) => ({
      ...person(row),
      position: Number(row.position),
      state: (row.state as string | null) ?? 'pending',
      reason: (row.reason as string | null) ?? undefined,
      providerName: (row.provider_name as string | null) ?? undefined,
      recordedAt: row.updated_at ? new Date(row.updated_at as string | Date).toISOString() : undefined,
    }));
  }

  /** Binds a preview's id to the capture it describes; the preview itself is kept as shown. */
  protected async storePreview(record: StoredPreview): Promise<void> {
    await this.db.query(
      `INSERT INTO previews (preview_id, kind, domain, capture_id, service_account_ref, service_account_sub, preview)
       VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)`,
      [
        record.previewId,
        this.kind,
        record.subject,
        record.captureId,
        record.serviceAccountRef ?? null,
        record.serviceAccountSub ?? null,
        JSON.stringify(record.preview),
      ],
    );
  }

  /** A preview of this kind, by id. */
  protected async storedPreview(previewId: string): Promise<StoredPreview | undefined> {
    const [row] = await this.db.query<{
      preview_id: string;
      domain: string;
      capture_id: string;
      service_account_ref: string | null;
      service_account_sub: string | null;
      preview: unknown;
    }>('SELECT * FROM previews WHERE preview_id = $1 AND kind = $2', [previewId, this.kind]);
    return (
      row && {
        previewId: row.preview_id,
        subject: row.domain,
        captureId: row.capture_id,
        serviceAccountRef: row.service_account_ref ?? undefined,
        serviceAccountSub: row.service_account_sub ?? undefined,
        preview: row.preview,
      }
    );
  }
}
