import type { AnswerClaims } from '../contracts/stateToken.js';
import type { DowngradeState, DowngradeStatus } from '../workflows/definitions.js';
import type { EnterprisePhase, EnterpriseStatus } from '../workflows/enterpriseDefinitions.js';

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

type Unjudged = 'checking' | 'confirmed' | 'ended';

/** What a person's answer is while their downgrade is in a state that does not judge it. */
const PERSON_UNJUDGED: Record<Exclude<DowngradeState, JudgedEnding>, Unjudged> = {
  awaiting_link_open: 'checking',
  revoking: 'checking',
  awaiting_reauthorization: 'checking',
  verifying: 'checking',
  completed: 'confirmed',
  link_not_opened: 'ended',
};

/** What an administrator's answer is while their domain is in a phase that does not judge it. */
const ADMINISTRATOR_UNJUDGED: Record<Exclude<EnterprisePhase, JudgedEnding>, Unjudged> = {
  awaiting_approval: 'checking',
  revoking: 'checking',
  awaiting_admin: 'checking',
  verifying_admin: 'checking',
  moving_users: 'confirmed',
  paused: 'confirmed',
  completed: 'confirmed',
  rejected: 'ended',
};

function personVerdict(prompt: number, status: DowngradeStatus): Verdict {
  // A later prompt exists only because this answer was not Free/Busy.
  if (status.prompt > prompt) {
    return askedAgain(status.state === 'awaiting_reauthorization', status.authorizationUrl);
  }
  return { outcome: isJudgedEnding(status.state) ? status.state : PERSON_UNJUDGED[status.state] };
}

function administratorVerdict(prompt: number, status: EnterpriseStatus): Verdict {
  if (status.prompt > prompt) {
    return askedAgain(status.phase === 'awaiting_admin', status.authorizationUrl);
  }
  // Set once the service account is verified: the answer was right whatever the users phase does after it.
  if (status.serviceAccountRef) return { outcome: 'confirmed' };
  return { outcome: isJudgedEnding(status.phase) ? status.phase : ADMINISTRATOR_UNJUDGED[status.phase] };
}
