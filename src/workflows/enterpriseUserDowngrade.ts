import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { cronofyActivities, serviceLocalActivities } from './activityProxies.js';
import { countDowngradeFinished, countDowngradeStarted } from './metrics.js';
import { searchAttributes } from './definitions.js';
import { isFreeBusy, thisRun } from './reauthorization.js';
import {
  userAccessCallback,
  type EnterpriseUserInput,
  type EnterpriseUserResult,
  type UserAccessCallback,
  type UserState,
} from './enterpriseDefinitions.js';

/**
 * One user of an Enterprise Connect domain: wait for Cronofy's callback to the access request the domain made
 * (asking again when it does not come), exchange the code, verify Free/Busy, record the outcome.
 */
export async function enterpriseUserDowngrade(input: EnterpriseUserInput): Promise<EnterpriseUserResult> {
  const user = new UserRun(input);
  setHandler(userAccessCallback, user.offer);
  user.describe('awaiting_user_access');
  countDowngradeStarted('enterprise_user');

  let result: EnterpriseUserResult;
  try {
    result = await user.move();
  } catch (error) {
    if (!isCancellation(error)) throw error;
    result = { position: input.position, state: 'cancelled', reason: 'the domain downgrade was cancelled' };
  }
  user.enter(result.state, result.reason);
  countDowngradeFinished('enterprise_user', result.state);
  // The domain reads the recorded outcome; a local activity records it in the workflow task that decides it.
  await CancellationScope.nonCancellable(() =>
    serviceLocalActivities().recordUserOutcome({
      captureId: input.captureId,
      email: input.email,
      ...result,
      credentialRef: user.credentialRef,
    }),
  );
  return result;
}

/** One user's requests for access, the callback that answers the current one, and how the user is shown. */
class UserRun {
  credentialRef: string | undefined;
  #request = 1;
  #callback: UserAccessCallback | undefined;
  #sinceMs = Date.now();
  readonly #cronofy = cronofyActivities();

  constructor(private readonly input: EnterpriseUserInput) {}

  /** The userAccessCallback handler: the first callback of the current request counts. */
  offer = (received: UserAccessCallback): void => {
    if (received.request === this.#request && !this.#callback) this.#callback = received;
  };

  /** Waits for access, asking again on each deadline, then exchanges and verifies it. */
  async move(): Promise<EnterpriseUserResult> {
    const { input } = this;
    const outcome = (state: EnterpriseUserResult['state'], reason?: string) => ({
      position: input.position,
      state,
      reason,
    });
    try {
      for (;;) {
        if (!(await condition(() => this.#callback !== undefined, input.userDeadlineMs))) {
          if (this.#request >= input.maxUserRequests)
            return outcome('expired', `no access after ${this.#request} requests`);
          await this.#askAgain();
          continue;
        }
        const answer = this.#callback!;
        if ('error' in answer) return outcome('failed', answer.error);

        this.enter('verifying');
        let grant;
        try {
          grant = await this.#cronofy.exchangeUserAccessCode({
            codeRef: answer.codeRef,
            redirectUri: answer.redirectUri,
            label: workflowInfo().workflowId,
          });
        } catch (error) {
          // A code already redeemed (say, by an attempt that crashed before it could record the tokens) cannot be
          // used again, but the user's access can be asked for again.
          if (isRejectedGrant(error) && this.#request < input.maxUserRequests) {
            await this.#askAgain();
            continue;
          }
          throw error;
        }
        if (isFreeBusy(grant)) {
          this.credentialRef = grant.credentialRef;
          return outcome('completed');
        }
        await this.#cronofy.revokeAuthorization({ credentialRef: grant.credentialRef });
        return outcome('failed', `access was granted as ${grant.providerName}, not Free/Busy`);
      }
    } catch (error) {
      if (error instanceof ActivityFailure) {
        return outcome('failed', `${error.activityType}: ${error.cause?.message ?? error.message}`);
      }
      throw error;
    }
  }

  enter(state: UserState, reason?: string): void {
    this.#sinceMs = Date.now();
    // `verifying` lasts from one workflow task to the next: it shows in the current details only.
    if (state !== 'verifying') upsertSearchAttributes([{ key: searchAttributes.state, value: state }]);
    this.describe(state, reason);
  }

  /** The operator's view of this user in the Temporal UI: where it is, since when, until when. */
  describe(state: UserState, reason?: string): void {
    const { input } = this;
    const lines = [
      `**${state}** · access request ${this.#request} of ${input.maxUserRequests}`,
      `User ${input.email} of ${input.domain}`,
    ];
    if (state === 'awaiting_user_access') {
      lines.push(`Waiting for Cronofy's callback since ${new Date(this.#sinceMs).toISOString()}`);
      lines.push(`Asks again at ${new Date(this.#sinceMs + input.userDeadlineMs).toISOString()}`);
    }
    if (reason) lines.push(`Reason: ${reason}`);
    setCurrentDetails(lines.join('\n\n'));
  }

  async #askAgain(): Promise<void> {
    this.#request += 1;
    this.#callback = undefined;
    this.enter('awaiting_user_access');
    await this.#cronofy.requestUserAccess({
      serviceAccountRef: this.input.serviceAccountRef,
      users: [{ email: this.input.email, ...thisRun(), request: this.#request }],
      expiresAt: Date.now() + 2 * this.input.userDeadlineMs,
    });
  }
}

function isRejectedGrant(error: unknown): boolean {
  return (
    error instanceof ActivityFailure &&
    error.cause instanceof ApplicationFailure &&
    (error.cause.type === 'CronofyGrantError' || error.cause.type === 'AuthorizationCodeLost')
  );
}
