/**
 * A multi-reader multi-case study as the Obuchowski-Rockette (OR) analysis sees it: tests (modalities, or the model
 * and the readers), readers, and cases with their truth, the patient (cluster) they belong to, and the block (site)
 * whose readers read them. Every reader reads every case of their block under every test: one block is the fully
 * crossed design; several blocks are the split-plot design (each site's readers read only that site's patients).
 */

/** Why a set of ratings is not an MRMC study the analysis can take; the service turns it into BAD_USER_INPUT. */
export type MrmcDesignProblem =
  | 'FEWER_THAN_TWO_TESTS'
  | 'NO_READERS'
  | 'READER_IN_SEVERAL_BLOCKS'
  | 'INCOMPLETE_READINGS'
  | 'DUPLICATE_READING'
  | 'UNKNOWN_CASE'
  | 'NOT_A_NUMBER'
  | 'BLOCK_WITHOUT_BOTH_CLASSES'
  | 'TOO_FEW_UNITS'
  | 'UNBIASED_NEEDS_UNCLUSTERED_CASES'
  | 'METHOD_NEEDS_AUC'
  | 'NOT_A_BINARY_CALL';

export class MrmcDesignError extends Error {
  constructor(
    readonly problem: MrmcDesignProblem,
    message: string,
  ) {
    super(message);
    this.name = 'MrmcDesignError';
  }
}

export interface MrmcCase {
  id: string;
  truth: boolean;
  /** The cluster (patient) the case belongs to; cases of one patient are not independent. */
  cluster: string;
  /** The block (site) whose readers read this case. */
  block: string;
}

export interface MrmcRating {
  test: string;
  reader: string;
  caseId: string;
  rating: number;
}

export interface MrmcStudy {
  /** In the order of the comparisons: differences are earlier test minus later test. */
  tests: string[];
  readers: string[];
  cases: MrmcCase[];
  blocks: string[];
  /** blockOf[reader index]: index into blocks. */
  readerBlock: number[];
  /** casesOf[block index]: case indices, in input order. */
  blockCases: number[][];
  /** ratings[test][reader][case index]; NaN where the reader does not read the case (another block). */
  ratings: Float64Array[][];
}

/**
 * Checks and indexes the ratings. Tests and readers keep their first-seen order unless given; a reader's block is
 * the block of the cases they rated, and they must rate each of that block's cases exactly once under every test.
 */
export function buildStudy(cases: readonly MrmcCase[], ratings: readonly MrmcRating[], order: { tests?: readonly string[] } = {}): MrmcStudy {
  const caseIndex = new Map<string, number>();
  cases.forEach((c, i) => caseIndex.set(c.id, i));
  const tests = order.tests ? [...order.tests] : [...new Set(ratings.map((r) => r.test))];
  const readers = [...new Set(ratings.map((r) => r.reader))];
  if (tests.length < 2) throw new MrmcDesignError('FEWER_THAN_TWO_TESTS', `an MRMC comparison needs at least two tests; got ${tests.length}`);
  if (readers.length === 0) throw new MrmcDesignError('NO_READERS', 'no ratings');
  const testIndex = new Map(tests.map((t, i) => [t, i]));
  const readerIndex = new Map(readers.map((r, i) => [r, i]));
  const blocks = [...new Set(cases.map((c) => c.block))];
  const blockIndex = new Map(blocks.map((b, i) => [b, i]));
  const blockCases: number[][] = blocks.map(() => []);
  cases.forEach((c, i) => blockCases[blockIndex.get(c.block)!]!.push(i));

  const grid = tests.map(() => readers.map(() => new Float64Array(cases.length).fill(NaN)));
  const readerBlock = readers.map(() => -1);
  for (const r of ratings) {
    const t = testIndex.get(r.test);
    if (t === undefined) throw new MrmcDesignError('FEWER_THAN_TWO_TESTS', `rating of test ${r.test}, which is not compared`);
    const c = caseIndex.get(r.caseId);
    if (c === undefined) throw new MrmcDesignError('UNKNOWN_CASE', `rating of unknown case ${r.caseId}`);
    if (!Number.isFinite(r.rating)) throw new MrmcDesignError('NOT_A_NUMBER', `rating of case ${r.caseId} by ${r.reader} is not a finite number`);
    const j = readerIndex.get(r.reader)!;
    const b = blockIndex.get(cases[c]!.block)!;
    if (readerBlock[j] === -1) readerBlock[j] = b;
    else if (readerBlock[j] !== b) {
      throw new MrmcDesignError('READER_IN_SEVERAL_BLOCKS', `reader ${r.reader} rated cases of both ${blocks[readerBlock[j]!]} and ${blocks[b]}`);
    }
    const row = grid[t]![j]!;
    if (!Number.isNaN(row[c]!)) throw new MrmcDesignError('DUPLICATE_READING', `reader ${r.reader} rated case ${r.caseId} twice under ${r.test}`);
    row[c] = r.rating;
  }
  for (let j = 0; j < readers.length; j++) {
    const mine = blockCases[readerBlock[j]!]!;
    for (let t = 0; t < tests.length; t++) {
      const missing = mine.filter((c) => Number.isNaN(grid[t]![j]![c]!)).length;
      if (missing > 0) {
        throw new MrmcDesignError(
          'INCOMPLETE_READINGS',
          `reader ${readers[j]} left ${missing} of the ${mine.length} cases of ${blocks[readerBlock[j]!]} unrated under ${tests[t]}: every reader rates every case of their site under every test`,
        );
      }
    }
  }
  for (let b = 0; b < blocks.length; b++) {
    if (!readerBlock.includes(b)) continue;
    const truths = blockCases[b]!.map((c) => cases[c]!.truth);
    if (!truths.includes(true) || !truths.includes(false)) {
      throw new MrmcDesignError(
        'BLOCK_WITHOUT_BOTH_CLASSES',
        `site ${blocks[b]} has no ${truths.includes(true) ? 'negative' : 'positive'} cases: its readers' AUCs are undefined`,
      );
    }
  }
  // Blocks nobody read (cases with no ratings) take no part.
  return { tests, readers, cases: [...cases], blocks, readerBlock, blockCases, ratings: grid };
}

/** The test name under which the model enters the analysis. */
export const MODEL_TEST = 'MODEL';
/** The test name of the clinicians' own readings. */
export const READERS_TEST = 'READERS';

/**
 * The model against the readers as a two-test OR study, the field's practice for a standalone algorithm (the model
 * is one fixed "reader" with no reader variability; e.g. Rodriguez-Ruiz et al. 2019, JNCI, and the FDA's iMRMC
 * "reader vs. algorithm" analyses): test MODEL repeats the model's score as every reader's rating on that reader's
 * cases, test READERS holds the readers' own ratings. Each reader's difference is then the model's AUC minus theirs on
 * the same cases, and the OR analysis tests the model against the reader average with reader and case variability
 * (Cov1 pairs the model and a reader on the same cases). `modelScores` maps a case id to the model's score; a reader
 * case without one is an error, since the model must rate every case a reader does.
 */
export function modelVersusReaders(cases: readonly MrmcCase[], modelScores: ReadonlyMap<string, number>, readerRatings: readonly MrmcRating[]): MrmcStudy {
  const ratings: MrmcRating[] = [];
  for (const r of readerRatings) {
    const score = modelScores.get(r.caseId);
    if (score === undefined) throw new MrmcDesignError('INCOMPLETE_READINGS', `the model has no score for case ${r.caseId}, which reader ${r.reader} rated`);
    ratings.push({ test: MODEL_TEST, reader: r.reader, caseId: r.caseId, rating: score });
    ratings.push({ test: READERS_TEST, reader: r.reader, caseId: r.caseId, rating: r.rating });
  }
  return buildStudy(cases, ratings, { tests: [MODEL_TEST, READERS_TEST] });
}
