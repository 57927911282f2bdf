import type { AnswerClaims } from '../contracts/stateToken.js';
import type { DowngradeStatus } from '../workflows/definitions.js';
import type { EnterpriseStatus } from '../workflows/enterpriseDefinitions.js';

/** The status of the run that got an answer, as its status query reads it: a person's downgrade, or a domain's. */
export type AskedStatus =
  { asked: 'person'; status: DowngradeStatus } | { asked: 'administrator'; status: EnterpriseStatus };

/** How the downgrade judged one prompt's answer, as the page after consent tells it. */
export type Verdict =
  /** Not judged yet: the code is being exchanged and checked, or the run has not read the answer yet. */
  | { outcome: 'checking' }
  /** Verified Free/Busy. */
  | { outcome: 'confirmed' }
  /** Not Free/Busy: taken back, and the human asked again; the new link while that prompt waits. */
  | { outcome: 'asked_again'; authorizationUrl: string | undefined }
  | { outcome: JudgedEnding }
  /** Ended in a way no answer leads to (a link never opened, a preview rejected): nothing to say of the answer. */
  | { outcome: 'ended' };

/** The endings a person and an administrator share, each told on the page as it is. */
const JUDGED_ENDINGS = [
  'read_write_kept',
  'other_account',
  'no_access',
  'denied',
  'failed',
  'expired',
  'cancelled',
] as const;
type JudgedEnding = (typeof JUDGED_ENDINGS)[number];

function isJudgedEnding(state: string): state is JudgedEnding {
  return (JUDGED_ENDINGS as readonly string[]).includes(state);
}

/** The verdict on the answer to `answer.prompt`, from the status of the run that got it. */
export function verdictOn(answer: Pick<AnswerClaims, 'prompt'>, asked: AskedStatus): Verdict {
  return asked.asked === 'person'
    ? personVerdict(answer.prompt, asked.status)
    : administratorVerdict(answer.prompt, asked.status);
}

function askedAgain(waiting: boolean, authorizationUrl: string | undefined): Verdict {
  return { outcome: 'asked_again', authorizationUrl: waiting ? authorizationUrl : undefined };
}

function personVerdict(prompt: number, status: DowngradeStatus): Verdict {
  // A later prompt exists only because this answer was not Free/Busy.
  if (status.prompt > prompt) {
    return askedAgain(status.state === 'awaiting_reauthorization', status.authorizationUrl);
  }
  if (isJudgedEnding(status.state)) return { outcome: status.state };
  switch (status.state) {
    case 'awaiting_link_open':
    case 'revoking':
    case 'awaiting_reauthorization':
    case 'verifying':
      return { outcome: 'checking' };
    case 'completed':
      return { outcome: 'confirmed' };
    case 'link_not_opened':
      return { outcome: 'ended' };
  }
}

function administratorVerdict(prompt: number, status: EnterpriseStatus): Verdict {
  if (status.prompt > prompt) {
    return askedAgain(status.phase === 'awaiting_admin', status.authorizationUrl);
  }
  // Set once the service account is verified: the answer was right whatever the users phase does after it.
  if (status.serviceAccountRef) return { outcome: 'confirmed' };
  if (isJudgedEnding(status.phase)) return { outcome: status.phase };
  switch (status.phase) {
    case 'awaiting_approval':
    case 'revoking':
    case 'awaiting_admin':
    case 'verifying_admin':
      return { outcome: 'checking' };
    case 'moving_users':
    case 'paused':
    case 'completed':
      return { outcome: 'confirmed' };
    case 'rejected':
      return { outcome: 'ended' };
  }
}
