import { aucClustered, aucDelong } from '../../server/stats/auc';
import { seededRandom } from '../../server/stats/bootstrap';
import { addCluster, clusteredWilson, emptyCount, wilson } from '../../server/stats/proportion';

/**
 * Do the intervals mean what they say? 1,000 simulated studies of 60 patients with 10 correlated joints each
 * (a shared patient effect on both the truth and the score): the patient-clustered 95% intervals must cover the
 * true AUC and sensitivity in 93-97% of studies; the per-joint ones, which ignore the clustering, under-cover.
 */
const STUDIES = 1000;
const PATIENTS = 60;
const JOINTS = 10;

function normal(random: () => number): () => number {
  return () => {
    const u = 1 - random();
    const v = random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
}

interface Joint {
  patient: number;
  positive: boolean;
  score: number;
}

function simulate(patients: number, gaussian: () => number): Joint[] {
  const joints: Joint[] = [];
  for (let p = 0; p < patients; p++) {
    const severity = gaussian(); // shared by all of the patient's joints
    const readerBias = 0.8 * gaussian(); // how this patient's images read, shared too
    for (let j = 0; j < JOINTS; j++) {
      const latent = severity + gaussian();
      joints.push({ patient: p, positive: latent > 1, score: latent + readerBias + 0.8 * gaussian() });
    }
  }
  return joints;
}

const CALL = 1; // the rater calls a joint positive when its score exceeds this

describe('coverage of the 95% intervals under clustering (simulation, fixed seed)', () => {
  const gaussian = normal(seededRandom(20261127));
  // "True" values: the same process at 40,000 patients (sampling error about 0.002, far below the interval widths).
  const population = simulate(40_000, gaussian);
  const posScores = population.filter((j) => j.positive).map((j) => j.score);
  const negScores = population.filter((j) => !j.positive).map((j) => j.score);
  const trueAuc = aucDelong(posScores, negScores).value as number;
  const trueSensitivity = posScores.filter((s) => s > CALL).length / posScores.length;

  const covered = { aucClustered: 0, aucPlain: 0, sensClustered: 0, sensPlain: 0 };
  for (let s = 0; s < STUDIES; s++) {
    const study = simulate(PATIENTS, gaussian);
    const pos = study.filter((j) => j.positive);
    const neg = study.filter((j) => !j.positive);
    const inside = (e: { lower: number | null; upper: number | null }, truth: number) => (e.lower as number) <= truth && truth <= (e.upper as number);
    if (
      inside(
        aucClustered(
          pos.map((j) => j.score),
          neg.map((j) => j.score),
          pos.map((j) => String(j.patient)),
          neg.map((j) => String(j.patient)),
        ),
        trueAuc,
      )
    )
      covered.aucClustered++;
    if (
      inside(
        aucDelong(
          pos.map((j) => j.score),
          neg.map((j) => j.score),
        ),
        trueAuc,
      )
    )
      covered.aucPlain++;
    let count = emptyCount();
    for (let p = 0; p < PATIENTS; p++) {
      const mine = pos.filter((j) => j.patient === p);
      count = addCluster(count, mine.filter((j) => j.score > CALL).length, mine.length);
    }
    if (inside(clusteredWilson(count), trueSensitivity)) covered.sensClustered++;
    if (inside(wilson(count.x, count.n), trueSensitivity)) covered.sensPlain++;
  }
  const rate = (n: number) => n / STUDIES;

  it('the clustered AUC interval (Obuchowski) covers the true AUC 93-97% of the time', () => {
    expect(rate(covered.aucClustered)).toBeGreaterThanOrEqual(0.93);
    expect(rate(covered.aucClustered)).toBeLessThanOrEqual(0.97);
  });

  it('the clustered sensitivity interval (design-effect Wilson) covers the true sensitivity 93-97% of the time', () => {
    expect(rate(covered.sensClustered)).toBeGreaterThanOrEqual(0.93);
    expect(rate(covered.sensClustered)).toBeLessThanOrEqual(0.97);
  });

  it('the per-joint intervals, which ignore clustering, under-cover', () => {
    expect(rate(covered.aucPlain)).toBeLessThan(0.93);
    expect(rate(covered.sensPlain)).toBeLessThan(0.93);
    // Printed so that each run shows the coverage it measured, interval by interval.
    process.stdout.write(
      `coverage: ${JSON.stringify(Object.fromEntries(Object.entries(covered).map(([k, v]) => [k, rate(v)])))} (true AUC ${trueAuc.toFixed(4)}, sensitivity ${trueSensitivity.toFixed(4)})\n`,
    );
  });
});
