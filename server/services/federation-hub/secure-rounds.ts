import type { Db } from '../../db/transaction';
import { FederatedQueryStatus, FederationSiteTaskState } from '../../domain';
import { FederationResult, FederationSecureAnswer, FederationSecureRound, FederationSiteTask, FederationTask } from '../../entities';
import type { JsonDocument } from '../../entities/federation-task.entity';
import { canonicalSha256, type JsonValue } from '../../federation/canonical-json';
import { acceptEnvelope, EnvelopeKind, signEnvelope, type SignedEnvelope } from '../../federation/envelope';
import {
  secureDeclarationOf,
  type FederationTaskKind,
  type MaskRequestPayload,
  type ResultPayload,
  type SecureAnswerPayload,
  type SecureDeclaration,
  type SecureRequestPayload,
  type TaskPayload,
  type UnmaskRequestPayload,
} from '../../federation/protocol';
import { SEED_BYTES, SecureSumError, vectorFromBase64, vectorSha256 } from '../../federation/secure-sum';
import { isSecureTask, secureTotalsOf, SecureTransportError, type PooledTotal, type SecureTranscript } from '../../federation/secure-sum-transport';
import { rowLayout } from '../../federation/secure-rows';
import type { PostgresPubSub } from '../../pubsub/postgres-pubsub';
import { FEDERATED_QUERY_CHANGED, FEDERATION_TASK_QUEUED } from '../../pubsub/topics';
import { FEDERATION_SECURE_STEP } from '../../queue/job-catalogue';
import type { JobQueue } from '../../queue/job-queue';
import type { RequestContext } from '../request-context';
import { HUB_AUDIENCE, HUB_SIGNER, type Hub } from './hub-registry';
import { refreshTaskStatus } from './task-status';

/**
 * The hub's side of secure summation over the transport (docs/federation.md section 6): one round per secure task,
 * started when the task's sites have settled (or at its deadline) with the sites that answered; its requests go to
 * each participant in the answer to its long-poll claim, its answers come back signed (`submitFederationRound`).
 * Attempt k collects every participant's masked vector, then every self-mask seed; an attempt whose deadline passes
 * while a participant's vector is missing (the node died, or refused) restarts without it, with fresh masks, at most
 * three attempts; one whose deadline passes while seeds are missing fails (SEED_MISSING: some sites have revealed, and
 * they would refuse any other participant set). The totals are never stored: they are recomputed from the signed
 * transcript on every read, by the same code `facet verify` runs.
 */

export const OPEN_PHASES = ['COLLECTING_MASKED', 'COLLECTING_SEEDS'];
const MAX_ATTEMPTS = 3;

export interface SecureRoundDeps {
  db: Db;
  queue: JobQueue;
  pubSub: PostgresPubSub;
  hub: Hub;
  clock: () => Date;
}

export interface SecureSubmissionView {
  accepted: boolean;
  code: string | null;
  receipt: SignedEnvelope | null;
}

const sorted = (codes: Iterable<string>) => [...codes].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

/** The declarations of a task's SUCCEEDED results, by site. */
async function declarationsOf(db: Db, tx: RequestContext, taskId: string): Promise<Map<string, SecureDeclaration>> {
  const results = await db.repo(tx, FederationResult).findBy({ taskId, state: 'SUCCEEDED' });
  const out = new Map<string, SecureDeclaration>();
  for (const r of results) {
    const declaration = secureDeclarationOf((r.envelope as unknown as SignedEnvelope<ResultPayload>).payload);
    if (declaration) out.set(r.site, declaration);
  }
  return out;
}

/** The pooled keys and lengths of an attempt over `participants`; null lengths when the sites disagree. */
function planOf(declarations: ReadonlyMap<string, SecureDeclaration>, participants: readonly string[]) {
  const keys = new Set<string>();
  let lengths: Record<string, number> | null = null;
  let agree = true;
  for (const site of participants) {
    const d = declarations.get(site)!;
    for (const k of d.keys) keys.add(k);
    if (d.keys.length === 0) continue;
    if (lengths !== null && canonicalSha256(lengths) !== canonicalSha256(d.lengths)) agree = false;
    lengths ??= d.lengths;
  }
  return { keys: sorted(keys), lengths: agree ? (lengths ?? {}) : null };
}

async function wake(deps: SecureRoundDeps, tx: RequestContext, round: FederationSecureRound): Promise<void> {
  for (const site of round.participants) await deps.pubSub.publish(FEDERATION_TASK_QUEUED, site, { taskId: round.taskId }, deps.db.manager(tx));
}

async function settled(deps: SecureRoundDeps, tx: RequestContext, taskId: string): Promise<void> {
  const task = await deps.db.repo(tx, FederationTask).findOneBy({ id: taskId });
  if (!task) return;
  await refreshTaskStatus(deps.db, tx, task, task.revision, deps.clock());
  await deps.pubSub.publish(FEDERATED_QUERY_CHANGED, task.id, { taskId: task.id }, deps.db.manager(tx));
}

/**
 * Starts a task's secure round once its sites have settled (no QUEUED or CLAIMED site-task) or its deadline passed,
 * with the sites whose SUCCEEDED results declared their pooled keys; nothing for a task that is not secure or already
 * has its round. Fewer participants than max(2, minSites): the round is FAILED (TOO_FEW_SITES) at once.
 */
export async function startSecureRoundIfReady(deps: SecureRoundDeps, tx: RequestContext, task: FederationTask): Promise<void> {
  if (task.status === FederatedQueryStatus.CANCELLED) return;
  const repo = deps.db.repo(tx, FederationSecureRound);
  if (await repo.findOneBy({ taskId: task.id })) return;
  const siteTasks = await deps.db.repo(tx, FederationSiteTask).findBy({ taskId: task.id });
  const first = siteTasks[0]?.payload as TaskPayload | undefined;
  if (!first || !isSecureTask(first.kind, first.query, first.sites)) return;
  const now = deps.clock();
  const open = siteTasks.some((s) => s.state === FederationSiteTaskState.QUEUED || s.state === FederationSiteTaskState.CLAIMED);
  if (open && now.getTime() < task.deadline.getTime()) return;
  const declarations = await declarationsOf(deps.db, tx, task.id);
  const participants = sorted(declarations.keys());
  const plan = planOf(declarations, participants);
  const failure = participants.length < Math.max(2, task.minSites) ? 'TOO_FEW_SITES' : plan.lengths === null ? 'LENGTH_MISMATCH' : null;
  const deadline = new Date(now.getTime() + deps.hub.secureRoundMs);
  const round = repo.create({
    taskId: task.id,
    kind: first.kind,
    attempt: 1,
    roundId: `${task.id}#1`,
    participants,
    keys: plan.keys,
    lengths: plan.lengths ?? {},
    // Nothing to sum (every site withheld every group): done at once, with no rows.
    phase: failure ? 'FAILED' : plan.keys.length === 0 ? 'DONE' : 'COLLECTING_MASKED',
    failure,
    restarts: [],
    deadline,
  });
  await repo.save(round);
  if (round.phase === 'COLLECTING_MASKED') {
    await deps.queue.send(tx, FEDERATION_SECURE_STEP, { taskId: task.id, attempt: 1 }, { startAfter: deadline });
    await wake(deps, tx, round);
  }
}

/** The requests a site has to answer now (its claim carries them, signed), across every open round it takes part in. */
export async function pendingSecureRequests(deps: SecureRoundDeps, tx: RequestContext, site: string): Promise<SecureRequestPayload[]> {
  const rounds = await deps.db
    .repo(tx, FederationSecureRound)
    .createQueryBuilder('r')
    .innerJoin(FederationTask, 't', 't.id = r.task_id')
    .where('r.phase IN (:...phases)', { phases: OPEN_PHASES })
    .andWhere(':site = ANY(r.participants)', { site })
    .andWhere('t.status <> :cancelled', { cancelled: FederatedQueryStatus.CANCELLED })
    .orderBy('r.created_at')
    .getMany();
  if (rounds.length === 0) return [];
  const registry = await deps.hub.registry();
  const out: SecureRequestPayload[] = [];
  for (const round of rounds) {
    const answers = await deps.db.repo(tx, FederationSecureAnswer).findBy({ roundId: round.roundId });
    const mine = answers.filter((a) => a.site === site);
    if (round.phase === 'COLLECTING_MASKED' && mine.length === 0) {
      const siteTask = await deps.db.repo(tx, FederationSiteTask).findOneBy({ taskId: round.taskId, site });
      const participants = round.participants.map((code) => ({ code, agreementKey: registry.byCode(code)?.agreementKey ?? '' }));
      const task = await deps.db.repo(tx, FederationTask).findOneBy({ id: round.taskId });
      const request: MaskRequestPayload = {
        step: 'MASK',
        taskId: round.taskId,
        taskSha256: siteTask?.taskSha256 ?? '',
        site,
        roundId: round.roundId,
        attempt: round.attempt,
        participants,
        keys: round.keys,
        lengths: round.lengths,
        minSites: Math.max(2, task?.minSites ?? 2),
      };
      out.push(request);
    } else if (round.phase === 'COLLECTING_SEEDS' && !mine.some((a) => a.step !== 'MASKED')) {
      const maskedSha256: Record<string, string> = {};
      for (const a of answers.filter((x) => x.step === 'MASKED')) maskedSha256[a.site] = maskedSha256Of(round, a);
      const request: UnmaskRequestPayload = {
        step: 'UNMASK',
        taskId: round.taskId,
        site,
        roundId: round.roundId,
        participants: round.participants,
        maskedSha256,
        pairwiseFor: [],
      };
      out.push(request);
    }
  }
  return out;
}

const vectorLength = (round: FederationSecureRound) => rowLayout(round.kind as FederationTaskKind, round.lengths).length * round.keys.length;
const maskedSha256Of = (round: FederationSecureRound, answer: FederationSecureAnswer) =>
  vectorSha256(vectorFromBase64((answer.envelope as unknown as SignedEnvelope<SecureAnswerPayload>).payload.masked as string, vectorLength(round)));

/** Signs a request for its site (fresh for each delivery, like a TASK). */
export const signSecureRequest = (hub: Hub, request: SecureRequestPayload, now: Date): SignedEnvelope =>
  signEnvelope(hub.identity, { kind: EnvelopeKind.SECURE_REQUEST, signer: HUB_SIGNER, audience: request.site, payload: request as JsonValue }, now);

const isAnswer = (p: unknown): p is SecureAnswerPayload => {
  if (p === null || typeof p !== 'object' || Array.isArray(p)) return false;
  const a = p as Record<string, unknown>;
  const text = (v: unknown) => v === null || typeof v === 'string';
  return (
    typeof a.taskId === 'string' &&
    typeof a.roundId === 'string' &&
    typeof a.site === 'string' &&
    ['MASKED', 'SEED', 'REFUSED'].includes(a.step as string) &&
    text(a.masked) &&
    text(a.seed) &&
    text(a.code)
  );
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A site's signed answer in a round: checked (signature against `sites/`, audience, replay; signer = the answer's
 * site, a participant of the round's current attempt, in the phase the step belongs to, a vector of the round's
 * length, a 32-byte seed), stored, and the round moved on: every vector in, the seeds are asked; every seed in, the
 * round is DONE and the task's answer changes; a refusal of the mask request restarts without the site once every
 * other participant answered, a refusal to reveal fails the round (SEED_REFUSED).
 */
export async function acceptSecureAnswer(deps: SecureRoundDeps, ctx: RequestContext, raw: unknown): Promise<SecureSubmissionView> {
  const refused = (code: string): SecureSubmissionView => ({ accepted: false, code, receipt: null });
  const registry = await deps.hub.registry();
  const checked = await acceptEnvelope<SecureAnswerPayload>(raw, {
    kind: EnvelopeKind.SECURE_ANSWER,
    audience: HUB_AUDIENCE,
    keys: registry.signingKeyOf,
    replay: deps.hub.replay,
  });
  if (!checked.ok) return refused(checked.code);
  const envelope = checked.envelope;
  const payload = envelope.payload;
  if (!isAnswer(payload) || !UUID.test(payload.taskId)) return refused('MALFORMED_ANSWER');
  if (payload.site !== envelope.signer) return refused('NOT_ADDRESSEE');
  return deps.db.transaction(ctx, async (tx) => {
    const repo = deps.db.repo(tx, FederationSecureRound);
    const round = await deps.db
      .manager(tx)
      .getRepository(FederationSecureRound)
      .findOne({ where: { taskId: payload.taskId }, lock: { mode: 'pessimistic_write' } });
    if (!round) return refused('UNKNOWN_TASK');
    if (payload.roundId !== round.roundId) return refused('WRONG_ROUND');
    if (!round.participants.includes(payload.site)) return refused('NOT_A_PARTICIPANT');
    const answers = deps.db.repo(tx, FederationSecureAnswer);
    const mine = await answers.findBy({ roundId: round.roundId, site: payload.site });
    const receipt = () =>
      signEnvelope(
        deps.hub.identity,
        {
          kind: EnvelopeKind.RECEIPT,
          signer: HUB_SIGNER,
          audience: payload.site,
          payload: { taskId: round.taskId, resultSha256: canonicalSha256(envelope as unknown as JsonValue) },
        },
        deps.clock(),
      );
    const same = mine.find((a) => (a.envelope as unknown as SignedEnvelope).payloadSha256 === envelope.payloadSha256);
    if (same) return { accepted: true, code: null, receipt: receipt() };
    const phaseOf = payload.step === 'MASKED' ? 'COLLECTING_MASKED' : payload.step === 'SEED' ? 'COLLECTING_SEEDS' : round.phase;
    if (round.phase !== phaseOf || !OPEN_PHASES.includes(round.phase)) return refused('WRONG_PHASE');
    if (mine.some((a) => a.step !== 'MASKED' || round.phase === 'COLLECTING_MASKED')) return refused('DUPLICATE');
    if (payload.step === 'MASKED') {
      try {
        vectorFromBase64(payload.masked ?? '', vectorLength(round));
      } catch (error) {
        if (error instanceof SecureSumError) return refused('LENGTH_MISMATCH');
        throw error;
      }
    }
    if (payload.step === 'SEED' && Buffer.from(payload.seed ?? '', 'base64').length !== SEED_BYTES) return refused('BAD_SEED');
    if (payload.step === 'REFUSED' && (payload.code === null || !/^[A-Z][A-Z_]{0,63}$/.test(payload.code))) return refused('MALFORMED_ANSWER');
    await answers.insert({
      taskId: round.taskId,
      roundId: round.roundId,
      site: payload.site,
      step: payload.step,
      envelope: envelope as unknown as JsonDocument,
    });
    const all = await answers.findBy({ roundId: round.roundId });
    if (round.phase === 'COLLECTING_MASKED') {
      const masked = new Set(all.filter((a) => a.step === 'MASKED').map((a) => a.site));
      const answered = new Set(all.map((a) => a.site));
      if (masked.size === round.participants.length) {
        // The seeds get a period of their own: a node restarted meanwhile reveals from its ledger when it claims again.
        round.phase = 'COLLECTING_SEEDS';
        round.deadline = new Date(deps.clock().getTime() + deps.hub.secureRoundMs);
        await repo.save(round);
        await deps.queue.send(tx, FEDERATION_SECURE_STEP, { taskId: round.taskId, attempt: round.attempt }, { startAfter: round.deadline });
        await wake(deps, tx, round);
      } else if (answered.size === round.participants.length) {
        // Everyone answered and someone refused to mask: nobody has revealed, so going on without it is safe now.
        await restartOrFail(
          deps,
          tx,
          round,
          round.participants.filter((p) => !masked.has(p)),
        );
      }
    } else if (payload.step === 'REFUSED') {
      round.phase = 'FAILED';
      round.failure = 'SEED_REFUSED';
      await repo.save(round);
      await settled(deps, tx, round.taskId);
    } else if (all.filter((a) => a.step === 'SEED').length === round.participants.length) {
      round.phase = 'DONE';
      await repo.save(round);
      // The totals must come out of the transcript now, as every reader will recompute them.
      const transcript = await secureTranscriptOf(deps.db, tx, round.taskId);
      try {
        secureTotalsOf(round.kind as FederationTaskKind, transcript!, await declarationsOf(deps.db, tx, round.taskId));
      } catch (error) {
        if (!(error instanceof SecureTransportError)) throw error;
        round.phase = 'FAILED';
        round.failure = 'UNMASK_FAILED';
        await repo.save(round);
      }
      await settled(deps, tx, round.taskId);
    }
    return { accepted: true, code: null, receipt: receipt() };
  });
}

/** The attempt's participants without `dropped`, with fresh masks, or the round FAILED when too few remain. */
async function restartOrFail(deps: SecureRoundDeps, tx: RequestContext, round: FederationSecureRound, dropped: string[]): Promise<void> {
  const repo = deps.db.repo(tx, FederationSecureRound);
  const task = await deps.db.repo(tx, FederationTask).findOneBy({ id: round.taskId });
  const remaining = round.participants.filter((p) => !dropped.includes(p));
  const declarations = await declarationsOf(deps.db, tx, round.taskId);
  const plan = planOf(declarations, remaining);
  round.restarts = [...round.restarts, { attempt: round.attempt, dropped }];
  if (remaining.length < Math.max(2, task?.minSites ?? 2) || round.attempt >= MAX_ATTEMPTS || plan.lengths === null) {
    round.phase = 'FAILED';
    round.failure = remaining.length < Math.max(2, task?.minSites ?? 2) ? 'TOO_FEW_SITES' : plan.lengths === null ? 'LENGTH_MISMATCH' : 'TOO_MANY_ATTEMPTS';
    await repo.save(round);
    await settled(deps, tx, round.taskId);
    return;
  }
  round.attempt += 1;
  round.roundId = `${round.taskId}#${round.attempt}`;
  round.participants = remaining;
  round.keys = plan.keys;
  round.lengths = plan.lengths;
  round.deadline = new Date(deps.clock().getTime() + deps.hub.secureRoundMs);
  round.phase = plan.keys.length === 0 ? 'DONE' : 'COLLECTING_MASKED';
  await repo.save(round);
  if (round.phase === 'DONE') return settled(deps, tx, round.taskId);
  await deps.queue.send(tx, FEDERATION_SECURE_STEP, { taskId: round.taskId, attempt: round.attempt }, { startAfter: round.deadline });
  await wake(deps, tx, round);
  await deps.pubSub.publish(FEDERATED_QUERY_CHANGED, round.taskId, { taskId: round.taskId }, deps.db.manager(tx));
}

/**
 * The federation-secure-step job: attempt `attempt`'s deadline. Vectors missing: restart without those sites (they
 * dropped out before anyone revealed); seeds missing: the round fails (SEED_MISSING). 'skipped' when the round moved
 * on, or the job came early by this server's clock (sent again for the deadline).
 */
export async function expireSecureAttempt(deps: SecureRoundDeps, ctx: RequestContext, taskId: string, attempt: number): Promise<'done' | 'skipped'> {
  return deps.db.transaction(ctx, async (tx) => {
    const round = await deps.db
      .manager(tx)
      .getRepository(FederationSecureRound)
      .findOne({ where: { taskId }, lock: { mode: 'pessimistic_write' } });
    if (!round || round.attempt !== attempt || !OPEN_PHASES.includes(round.phase)) return 'skipped';
    if (deps.clock().getTime() < round.deadline.getTime()) {
      await deps.queue.send(tx, FEDERATION_SECURE_STEP, { taskId, attempt }, { startAfter: round.deadline });
      return 'skipped';
    }
    const answers = await deps.db.repo(tx, FederationSecureAnswer).findBy({ roundId: round.roundId });
    if (round.phase === 'COLLECTING_SEEDS') {
      round.phase = 'FAILED';
      round.failure = 'SEED_MISSING';
      await deps.db.repo(tx, FederationSecureRound).save(round);
      await settled(deps, tx, taskId);
      return 'done';
    }
    const masked = new Set(answers.filter((a) => a.step === 'MASKED').map((a) => a.site));
    await restartOrFail(
      deps,
      tx,
      round,
      round.participants.filter((p) => !masked.has(p)),
    );
    return 'done';
  });
}

/** The round of a task as it is exported: its current attempt's answers (MASKED and SEED), none of its plain numbers. */
export async function secureTranscriptOf(db: Db, ctx: RequestContext, taskId: string): Promise<SecureTranscript | null> {
  const round = await db.repo(ctx, FederationSecureRound).findOneBy({ taskId });
  if (!round) return null;
  const answers = await db.repo(ctx, FederationSecureAnswer).find({ where: { roundId: round.roundId }, order: { site: 'ASC', step: 'ASC' } });
  return {
    roundId: round.roundId,
    attempt: round.attempt,
    participants: round.participants,
    keys: round.keys,
    lengths: round.lengths,
    phase: round.phase as SecureTranscript['phase'],
    failure: round.failure,
    restarts: round.restarts as SecureTranscript['restarts'],
    answers: answers.filter((a) => a.step !== 'REFUSED').map((a) => a.envelope as JsonValue),
  };
}

/** Whether a task's secure round is still running (its pooled rows are not there yet). */
export async function secureRoundOpen(db: Db, ctx: RequestContext, taskId: string): Promise<boolean> {
  const round = await db.repo(ctx, FederationSecureRound).findOneBy({ taskId });
  return round !== null && OPEN_PHASES.includes(round.phase);
}

/** The pooled totals of a task's DONE round, from its transcript and the results' declarations; [] for any other. */
export function pooledTotalsOf(
  kind: string,
  transcript: SecureTranscript | null,
  results: readonly { site: string; state: string; payload: object }[],
): PooledTotal[] {
  if (!transcript || transcript.phase !== 'DONE' || transcript.keys.length === 0) return [];
  const declarations = new Map<string, SecureDeclaration>();
  for (const r of results) {
    const d = r.state === 'SUCCEEDED' ? secureDeclarationOf(r.payload) : null;
    if (d) declarations.set(r.site, d);
  }
  return secureTotalsOf(kind as FederationTaskKind, transcript, declarations);
}

/** The round as a researcher reads it: which attempt holds, who is in the totals, and whom it restarted without. */
export interface SecureSumView {
  phase: string;
  failure: string | null;
  attempt: number;
  participants: string[];
  roundsRestarted: number;
  restartedWithout: string[];
  restarts: { attempt: number; dropped: string[] }[];
}

export const secureSumView = (t: SecureTranscript): SecureSumView => ({
  phase: t.phase,
  failure: t.failure,
  attempt: t.attempt,
  participants: t.participants,
  roundsRestarted: t.restarts.length,
  restartedWithout: sorted(new Set(t.restarts.flatMap((r) => r.dropped))),
  restarts: t.restarts,
});
