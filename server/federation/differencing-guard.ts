/**
 * The node's differencing guard: two released aggregates over populations that differ by a few patients let anyone
 * holding both subtract them and read those few patients' numbers, although each aggregate passed the minimum group
 * size. So a node keeps, for every group it released, the set of patients behind it (node-local keys, never sent),
 * and refuses a task any of whose groups differs from an already released group by at least one and fewer than the
 * minimum patients (the symmetric difference: Σ_A − Σ_B = Σ_{A∖B} − Σ_{B∖A}). An identical population is not
 * refused: asking the same question again reveals nothing new.
 */

export interface PopulationConflict {
  /** Index of the candidate group (in the order given) that conflicts. */
  group: number;
  /** Size of the symmetric difference with the released population it conflicts with (1 .. minimum - 1). */
  difference: number;
}

/** The size of A Δ B, or `limit` as soon as it reaches `limit` (the caller only needs to know whether it is below). */
function symmetricDifference(a: ReadonlySet<string>, b: ReadonlySet<string>, limit: number): number {
  let d = 0;
  for (const p of a) if (!b.has(p) && ++d >= limit) return limit;
  for (const p of b) if (!a.has(p) && ++d >= limit) return limit;
  return d;
}

/**
 * Which candidate groups differ from some released population by 1 .. minPatients - 1 patients. Populations whose
 * sizes already differ by `minPatients` or more are skipped without a comparison.
 */
export function differencingConflicts(
  candidates: readonly (readonly string[])[],
  released: readonly (readonly string[])[],
  minPatients: number,
): PopulationConflict[] {
  if (!Number.isInteger(minPatients) || minPatients < 1) throw new RangeError('minPatients is a whole number of at least 1');
  const releasedSets = released.map((r) => new Set(r));
  const conflicts: PopulationConflict[] = [];
  candidates.forEach((candidate, group) => {
    const a = new Set(candidate);
    for (const b of releasedSets) {
      if (Math.abs(a.size - b.size) >= minPatients) continue;
      const d = symmetricDifference(a, b, minPatients);
      if (d > 0 && d < minPatients) {
        conflicts.push({ group, difference: d });
        return;
      }
    }
  });
  return conflicts;
}
