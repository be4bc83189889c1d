import { contingency, kappa, percentAgreement, type KappaWeights } from '../stats/agreement';
import type { Maybe } from '../stats/estimate';
import { mcnemarExact, pairedTable, type PairedTable } from '../stats/mcnemar';
import type { JsonValue } from './canonical-json';
import { ComputeError, parseBinaryCountsQuery } from './compute-query';
import type { FederatedGroupBy, FederatedRater, FederatedScope } from './task-kinds';

/**
 * Agreement and paired tests across sites from counts alone: a node releases per group the k x k table of two
 * raters' grades (`table`, rows the first rater, flattened row by row) and the paired 2x2 table of correct calls
 * (`discordant`: both correct, first only, second only, neither). Counts add up across sites, so kappa (unweighted,
 * linear, quadratic), percent agreement and the exact McNemar p computed at the hub from the summed tables are the
 * single-node numbers on the union (stats/agreement.ts, stats/mcnemar.ts on the same tables).
 */

export class AgreementRoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgreementRoundError';
  }
}

export interface AgreementValues {
  [field: string]: number[];
  table: number[];
  discordant: number[];
}

/** One case rated by both raters: their grades (0..k-1) and the reference's. */
export interface PairedGrades {
  first: number;
  second: number;
  truth: number;
}

/** A group's values at `threshold` (a call is right when it falls on the same side of the threshold as the truth). */
export function agreementValues(cases: readonly PairedGrades[], k: number, threshold: number): AgreementValues {
  for (const c of cases) {
    for (const g of [c.first, c.second]) if (!Number.isInteger(g) || g < 0 || g >= k) throw new AgreementRoundError(`grade ${g} is not one of 0..${k - 1}`);
  }
  const table = contingency(
    cases.map((c) => c.first),
    cases.map((c) => c.second),
    k,
  ).flat();
  const paired = pairedTable(
    cases.map((c) => ({ modelRight: c.first >= threshold === c.truth >= threshold, readerRight: c.second >= threshold === c.truth >= threshold })),
  );
  return { table, discordant: [paired.bothCorrect, paired.modelOnly, paired.readerOnly, paired.neither] };
}

export interface AgreementOfRow {
  kappa: Record<KappaWeights, Maybe>;
  percentAgreement: Maybe;
  paired: PairedTable;
  mcnemarP: number;
}

/** The hub's numbers from a row's (summed) values. */
export function agreementOf(values: AgreementValues, k: number): AgreementOfRow {
  if (values.table.length !== k * k || values.discordant.length !== 4) throw new AgreementRoundError(`a row holds a ${k} x ${k} table and 4 paired counts`);
  const table = Array.from({ length: k }, (_, i) => values.table.slice(i * k, (i + 1) * k));
  const [bothCorrect, modelOnly, readerOnly, neither] = values.discordant;
  return {
    kappa: { unweighted: kappa(table, 'unweighted'), linear: kappa(table, 'linear'), quadratic: kappa(table, 'quadratic') },
    percentAgreement: percentAgreement(table),
    paired: { bothCorrect, modelOnly, readerOnly, neither },
    mcnemarP: mcnemarExact(modelOnly, readerOnly),
  };
}

/** AGREEMENT_TABLE's query: two raters on the same cases, grouped with FEATURE among the dimensions (k is the feature's). */
export interface AgreementQuery {
  [field: string]: JsonValue;
  raters: FederatedRater[];
  scope: FederatedScope;
  groupBy: FederatedGroupBy[];
  /** A call is right when it falls on the same side of this grade as the reference. */
  threshold: number;
}

/** Reads an AGREEMENT_TABLE query: the rater, scope, groupBy and threshold rules are BINARY_COUNTS'. */
export function parseAgreementQuery(raw: unknown): AgreementQuery {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ComputeError('BAD_QUERY', 'query: must be an object');
  const { raters, ...rest } = raw as Record<string, unknown>;
  const extra = Object.keys(rest).find((k) => !['scope', 'groupBy', 'threshold'].includes(k));
  if (extra !== undefined) throw new ComputeError('BAD_QUERY', `query.${extra}: unknown field (allowed: raters, scope, groupBy, threshold)`);
  if (!Array.isArray(raters) || raters.length !== 2) throw new ComputeError('BAD_QUERY', 'query.raters: names exactly two raters');
  const parsed = raters.map((rater, i) => {
    try {
      return parseBinaryCountsQuery({ rater, ...rest });
    } catch (error) {
      if (error instanceof ComputeError) throw new ComputeError('BAD_QUERY', error.message.replace('query.rater', `query.raters[${i}]`));
      throw error;
    }
  });
  if (JSON.stringify(parsed[0].rater) === JSON.stringify(parsed[1].rater)) throw new ComputeError('BAD_QUERY', 'query.raters: names two different raters');
  // A k x k table needs one k: the grades of one feature.
  if (!parsed[0].groupBy.includes('FEATURE')) throw new ComputeError('BAD_QUERY', 'query.groupBy: must include FEATURE (each feature has its own grades)');
  return { raters: parsed.map((p) => p.rater), scope: parsed[0].scope, groupBy: parsed[0].groupBy, threshold: parsed[0].threshold };
}
