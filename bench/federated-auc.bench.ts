import { binOf } from '../server/federation/auc-rounds';
import { federatedAnswerRows, placementSumsQueryOf, type AnswerPart } from '../server/federation/answer-rows';
import { canonicalJson } from '../server/federation/canonical-json';
import { parseAucQuery, placementSumsGroups, scoreHistogramGroups, type AucCase, type PlacementSumsQuery } from '../server/federation/compute-auc';
import type { AucRow } from '../server/federation/pool-auc';
import { aucClustered } from '../server/stats/auc';
import { seededRandom } from '../server/stats/bootstrap';

/**
 * The federated AUC's computation and wire size against one node holding the union, in one process on the same
 * generated cases: three sites of ROWS joint-feature cases each (5 features, 10 per patient), a model's score on a
 * 100-bin grid. Federated: each site's round-1 histograms and round-2 placement sums (the node code), the hub's
 * tables and answer rows (the hub code), bytes = the canonical JSON of every aggregate and of round 2's tables sent to
 * each site. Single node: stats/auc.ts's clustered (Obuchowski) AUC per feature on the 3 x ROWS union, on the same
 * binned scores. Checks both give the same numbers (1e-9). Not the transport (signing, HTTP, queues: see
 * `npm run bench:federation`) and not the nodes' database reads, which both setups pay alike.
 *
 * `npm run bench:federated-auc` (FACET_BENCH_ROWS, default 1 000 000 per site).
 */
const ROWS = Number(process.env.FACET_BENCH_ROWS ?? 1_000_000);
const SITES = ['NORTH', 'HARBOUR', 'VALLEY'];
const FEATURES = ['JOINT_SPACE_NARROWING', 'OSTEOPHYTES', 'HYPERTROPHY', 'EROSION', 'SUBCHONDRAL_CYSTS'];
const GRID = { lower: 0, upper: 1, bins: 100 };

function siteCases(site: string, seed: number): AucCase[] {
  const random = seededRandom(seed);
  const cases: AucCase[] = new Array(ROWS);
  for (let i = 0; i < ROWS; i++) {
    const patient = `${site}-${Math.floor(i / 10)}`;
    const positive = random() < 0.3;
    const score = Math.min(1, Math.max(0, (positive ? 0.65 : 0.35) + (random() - 0.5) * 0.8));
    cases[i] = { key: { FEATURE: FEATURES[i % FEATURES.length], SITE: site }, patient, positive, scores: [score] };
  }
  return cases;
}

const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;
const bytes = (value: unknown) => Buffer.byteLength(canonicalJson(value as never));

function main(): void {
  const sites = SITES.map((site, i) => ({ site, cases: siteCases(site, 11 + i) }));
  const query = parseAucQuery({
    raters: [{ modelSha256: 'ab'.repeat(32) }],
    scope: { modalities: [], features: [], levels: [], sides: [], splits: [], confirmedOnly: true },
    groupBy: ['FEATURE', 'SITE'],
    threshold: 1,
    grids: [GRID],
  });

  // Federated: the sites' work runs one after the other here; on three machines it would overlap (reported apart).
  let start = process.hrtime.bigint();
  let siteMs = 0;
  let siteSum = 0;
  let up = 0;
  const round1: AnswerPart = { kind: 'AUC', query, sites: SITES, results: [] };
  for (const s of sites) {
    const t = process.hrtime.bigint();
    const aggregate = { groups: scoreHistogramGroups(s.cases, query) };
    const took = ms(t);
    siteMs = Math.max(siteMs, took);
    siteSum += took;
    up += bytes(aggregate);
    (round1.results as AnswerPart['results'][number][]).push({ site: s.site, state: 'SUCCEEDED', payload: { aggregate: aggregate as never } });
  }
  const round2Query = placementSumsQueryOf(round1, 5) as unknown as PlacementSumsQuery;
  const down = SITES.length * (bytes(query) + bytes(round2Query));
  const round2: AnswerPart = { kind: 'PLACEMENT_SUMS', query: round2Query as never, sites: SITES, results: [] };
  let site2Ms = 0;
  let site2Sum = 0;
  for (const s of sites) {
    const t = process.hrtime.bigint();
    const aggregate = { groups: placementSumsGroups(s.cases, round2Query) };
    const took = ms(t);
    site2Ms = Math.max(site2Ms, took);
    site2Sum += took;
    up += bytes(aggregate);
    (round2.results as AnswerPart['results'][number][]).push({ site: s.site, state: 'SUCCEEDED', payload: { aggregate: aggregate as never } });
  }
  const answer = federatedAnswerRows('AUC', [round1, round2], { minGroupPatients: 5 });
  const federatedMs = ms(start);
  if (!answer.ok) throw new Error(answer.problem);

  // Single node on the union: per feature, the clustered AUC on the same binned scores.
  start = process.hrtime.bigint();
  const union = FEATURES.map((feature) => {
    const pos: number[] = [];
    const neg: number[] = [];
    const posPatients: string[] = [];
    const negPatients: string[] = [];
    for (const s of sites)
      for (const c of s.cases) {
        if (c.key.FEATURE !== feature) continue;
        const bin = binOf(c.scores[0], GRID);
        if (c.positive) {
          pos.push(bin);
          posPatients.push(c.patient);
        } else {
          neg.push(bin);
          negPatients.push(c.patient);
        }
      }
    return { feature, estimate: aucClustered(pos, neg, posPatients, negPatients) };
  });
  const singleMs = ms(start);

  for (const { feature, estimate } of union) {
    const row = (answer.rows as unknown as AucRow[]).find((r) => r.pooled && r.key.FEATURE === feature)!;
    for (const f of ['value', 'lower', 'upper'] as const) {
      if (Math.abs((row.aucs[0].clustered[f] as number) - (estimate[f] as number)) > 1e-9) throw new Error(`${feature} ${f}: pooled and union differ`);
    }
  }
  const lines = [
    `federated AUC, 3 sites x ${ROWS} joint-feature cases, 5 features, a ${GRID.bins}-bin grid (pooled equals the union within 1e-9)`,
    `  federated, all sites' work in this process: ${federatedMs.toFixed(0)} ms (slowest site: round 1 ${siteMs.toFixed(0)} ms, round 2 ${site2Ms.toFixed(0)} ms)`,
    `  single node on the ${SITES.length * ROWS}-case union:          ${singleMs.toFixed(0)} ms`,
    `  ratio federated / union: ${(federatedMs / singleMs).toFixed(2)}x; with the three sites working at once: ${((federatedMs - (siteSum - siteMs) - (site2Sum - site2Ms)) / singleMs).toFixed(2)}x`,
    `  aggregates on the wire: ${(up / 1024).toFixed(1)} kB up (histograms and sums), ${(down / 1024).toFixed(1)} kB down (queries and tables) — independent of the number of cases`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main();
