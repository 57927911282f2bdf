/**
 * The callback server's paths: the activities build links and callback URLs on them, the callback server serves
 * them, and Cronofy is told them (the redirect URI registered with it, each Enterprise user's callback URL).
 */

/** Where Cronofy sends the person's (or the administrator's) browser after the consent page. */
export const REDIRECT_PATH = '/oauth/callback';

/** Where Cronofy posts each Enterprise Connect user's access. */
export const SERVICE_ACCOUNT_CALLBACK_PATH = '/cronofy/service-account-callback';

/** The person's own link when a downgrade revokes only once it is opened. */
export const OPEN_LINK_PATH = '/downgrade/open';

/** The service's link to a person's current consent request: what they are sent, by email or the application. */
export const CONSENT_LINK_PATH = '/downgrade/link';

/**
 * Where a handled redirect sends the browser on: the page that tells how the answer was judged, at a URL with no
 * code and no state to keep in its history.
 */
export const ANSWERED_PATH = '/downgrade/answered';
