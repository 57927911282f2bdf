import { randomBytes } from 'node:crypto';
import type { Database } from './database.js';
import type { Keyring } from './encryption.js';

/** Whose people an upload holds: a domain's users or a campaign's people. */
export type UploadKind = 'domains' | 'campaigns';

export interface Upload {
  uploadId: string;
  kind: UploadKind;
  pages: number;
  people: number;
  createdAt: string;
}

type Row = {
  upload_id: string;
  key_id: string;
  kind: UploadKind;
  pages: number;
  people: number;
  created_at: Date;
};

/**
 * The people of a preview as an API caller sends them, a page per request, until the preview reads them all in
 * order: what lets a domain of any size travel in requests of a bounded size. A page may carry refresh tokens, so it
 * is kept encrypted, and the upload is deleted once a preview has read it. An upload belongs to the key that made
 * it.
 */
export class Uploads {
  constructor(
    private readonly database: Database,
    private readonly keyring: Keyring,
  ) {}

  async create(keyId: string, kind: UploadKind): Promise<Upload> {
    const uploadId = `up_${randomBytes(12).toString('base64url')}`;
    const [row] = await this.database.query<Row>(
      `INSERT INTO api_uploads (upload_id, key_id, kind) VALUES ($1, $2, $3) RETURNING *`,
      [uploadId, keyId, kind],
    );
    return describe(row!);
  }

  /** The upload, if `keyId` made it. */
  async get(keyId: string, uploadId: string): Promise<Upload | undefined> {
    const [row] = await this.database.query<Row>(
      `SELECT * FROM api_uploads WHERE upload_id = $1 AND key_id = $2`,
      [uploadId, keyId],
    );
    return row && describe(row);
  }

  /** Adds a page after the others; undefined when `keyId` made no such upload. */
  async addPage(keyId: string, uploadId: string, people: readonly unknown[]): Promise<Upload | undefined> {
    // One statement numbers the page and stores it, so that concurrent pages of one upload each get their own place.
    const [row] = await this.database.query<Row>(
      `UPDATE api_uploads SET pages = pages + 1, people = people + $3
       WHERE upload_id = $1 AND key_id = $2 RETURNING *`,
      [uploadId, keyId, people.length],
    );
    if (!row) return undefined;
    const page = row.pages;
    await this.database.query(`INSERT INTO api_upload_pages (upload_id, page, people) VALUES ($1, $2, $3)`, [
      uploadId,
      page,
      this.keyring.encrypt(JSON.stringify(people), pageAad(uploadId, page)),
    ]);
    return describe(row);
  }

  /** The upload's pages in the order they were added. */
  async *pages<P>(uploadId: string): AsyncIterable<P[]> {
    const rows = await this.database.query<{ page: number }>(
      `SELECT page FROM api_upload_pages WHERE upload_id = $1 ORDER BY page`,
      [uploadId],
    );
    for (const { page } of rows) {
      const [row] = await this.database.query<{ people: string }>(
        `SELECT people FROM api_upload_pages WHERE upload_id = $1 AND page = $2`,
        [uploadId, page],
      );
      yield JSON.parse(this.keyring.decrypt(row!.people, pageAad(uploadId, page))) as P[];
    }
  }

  async delete(uploadId: string): Promise<void> {
    await this.database.query(`DELETE FROM api_uploads WHERE upload_id = $1`, [uploadId]);
  }
}

function pageAad(uploadId: string, page: number): string {
  return `api_upload_pages:${uploadId}:${page}`;
}

function describe(row: Row): Upload {
  return {
    uploadId: row.upload_id,
    kind: row.kind,
    pages: Number(row.pages),
    people: Number(row.people),
    createdAt: new Date(row.created_at).toISOString(),
  };
}
