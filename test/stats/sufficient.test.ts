import { readFileSync } from 'node:fs';
import path from 'node:path';
import { aucClustered, aucDelong } from '../../server/stats/auc';
import { clusteredWilson } from '../../server/stats/proportion';
import {
  clusteredCountOf,
  clusterSumsOf,
  delongVarianceOf,
  histogramOf,
  mergeClusterSums,
  mergeCounts,
  mergeHistograms,
  obuchowskiVarianceOf,
  placementTable,
} from '../../server/stats/sufficient';

/** Three "nodes" holding disjoint patients of one study: merged sufficient statistics must give the pooled metrics. */
describe.each(['random', 'ties', 'heavy-clustering'])('merged sufficient statistics (%s)', (name) => {
  const f = JSON.parse(readFileSync(path.resolve(__dirname, `../fixtures/stats/${name}.json`), 'utf8'));
  const { patient, truth, score, pred } = f.data as { patient: string[]; truth: number[]; score: number[]; pred: number[] };
  const patients = [...new Set(patient)];
  const nodeOf = (p: string) => patients.indexOf(p) % 3;
  const nodes = [0, 1, 2].map((n) => {
    const idx = patient.map((p, i) => (nodeOf(p) === n ? i : -1)).filter((i) => i >= 0);
    return {
      score: idx.map((i) => score[i]),
      positive: idx.map((i) => truth[i] === 1),
      called: idx.map((i) => pred[i] === 1),
      patient: idx.map((i) => patient[i]),
    };
  });
  const positive = truth.map((t) => t === 1);

  it('AUC and DeLong variance from merged histograms equal the pooled ones', () => {
    const merged = nodes.map((n) => histogramOf(n.score, n.positive)).reduce(mergeHistograms);
    const table = placementTable(merged)!;
    const pooled = aucDelong(
      score.filter((_, i) => positive[i]),
      score.filter((_, i) => !positive[i]),
    );
    expect(table.auc).toBeCloseTo(pooled.value as number, 12);
    expect(delongVarianceOf(merged, table)).toBeCloseTo(pooled.variance as number, 12);
  });

  it('Obuchowski variance from merged per-node cluster sums (second round) equals the pooled one', () => {
    const table = placementTable(nodes.map((n) => histogramOf(n.score, n.positive)).reduce(mergeHistograms))!;
    const sums = nodes.map((n) => clusterSumsOf(n.score, n.positive, n.patient, table)).reduce(mergeClusterSums);
    const pooled = aucClustered(
      score.filter((_, i) => positive[i]),
      score.filter((_, i) => !positive[i]),
      patient.filter((_, i) => positive[i]),
      patient.filter((_, i) => !positive[i]),
    );
    expect(obuchowskiVarianceOf(sums, table)).toBeCloseTo(pooled.variance as number, 12);
  });

  it('the clustered sensitivity interval from merged counts equals the pooled one', () => {
    const merged = nodes.map((n) => clusteredCountOf(n.called, n.positive, n.patient)).reduce(mergeCounts);
    const pooled = clusteredCountOf(
      pred.map((p) => p === 1),
      positive,
      patient,
    );
    expect(merged).toEqual(pooled);
    expect(clusteredWilson(merged)).toEqual(clusteredWilson(pooled));
  });
});
