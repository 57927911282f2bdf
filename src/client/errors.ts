/** The errors the service's clients (src/client/) throw by name. */

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

/** A request the client cannot make as asked (no service account named, another domain's preview); nothing started. */
export class DowngradeUsageError extends Error {
  override readonly name = 'DowngradeUsageError';
}
