import { condition, log, setHandler } from '@temporalio/workflow';
import { DomainControl } from './domainControl.js';
import type { OutcomeCounts } from './usersWindow.js';
import type { Approval, BreakerThresholds, DomainControlState, Pause } from './enterpriseDefinitions.js';
import type { OperatorUpdates } from './operatedRunDefinitions.js';

/** What operators see and change of a run that moves many users: a domain's downgrade, or a campaign. */
export interface OperatedStatus {
  phase: string;
  counts: OutcomeCounts;
  approval?: { previewId: string; expiresAt: string; decidedBy?: string; decidedAt?: string };
  paused?: Pause;
}

/** The lines of a run's current details that say what operators decided: approval, pause. */
export function describeDecisions({ phase, approval, paused }: OperatedStatus): string[] {
  const lines: string[] = [];
  if (approval && !approval.decidedBy) {
    lines.push(
      `Waiting for an operator to approve preview ${approval.previewId} until ${approval.expiresAt}`,
    );
  }
  if (approval?.decidedBy) {
    const verb = phase === 'rejected' ? 'Rejected' : 'Approved';
    lines.push(`${verb} by ${approval.decidedBy} at ${approval.decidedAt} (preview ${approval.previewId})`);
  }
  if (paused)
    lines.push(`Paused by ${paused.by} at ${paused.at}${paused.reason ? `: ${paused.reason}` : ''}`);
  return lines;
}

/** The line of a run's current details that says where its users are. */
export function describeUsers(
  status: OperatedStatus & { started: number; userCount: number; inFlight: number },
) {
  const counts = Object.entries(status.counts)
    .map(([state, count]) => `${state} ${count}`)
    .join(', ');
  return `Users: ${status.started} of ${status.userCount} started, ${status.inFlight} in flight; ${counts || 'none finished'}`;
}

/**
 * Approval before anything irreversible, and pause and resume of the users phase, as Temporal updates whose
 * validators refuse what does not fit the run's phase; plus the circuit breaker's count (DomainControl). The run
 * shows its phase through `enter`; this class only decides and records.
 */
export class OperatorControls<S extends OperatedStatus> {
  readonly control: DomainControl;
  /** Work of the users phase under way (a batch starting, its access request): a pause answers when none is. */
  #busy = 0;
  #decision: { approved: boolean; by: string; reason?: string } | undefined;

  constructor(
    private readonly status: S,
    private readonly options: {
      /** How messages name the run, e.g. "the downgrade of example.org". */
      subject: string;
      /** What the run was started with, and carries on with after continue-as-new. */
      input: {
        breaker?: BreakerThresholds;
        approval?: { previewId: string };
        progress?: { control?: DomainControlState };
      };
      updates: OperatorUpdates<S>;
      enter(phase: string, details?: Partial<Omit<OperatedStatus, 'phase'>>): void;
    },
  ) {
    this.control = new DomainControl(options.input.breaker, options.input.progress?.control);
    // Awaiting approval from the run's first moment: an approval that arrives with the first task is validated as
    // its handler is registered, before awaitApproval has run. Only the in-memory phase: no command is issued.
    if (!options.input.progress && options.input.approval) status.phase = 'awaiting_approval';
    this.#register(options.updates);
  }

  get paused(): boolean {
    return this.control.paused !== undefined;
  }

  #register(updates: OperatorUpdates<S>): void {
    const decide = async (decision: { approved: boolean; by: string; reason?: string }) => {
      this.#decision = decision;
      await condition(() => this.status.phase !== 'awaiting_approval');
      return this.status;
    };
    setHandler(updates.approve, ({ by }) => decide({ approved: true, by }), {
      validator: ({ by, previewId }) => {
        this.#expectPhase('approve', 'awaiting_approval', by);
        const startedFrom = this.options.input.approval?.previewId;
        if (previewId !== startedFrom) {
          throw new Error(
            `preview ${previewId} is not the one this run was started from (${startedFrom}): ` +
              'read that preview, or preview again and start a new run',
          );
        }
      },
    });
    setHandler(updates.reject, ({ by, reason }) => decide({ approved: false, by, reason }), {
      validator: ({ by }) => this.#expectPhase('reject', 'awaiting_approval', by),
    });
    setHandler(
      updates.pause,
      async ({ by, reason }) => {
        this.pause({ by, reason, at: new Date().toISOString() });
        await condition(() => this.#busy === 0);
        return this.status;
      },
      {
        validator: ({ by }) => {
          this.#expectPhase('pause', 'moving_users', by);
        },
      },
    );
    setHandler(
      updates.resume,
      ({ by }) => {
        log.info('Users phase resumed', { by });
        this.control.resume(this.status.counts);
        this.options.enter('moving_users', { paused: undefined });
        return this.status;
      },
      { validator: ({ by }) => this.#expectPhase('resume', 'paused', by) },
    );
  }

  /** Waits for an operator's decision on the run's preview; the phase and reason to end with when not approved. */
  async awaitApproval(
    approval: Approval,
  ): Promise<{ phase: 'expired' | 'rejected'; reason: string } | undefined> {
    const expiresAt = new Date(Date.now() + approval.deadlineMs).toISOString();
    this.options.enter('awaiting_approval', { approval: { previewId: approval.previewId, expiresAt } });
    const decision = (await condition(() => this.#decision !== undefined, approval.deadlineMs))
      ? this.#decision
      : undefined;
    if (!decision) return { phase: 'expired', reason: `not approved before ${expiresAt}` };
    this.status.approval = {
      previewId: approval.previewId,
      expiresAt,
      decidedBy: decision.by,
      decidedAt: new Date().toISOString(),
    };
    if (!decision.approved) {
      const why = decision.reason ? `: ${decision.reason}` : '';
      return { phase: 'rejected', reason: `rejected by ${decision.by}${why}` };
    }
    log.info('Approved', { by: decision.by, previewId: approval.previewId });
    return undefined;
  }

  /** Stops starting users and asking Cronofy for them; the users already asked keep waiting. */
  pause(pause: Pause): void {
    log.info('Users phase paused', { ...pause });
    this.control.pause(pause);
    this.options.enter('paused', { paused: pause });
  }

  /**
   * Starts a batch's work and counts it busy until its follow-up (say, the batch's access request) settles: the
   * follow-up is handed back, wrapped (a promise returned bare would be awaited here), to be awaited later, and its
   * failure surfaces there.
   */
  async whileBusy(start: () => Promise<{ followUp: Promise<void> }>): Promise<{ followUp: Promise<void> }> {
    this.#busy += 1;
    let followUp: Promise<void>;
    try {
      ({ followUp } = await start());
    } catch (error) {
      this.#busy -= 1;
      throw error;
    }
    const settled = followUp.finally(() => (this.#busy -= 1));
    settled.catch(() => undefined);
    return { followUp: settled };
  }

  #expectPhase(update: string, phase: string, by: string): void {
    if (!by.trim()) throw new Error(`${update}: say who decides (by)`);
    if (this.status.phase !== phase) {
      throw new Error(`${update}: ${this.options.subject} is ${this.status.phase}, not ${phase}`);
    }
  }
}
