/** The per-user report of a domain's downgrade as CSV: what a customer's security team asks for as proof. */
import { stringify } from 'csv-stringify/sync';
import type { ReportRow } from './store/enterpriseUsers.js';

const COLUMNS = ['position', 'email', 'state', 'reason', 'provider_name', 'recorded_at'] as const;

/** One page of rows; the first page carries the header, so that pages concatenate into one file. */
export function reportCsv(rows: readonly ReportRow[], options: { header: boolean }): string {
  return stringify(
    rows.map((row) => [row.position, row.email, row.state, row.reason, row.providerName, row.recordedAt]),
    { header: options.header, columns: [...COLUMNS] },
  );
}
