import { readFileSync } from 'node:fs';
import path from 'node:path';
import { auc } from '../../server/stats/auc';
import { seededRandom } from '../../server/stats/bootstrap';
import { readerTestAucs } from '../../server/stats/mrmc/covariance';
import { analyseMrmc, orAnalysis } from '../../server/stats/mrmc/obuchowski-rockette';
import { buildStudy, modelVersusReaders, type MrmcCase, type MrmcRating } from '../../server/stats/mrmc/study';

/**
 * Patient-clustered cases and readers nested within sites (split-plot), which MRMCaov does not cover: the clustered
 * jackknife against a brute-force leave-one-patient-out, its reduction to MRMCaov's jackknife with one case per
 * patient, the split-plot covariance's block structure, and a seeded simulation of the random-reader test's size.
 */

function normal(random: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

interface SimulatedStudy {
  cases: MrmcCase[];
  model: Map<string, number>;
  readers: MrmcRating[];
}

/**
 * A split-plot study in the Roe-Metz style: `sites` sites with `readersPerSite` readers each, `patients` patients per
 * site with `joints` joints each. A patient's joints share a latent value (the clustering), a joint's truth depends
 * on the patient, and a reader's grade (0-3) is separation * truth + joint latent + their own noise, the separation
 * varying by reader. The model grades like a reader with the mean separation, so under `modelShift` = 0 its expected
 * AUC is the readers' (up to the small curvature of the AUC in the separation).
 */
function simulate(seed: number, o: { sites: number; readersPerSite: number; patients: number; joints: number; modelShift: number }): SimulatedStudy {
  const z = normal(seededRandom(seed));
  const cases: MrmcCase[] = [];
  const latent = new Map<string, number>();
  for (let s = 0; s < o.sites; s++) {
    for (let p = 0; p < o.patients; p++) {
      const patient = `s${s}p${p}`;
      const u = 0.6 * z();
      for (let j = 0; j < o.joints; j++) {
        const id = `${patient}j${j}`;
        const truth = 0.8 * u + z() > 0.4;
        cases.push({ id, truth, cluster: patient, block: `s${s}` });
        latent.set(id, u + 0.7 * z());
      }
    }
  }
  const grade = (value: number) => Math.max(0, Math.min(3, Math.round(value + 1)));
  const model = new Map(cases.map((c) => [c.id, grade((1.2 + o.modelShift) * Number(c.truth) + latent.get(c.id)! + 0.8 * z())]));
  const readers: MrmcRating[] = [];
  for (let s = 0; s < o.sites; s++) {
    for (let r = 0; r < o.readersPerSite; r++) {
      const reader = `s${s}r${r}`;
      const separation = 1.2 + 0.25 * z();
      for (const c of cases.filter((x) => x.block === `s${s}`)) {
        const value = separation * Number(c.truth) + latent.get(c.id)! + 0.8 * z();
        readers.push({ test: 'READERS', reader, caseId: c.id, rating: grade(value) });
      }
    }
  }
  return { cases, model, readers };
}

describe('clustered jackknife', () => {
  it.each([1, 2, 3, 4, 5])('equals a brute-force leave-one-patient-out (seed %i)', (seed) => {
    const sim = simulate(seed, { sites: 1, readersPerSite: 3, patients: 12, joints: 3, modelShift: 0 });
    const study = modelVersusReaders(sim.cases, sim.model, sim.readers);
    const { covariance } = readerTestAucs(study, 'JACKKNIFE', true);
    const patients = [...new Set(sim.cases.map((c) => c.cluster))];
    const pseudo = study.tests.flatMap((_, t) =>
      study.readers.map((_, j) =>
        patients.map((p) => {
          const kept = study.cases.map((c, i) => [c, i] as const).filter(([c]) => c.cluster !== p);
          const rating = study.ratings[t]![j]!;
          return auc(
            kept.filter(([c]) => c.truth).map(([, i]) => rating[i]!),
            kept.filter(([c]) => !c.truth).map(([, i]) => rating[i]!),
          ).value!;
        }),
      ),
    );
    const K = patients.length;
    const means = pseudo.map((v) => v.reduce((s, x) => s + x, 0) / K);
    pseudo.forEach((a, g) =>
      pseudo.forEach((b, h) => {
        const expected = ((K - 1) / K) * a.reduce((s, x, k) => s + (x - means[g]!) * (b[k]! - means[h]!), 0);
        expect(Math.abs(covariance[g]![h]! - expected)).toBeLessThan(1e-12);
      }),
    );
  });

  it.each(['SENSITIVITY', 'SPECIFICITY'] as const)('of the %s of binary calls equals a brute-force leave-one-patient-out', (figure) => {
    const sim = simulate(7, { sites: 1, readersPerSite: 3, patients: 12, joints: 3, modelShift: 0 });
    const calls = new Map([...sim.model].map(([id, score]) => [id, Number(score >= 2)]));
    const study = modelVersusReaders(
      sim.cases,
      calls,
      sim.readers.map((r) => ({ ...r, rating: Number(r.rating >= 2) })),
    );
    const { auc: value, covariance } = readerTestAucs(study, 'JACKKNIFE', true, figure);
    const positive = figure === 'SENSITIVITY';
    const patients = [...new Set(sim.cases.filter((c) => c.truth === positive).map((c) => c.cluster))];
    const proportion = (rating: Float64Array, skip: string | null) => {
      const of = study.cases.map((c, i) => [c, i] as const).filter(([c]) => c.truth === positive && c.cluster !== skip);
      return of.reduce((s, [, i]) => s + (positive ? rating[i]! : 1 - rating[i]!), 0) / of.length;
    };
    const pseudo = study.tests.flatMap((_, t) => study.readers.map((_, j) => patients.map((p) => proportion(study.ratings[t]![j]!, p))));
    study.tests.forEach((_, t) => study.readers.forEach((_, j) => expect(value[t]![j]).toBeCloseTo(proportion(study.ratings[t]![j]!, null), 14)));
    const K = patients.length;
    const means = pseudo.map((v) => v.reduce((s, x) => s + x, 0) / K);
    pseudo.forEach((a, g) =>
      pseudo.forEach((b, h) => {
        const expected = ((K - 1) / K) * a.reduce((s, x, k) => s + (x - means[g]!) * (b[k]! - means[h]!), 0);
        expect(Math.abs(covariance[g]![h]! - expected)).toBeLessThan(1e-12);
      }),
    );
  });

  it("with one case per patient equals MRMCaov's jackknife on VanDyke", () => {
    const f = JSON.parse(readFileSync(path.resolve(__dirname, '../fixtures/stats/mrmc/vandyke.json'), 'utf8'));
    const r = f.ratings as { test: string[]; reader: string[]; case: string[]; truth: number[]; rating: number[] };
    const cases = new Map<string, MrmcCase>();
    r.case.forEach((id, i) => cases.set(id, { id, truth: r.truth[i] === 1, cluster: `patient-${id}`, block: 'all' }));
    const study = buildStudy(
      [...cases.values()],
      r.case.map((caseId, i) => ({ test: r.test[i]!, reader: r.reader[i]!, caseId, rating: r.rating[i]! })),
    );
    const a = analyseMrmc(study, { method: 'JACKKNIFE', clustered: true });
    const ref = f.analyses.jackknife.rrrc.equality;
    expect(Math.abs(a.randomReaders!.statistic! - ref.F)).toBeLessThan(1e-9);
    expect(Math.abs(a.randomReaders!.df2! - ref.df2)).toBeLessThan(1e-9);
  });
});

describe('split-plot design (readers nested within sites)', () => {
  const sim = simulate(11, { sites: 3, readersPerSite: 2, patients: 10, joints: 4, modelShift: 0 });
  const study = modelVersusReaders(sim.cases, sim.model, sim.readers);

  it('puts each reader in their site and gives readers of different sites zero covariance', () => {
    expect(study.blocks).toEqual(['s0', 's1', 's2']);
    expect(study.readerBlock).toEqual([0, 0, 1, 1, 2, 2]);
    const { covariance } = readerTestAucs(study, 'DELONG', true);
    const J = study.readers.length;
    for (let g = 0; g < covariance.length; g++) {
      for (let h = 0; h < covariance.length; h++) {
        const sameSite = study.readerBlock[g % J] === study.readerBlock[h % J];
        if (!sameSite) expect(covariance[g]![h]).toBe(0);
        else expect(covariance[g]![h]).not.toBe(0);
      }
    }
  });

  it("each site's block alone is the crossed analysis of that site", () => {
    const site = sim.cases.filter((c) => c.block === 's1');
    const one = modelVersusReaders(
      site,
      sim.model,
      sim.readers.filter((r) => r.reader.startsWith('s1')),
    );
    const whole = readerTestAucs(study, 'DELONG', true);
    const alone = readerTestAucs(one, 'DELONG', true);
    // Readers s1r0, s1r1 are readers 2 and 3 of the whole study; the groups are test-major.
    const map = [2, 3, 8, 9];
    alone.covariance.forEach((row, g) => row.forEach((v, h) => expect(Math.abs(whole.covariance[map[g]!]![map[h]!]! - v)).toBeLessThan(1e-15)));
  });

  it('with one site reduces to the crossed OR formulas', () => {
    const site = sim.cases.filter((c) => c.block === 's0');
    const one = modelVersusReaders(
      site,
      sim.model,
      sim.readers.filter((r) => r.reader.startsWith('s0')),
    );
    const { auc: a, covariance } = readerTestAucs(one, 'JACKKNIFE', true);
    const direct = orAnalysis(one.tests, one.readers, a, covariance, 0.95);
    expect(analyseMrmc(one, { method: 'JACKKNIFE', clustered: true })).toEqual(direct);
  });
});

describe('random-reader test size when the model equals the readers (seeded simulation)', () => {
  // 400 split-plot studies: 3 sites x 2 readers, 15 patients x 4 joints per site, clustered DeLong. Under the null the
  // rejection rate at 5% is Binomial(400, 0.05)/400: standard error 0.011, so [0.02, 0.085] holds a correct test with
  // probability 0.996. Measured: 26/400 (6.5%) for both covariances. The model grades like a reader with the readers'
  // mean separation on the same 0-3 scale (a continuous model score would have no ties and a higher empirical AUC than
  // any grader: 11.5% rejections, not a flaw of the test but a model that is better).
  const STUDIES = 400;
  const rejections = { delong: 0, jackknife: 0 };
  beforeAll(() => {
    for (let s = 0; s < STUDIES; s++) {
      const sim = simulate(1000 + s, { sites: 3, readersPerSite: 2, patients: 15, joints: 4, modelShift: 0 });
      const study = modelVersusReaders(sim.cases, sim.model, sim.readers);
      if (analyseMrmc(study, { method: 'DELONG', clustered: true }).randomReaders!.p! < 0.05) rejections.delong++;
      if (analyseMrmc(study, { method: 'JACKKNIFE', clustered: true }).randomReaders!.p! < 0.05) rejections.jackknife++;
    }
  });

  it('keeps the 5% level with clustered DeLong covariances', () => {
    const rate = rejections.delong / STUDIES;
    expect(rate).toBeGreaterThanOrEqual(0.02);
    expect(rate).toBeLessThanOrEqual(0.085);
  });

  it('keeps the 5% level with the clustered jackknife', () => {
    const rate = rejections.jackknife / STUDIES;
    expect(rate).toBeGreaterThanOrEqual(0.02);
    expect(rate).toBeLessThanOrEqual(0.085);
  });

  it('has power against a better model (the test can fail)', () => {
    let rejected = 0;
    for (let s = 0; s < 100; s++) {
      const sim = simulate(5000 + s, { sites: 3, readersPerSite: 2, patients: 15, joints: 4, modelShift: 1.2 });
      const study = modelVersusReaders(sim.cases, sim.model, sim.readers);
      if (analyseMrmc(study, { method: 'DELONG', clustered: true }).randomReaders!.p! < 0.05) rejected++;
    }
    expect(rejected).toBeGreaterThan(50);
  });
});
