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
import { isFreeBusy } from './reauthorization.js';
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
  const cronofy = cronofyActivities();
  // The outcome is recorded by a local activity, in the workflow task that decides it.
  const service = serviceLocalActivities();
  const { workflowId, runId, firstExecutionRunId: firstRunId } = workflowInfo();
  let request = 1;
  let callback: UserAccessCallback | undefined;
  setHandler(userAccessCallback, (received) => {
    if (received.request === request && !callback) callback = received;
  });
  // The operator's view of this user in the Temporal UI: where it is, since when, until when (encrypted payload).
  let sinceMs = Date.now();
  const describe = (state: UserState | EnterpriseUserResult['state'], reason?: string) => {
    const lines = [
      `**${state}** · access request ${request} of ${input.maxUserRequests}`,
      `User ${input.email} of ${input.domain}`,
    ];
    if (state === 'awaiting_user_access') {
      lines.push(`Waiting for Cronofy's callback since ${new Date(sinceMs).toISOString()}`);
      lines.push(`Asks again at ${new Date(sinceMs + input.userDeadlineMs).toISOString()}`);
    }
    if (reason) lines.push(`Reason: ${reason}`);
    setCurrentDetails(lines.join('\n\n'));
  };
  const enter = (state: UserState, reason?: string) => {
    sinceMs = Date.now();
    // `verifying` lasts from one workflow task to the next: it shows in the current details only.
    if (state !== 'verifying') upsertSearchAttributes([{ key: searchAttributes.state, value: state }]);
    describe(state, reason);
  };
  describe('awaiting_user_access');
  countDowngradeStarted('enterprise_user');

  let result: EnterpriseUserResult;
  let credentialRef: string | undefined;
  try {
    result = await moveUser();
  } catch (error) {
    if (!isCancellation(error)) throw error;
    result = { position: input.position, state: 'cancelled', reason: 'the domain downgrade was cancelled' };
  }
  enter(result.state, result.reason);
  countDowngradeFinished('enterprise_user', result.state);
  // The domain reads the recorded outcome.
  await CancellationScope.nonCancellable(() =>
    service.recordUserOutcome({ captureId: input.captureId, email: input.email, ...result, credentialRef }),
  );
  return result;

  async function moveUser(): Promise<EnterpriseUserResult> {
    const outcome = (state: EnterpriseUserResult['state'], reason?: string) => ({
      position: input.position,
      state,
      reason,
    });
    const askAgain = async () => {
      request += 1;
      callback = undefined;
      enter('awaiting_user_access');
      await cronofy.requestUserAccess({
        serviceAccountRef: input.serviceAccountRef,
        users: [{ email: input.email, workflowId, runId, firstRunId, request }],
        expiresAt: Date.now() + 2 * input.userDeadlineMs,
      });
    };
    try {
      for (;;) {
        if (!(await condition(() => callback !== undefined, input.userDeadlineMs))) {
          if (request >= input.maxUserRequests)
            return outcome('expired', `no access after ${request} requests`);
          await askAgain();
          continue;
        }
        const answer = callback!;
        if ('error' in answer) return outcome('failed', answer.error);

        enter('verifying');
        let grant;
        try {
          grant = await cronofy.exchangeUserAccessCode({
            codeRef: answer.codeRef,
            redirectUri: answer.redirectUri,
            label: workflowId,
          });
        } catch (error) {
          // A code already redeemed (say, by an attempt that crashed before it could record the tokens) cannot be
          // used again, but the user's access can be asked for again.
          if (isRejectedGrant(error) && request < input.maxUserRequests) {
            await askAgain();
            continue;
          }
          throw error;
        }
        if (isFreeBusy(grant)) {
          credentialRef = grant.credentialRef;
          return outcome('completed');
        }
        await cronofy.revokeAuthorization({ credentialRef: grant.credentialRef });
        return outcome('failed', `access was granted as ${grant.providerName}, not Free/Busy`);
      }
    } catch (error) {
      if (error instanceof ActivityFailure) {
        return outcome('failed', `${error.activityType}: ${error.cause?.message ?? error.message}`);
      }
      throw error;
    }
  }
}

function isRejectedGrant(error: unknown): boolean {
  return (
    error instanceof ActivityFailure &&
    error.cause instanceof ApplicationFailure &&
    error.cause.type === 'CronofyGrantError'
  );
}
