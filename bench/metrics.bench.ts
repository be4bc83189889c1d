/**
 * Statistics engine speed: clustered AUC with its Obuchowski interval for every SITE x FEATURE x MODALITY group
 * plus the pooled row, at 10k, 100k and 1M joint-feature rows, printed as a ratio to a bare Float64Array sort of
 * the same scores in the same process; the full group metrics (with 2,000 bootstrap replicates for F1 and
 * Youden) are timed too; and scikit-learn's roc_auc_score on the same scores where Debian's python3-sklearn is
 * installed.
 *
 *   npm run bench:metrics
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { aucClustered } from '../server/stats/auc';
import { seededRandom } from '../server/stats/bootstrap';
import { computeGroup, type GradedCase } from '../server/stats/engine';

const SIZES = (process.env.BENCH_ROWS ?? '10000,100000,1000000').split(',').map(Number);
const SITES = 3;
const FEATURES = 5;
const MODALITIES = 3;
const ROWS_PER_PATIENT = 10 * FEATURES * MODALITIES; // 10 joints x 5 features x 3 modalities

interface Row {
  group: number;
  patient: number;
  truth: number;
  score: number;
}

function makeRows(n: number): Row[] {
  const random = seededRandom(n);
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const patient = Math.floor(i / ROWS_PER_PATIENT);
    const truth = random() < 0.3 ? 1 : 0;
    const score = Math.min(1, Math.max(0, 0.35 + 0.3 * truth + (random() - 0.5) * 0.6));
    rows.push({ group: (patient % SITES) * FEATURES * MODALITIES + (i % (FEATURES * MODALITIES)), patient, truth, score: Math.round(score * 1e6) / 1e6 });
  }
  return rows;
}

const time = (f: () => void): number => {
  const started = performance.now();
  f();
  return (performance.now() - started) / 1000;
};

/** The pooled rows, then each group's. */
function byGroup(rows: Row[]): Row[][] {
  const groups = new Map<number, Row[]>([[-1, rows]]);
  for (const r of rows) {
    const g = groups.get(r.group);
    if (g) g.push(r);
    else groups.set(r.group, [r]);
  }
  return [...groups.values()];
}

function aucAllGroups(rows: Row[]): void {
  for (const g of byGroup(rows)) {
    const pos = g.filter((r) => r.truth);
    const neg = g.filter((r) => !r.truth);
    aucClustered(
      pos.map((r) => r.score),
      neg.map((r) => r.score),
      pos.map((r) => r.patient),
      neg.map((r) => r.patient),
    );
  }
}

function fullMetrics(rows: Row[]): void {
  for (const g of byGroup(rows)) {
    const cases: GradedCase[] = g.map((r) => ({ cluster: r.patient, truth: r.truth, grade: r.score >= 0.5 ? 1 : 0, probabilities: [1 - r.score, r.score] }));
    computeGroup(cases, { threshold: 1, grades: 2, level: 0.95, clustered: true, bootstrap: { replicates: 2000, seed: 1 } });
  }
}

function sklearnSeconds(rows: Row[]): number | null {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'facet-bench-'));
  try {
    writeFileSync(path.join(dir, 'truth.bin'), Buffer.from(Float64Array.from(rows, (r) => r.truth).buffer));
    writeFileSync(path.join(dir, 'score.bin'), Buffer.from(Float64Array.from(rows, (r) => r.score).buffer));
    const script = `import numpy as np, time\nfrom sklearn.metrics import roc_auc_score\ny=np.fromfile('${dir}/truth.bin')\ns=np.fromfile('${dir}/score.bin')\nt=time.perf_counter()\nroc_auc_score(y,s)\nprint(time.perf_counter()-t)`;
    const run = spawnSync('/usr/bin/python3', ['-c', script], { encoding: 'utf8' });
    return run.status === 0 ? Number(run.stdout.trim()) : null;
  } catch {
    return null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(
  `Statistics engine: ${SITES} sites x ${FEATURES} features x ${MODALITIES} modalities (+ pooled), clustered in patients of ${ROWS_PER_PATIENT} rows`,
);
for (const n of SIZES) {
  const rows = makeRows(n);
  const scores = Float64Array.from(rows, (r) => r.score);
  time(() => aucAllGroups(rows.slice(0, 1000))); // warm up
  const sort = time(() => scores.slice().sort());
  const pooled = time(() => {
    const pos = rows.filter((r) => r.truth);
    const neg = rows.filter((r) => !r.truth);
    aucClustered(
      pos.map((r) => r.score),
      neg.map((r) => r.score),
      pos.map((r) => r.patient),
      neg.map((r) => r.patient),
    );
  });
  const auc = time(() => aucAllGroups(rows));
  const full = n <= 100_000 ? time(() => fullMetrics(rows)) : null;
  const sk = sklearnSeconds(rows);
  console.log(
    `  ${String(n).padStart(8)} rows: sort ${sort.toFixed(3)} s | pooled clustered AUC + CI ${pooled.toFixed(3)} s = ${(pooled / sort).toFixed(2)}x sort | all ${SITES * FEATURES * MODALITIES} groups + pooled ${auc.toFixed(3)} s = ${(auc / sort).toFixed(2)}x sort` +
      (full !== null ? ` | full metrics with bootstrap ${full.toFixed(2)} s` : '') +
      (sk !== null ? ` | scikit-learn roc_auc_score (pooled only) ${sk.toFixed(3)} s` : ' | scikit-learn not installed'),
  );
}
