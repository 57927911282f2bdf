/** The errors the service's clients (src/client/) throw by name. */

/** The base of the clients' errors: each is named after its class, so a caller can tell them apart by `name`. */
export class DowngradeClientError extends Error {
  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class DowngradeNotFoundError extends DowngradeClientError {}

/** An operator's request the run refused (wrong phase, stale preview) or could not take (it ended); nothing changed. */
export class DowngradeRefusedError extends DowngradeClientError {}

export class PreviewNotFoundError extends DowngradeClientError {}

/** A request the client cannot make as asked (no service account named, another domain's preview); nothing started. */
export class DowngradeUsageError extends DowngradeClientError {}
