/** The errors the typed clients (DowngradeClient, CampaignClient) throw by name. */

export class DowngradeNotFoundError extends Error {
  override readonly name = 'DowngradeNotFoundError';
}

/** An operator's request the run refused (wrong phase, stale preview) or could not take (it ended); nothing changed. */
export class DowngradeRefusedError extends Error {
  override readonly name = 'DowngradeRefusedError';
}

export class PreviewNotFoundError extends Error {
  override readonly name = 'PreviewNotFoundError';
}
