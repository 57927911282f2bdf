/** Per-user reports as CSV: what a customer's security team asks for as proof. One page at a time; the first
 * carries the header, so that pages concatenate into one file. */
import { stringify } from 'csv-stringify/sync';
import type { CampaignReportRow } from './store/campaigns.js';
import type { ReportRow } from './store/enterpriseUsers.js';

/** A domain's users. */
export function reportCsv(rows: readonly ReportRow[], options: { header: boolean }): string {
  return stringify(
    rows.map((row) => [row.position, row.email, row.state, row.reason, row.providerName, row.recordedAt]),
    {
      header: options.header,
      columns: ['position', 'email', 'state', 'reason', 'provider_name', 'recorded_at'],
    },
  );
}

/** A campaign's users. */
export function campaignReportCsv(rows: readonly CampaignReportRow[], options: { header: boolean }): string {
  return stringify(
    rows.map((row) => [
      row.position,
      row.sub,
      row.userId,
      row.state,
      row.reason,
      row.providerName,
      row.recordedAt,
    ]),
    {
      header: options.header,
      columns: ['position', 'sub', 'user_id', 'state', 'reason', 'provider_name', 'recorded_at'],
    },
  );
}
