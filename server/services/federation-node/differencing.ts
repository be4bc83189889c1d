import type { Db } from '../../db/transaction';
import { FederationReleasedPopulation } from '../../entities';
import { differencingConflicts } from '../../federation/differencing-guard';
import type { ReleasePolicy } from '../../federation/release-policy';
import type { RequestContext } from '../request-context';
import type { ComputedAggregate } from './federation-compute.service';

/**
 * The node's differencing guard around a release: the populations of the groups the policy would release (those at
 * or above its minimum; smaller ones are suppressed and release nothing) against every population released before.
 */
function releasable(computed: ComputedAggregate, policy: ReleasePolicy): string[][] {
  const populations = computed.populations ?? [];
  return computed.aggregate.groups.flatMap((g, i) => (g.patients >= policy.minGroupPatients && populations[i] ? [populations[i]] : []));
}

/** The refusal's detail when a group would differ from a released one by 1 .. minimum - 1 patients; null: none does. */
export async function differencingRefusal(db: Db, tx: RequestContext, computed: ComputedAggregate, policy: ReleasePolicy): Promise<string | null> {
  const candidates = releasable(computed, policy);
  if (candidates.length === 0) return null;
  const released = await db.repo(tx, FederationReleasedPopulation).find({ select: { patients: true } });
  const conflicts = differencingConflicts(
    candidates,
    released.map((r) => r.patients),
    policy.minGroupPatients,
  );
  if (conflicts.length === 0) return null;
  // Counts only: which patients differ is exactly what must not be said.
  return `${conflicts.length} group(s) differ from an already released population by fewer than ${policy.minGroupPatients} patients`;
}

/**
 * Records the populations of a decided release (released, or held for approval: a held release may still go out, so
 * it counts from the moment it is decided; a later refusal by a coordinator leaves it counted, which only makes the
 * guard stricter).
 */
export async function recordPopulations(db: Db, tx: RequestContext, inboxTaskId: string, computed: ComputedAggregate, policy: ReleasePolicy): Promise<void> {
  const populations = releasable(computed, policy);
  if (populations.length > 0) await db.repo(tx, FederationReleasedPopulation).insert(populations.map((patients) => ({ inboxTaskId, patients })));
}
