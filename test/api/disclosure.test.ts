import { spawn } from 'node:child_process';
import path from 'node:path';
import { loadDemoCohort } from '../../server/demo/demo-cohort';
import { Modality, Role } from '../../server/domain';
import { seededRandom } from '../../server/stats/bootstrap';
import { Factory } from '../helpers/factories';
import { codeOf, gql, gqlOk } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';

/**
 * Disclosure control of the statistics queries on the demo cohort with FACET_MIN_GROUP_PATIENTS = 7: each site
 * has 6 enrolled and 5 eligible patients, so every one-site group is small and the pooled rows (15 patients) are
 * not.
 */
const MIN = 7;

const METRICS = `query ($input: MetricsInput!) {
  metrics(input: $input) {
    disclosure { applied minGroupPatients rocGridSteps }
    groups {
      pooled site feature level side split suppressed suppression cases joints patients
      confusion { tp fp tn fn }
      sensitivity { value } auc { value lower upper }
      roc { fpr tpr thresholds }
      multiclass { confusion }
    }
  }
}`;
const COMPARE = `query ($input: CompareInput!) {
  compare(input: $input) {
    disclosure { applied }
    comparisons { readerCode pooled site suppressed suppression cases patients differences { metric model reader } }
  }
}`;
const AGREEMENT = `query ($scope: MetricsScope, $bySite: Boolean) {
  agreement(scope: $scope, bySite: $bySite) {
    feature modality site suppressed suppression disclosure { applied }
    readers { cases quadratic { value } percentAgreement { value } }
    adjudicationRate { value }
    readerVsReference { readerCode suppressed suppression cases quadratic { value } }
  }
}`;
const STUDY_FLOW = `query ($scope: MetricsScope) {
  studyFlow(scope: $scope) {
    site suppressed suppression disclosure { applied minGroupPatients }
    enrolled excluded eligible joints analysed excludedByReason { reason patients } bySplit { split patients }
  }
}`;

/** Predictions that follow the reference with seeded noise, as CSV rows for importPredictions (all, or those `keep` accepts). */
async function predictionsCsv(query: (sql: string) => Promise<any[]>, keep: (pseudonym: string) => boolean = () => true): Promise<string> {
  const rows: Array<{ site: string; pseudonym: string; level: string; side: string; modality: string; feature: string; grade: number; grades: number }> =
    await query(`
    SELECT s.code AS site, p.pseudonym, j.level, j.side, r.modality, r.feature, r.grade, jsonb_array_length(g.grades) AS grades
    FROM reference_grade r JOIN joint j ON j.id = r.joint_id JOIN patient p ON p.id = j.patient_id JOIN site s ON s.id = p.site_id
    JOIN grading_feature g ON g.code = r.feature WHERE NOT r.not_assessable ORDER BY 1, 2, 3, 4, 6`);
  const random = seededRandom(7);
  const csv = ['site,patient,level,side,modality,feature,p0,p1,p2,p3'];
  for (const r of rows) {
    const weights = Array.from({ length: r.grades }, (_, g) => Math.exp(-0.8 * Math.abs(g - r.grade) + random() * 2.5));
    const total = weights.reduce((a, b) => a + b, 0);
    const probabilities = weights.map((w) => (w / total).toFixed(6));
    probabilities[0] = (Number(probabilities[0]) + 1 - probabilities.reduce((a, b) => a + Number(b), 0)).toFixed(6);
    if (keep(r.pseudonym)) csv.push([r.site, r.pseudonym, r.level, r.side, r.modality, r.feature, ...probabilities, ...Array(4 - r.grades).fill('')].join(','));
  }
  return csv.join('\n');
}

const onGrid = (thresholds: Array<number | null>) =>
  thresholds.every((t, i) => (i === 0 ? t === null : Math.abs((t as number) * 20 - Math.round((t as number) * 20)) < 1e-9));

describe('disclosure control', () => {
  const node = useTestNode({ disclosure: { minGroupPatients: MIN } });
  const tokens: Partial<Record<Role | 'COORDINATOR_NORTH', string>> = {};
  let modelVersionId: string;
  let partialModelId: string;
  let splitVersionId: string;
  let siteIds: Record<string, string>;

  beforeAll(async () => {
    await loadDemoCohort(node().services, { modalities: [Modality.CT], images: false });
    const factory = new Factory(node().services);
    for (const role of [Role.ADMIN, Role.STATISTICIAN, Role.ENGINEER, Role.HUB]) tokens[role] = await factory.token(role);
    const north = (await node().services.sites.findSiteByCode(factory.admin, 'NORTH'))!;
    tokens.COORDINATOR_NORTH = await factory.token(Role.COORDINATOR, { site: north });
    siteIds = Object.fromEntries((await node().dataSource.query(`SELECT code, id FROM site`)).map((s: { code: string; id: string }) => [s.code, s.id]));
    splitVersionId = (await node().dataSource.query(`SELECT id FROM split_version`))[0].id;
    const query = (sql: string) => node().dataSource.query(sql);
    const register = async (version: string, csv: string) => {
      const model = await gqlOk(
        node().url,
        tokens.ENGINEER!,
        `mutation ($v: String!) { registerExternalModel(input: { name: "facet-ref", version: $v }) { id } }`,
        {
          v: version,
        },
      );
      const imported = await gqlOk(
        node().url,
        tokens.ENGINEER!,
        `mutation ($id: ID!, $csv: String!) { importPredictions(modelVersionId: $id, csv: $csv) { stored } }`,
        {
          id: model.registerExternalModel.id,
          csv,
        },
      );
      expect(imported.importPredictions.stored).toBe(true);
      return model.registerExternalModel.id as string;
    };
    modelVersionId = await register('1.0.0', await predictionsCsv(query));
    // A model run that missed one VALLEY patient.
    partialModelId = await register('1.0.1-partial', await predictionsCsv(query, (p) => p !== 'VALLEY-P002'));
  });

  const restricted = [Role.STATISTICIAN, Role.ENGINEER] as const;

  it.each(restricted)('metrics for %s: one-site groups withheld with no numbers, the pooled row released with grid ROC thresholds', async (role) => {
    const data = await gqlOk(node().url, tokens[role]!, METRICS, { input: { rater: { modelVersionId }, groupBy: ['SITE'], bootstrapReplicates: 200 } });
    expect(data.metrics.disclosure).toEqual({ applied: true, minGroupPatients: MIN, rocGridSteps: 20 });
    const [pooled, ...sites] = data.metrics.groups;
    expect(pooled).toMatchObject({ pooled: true, suppressed: false, suppression: null, patients: 15, cases: 750 });
    expect(onGrid(pooled.roc.thresholds)).toBe(true);
    expect(sites.map((g: any) => g.site)).toEqual(['HARBOUR', 'NORTH', 'VALLEY']);
    for (const g of sites) {
      expect(g).toEqual({
        pooled: false,
        site: g.site,
        feature: null,
        level: null,
        side: null,
        split: null,
        suppressed: true,
        suppression: 'FEWER_THAN_MIN_PATIENTS',
        cases: null,
        joints: null,
        patients: null,
        confusion: null,
        sensitivity: null,
        auc: null,
        roc: null,
        multiclass: null,
      });
    }
    // Two sites of three differ from all sites by the third's 5 patients: the scope itself is withheld.
    const twoSites = await gqlOk(node().url, tokens[role]!, METRICS, {
      input: { rater: { modelVersionId }, scope: { siteIds: [siteIds.NORTH, siteIds.HARBOUR] }, bootstrapReplicates: 200 },
    });
    expect(twoSites.metrics.groups).toEqual([expect.objectContaining({ pooled: true, suppressed: true, suppression: 'COMPLEMENT_TOO_SMALL', auc: null })]);
  });

  it.each(restricted)('compare for %s: every reader covers one site, so every comparison is withheld', async (role) => {
    const data = await gqlOk(node().url, tokens[role]!, COMPARE, { input: { modelVersionId, bootstrapReplicates: 200 } });
    expect(data.compare.disclosure.applied).toBe(true);
    expect(data.compare.comparisons).toHaveLength(6);
    for (const c of data.compare.comparisons) {
      expect(c).toMatchObject({ pooled: true, suppressed: true, suppression: 'FEWER_THAN_MIN_PATIENTS', cases: null, patients: null, differences: [] });
    }
  });

  it.each(restricted)('agreement for %s: per-site rows and single readers withheld; all sites together released', async (role) => {
    const bySite = await gqlOk(node().url, tokens[role]!, AGREEMENT, { scope: { features: ['OSTEOPHYTES'] }, bySite: true });
    expect(bySite.agreement).toHaveLength(3);
    for (const g of bySite.agreement) {
      expect(g).toMatchObject({
        suppressed: true,
        suppression: 'FEWER_THAN_MIN_PATIENTS',
        readers: null,
        adjudicationRate: null,
        disclosure: { applied: true },
      });
      for (const r of g.readerVsReference) expect(r).toMatchObject({ suppressed: true, suppression: 'FEWER_THAN_MIN_PATIENTS', cases: null, quadratic: null });
    }
    const pooled = await gqlOk(node().url, tokens[role]!, AGREEMENT, { scope: { features: ['OSTEOPHYTES'] }, bySite: false });
    const [row] = pooled.agreement;
    expect(row).toMatchObject({ site: null, suppressed: false, suppression: null });
    expect(row.readers.cases).toBe(150); // 15 patients x 10 joints, CT
    expect(row.readers.quadratic.value).toBeGreaterThan(0.2);
    expect(row.adjudicationRate.value).toBeCloseTo(1 - row.readers.percentAgreement.value, 12);
    // Each reader read one site's 5 patients.
    expect(row.readerVsReference).toHaveLength(6);
    for (const r of row.readerVsReference) expect(r).toMatchObject({ suppressed: true, suppression: 'FEWER_THAN_MIN_PATIENTS', quadratic: null });
  });

  it.each(restricted)('studyFlow for %s: sites of 6 enrolled withheld, the total released; one site as the scope withheld too', async (role) => {
    const data = await gqlOk(node().url, tokens[role]!, STUDY_FLOW, { scope: { splitVersionId } });
    const total = data.studyFlow[data.studyFlow.length - 1];
    expect(total).toMatchObject({
      site: null,
      suppressed: false,
      enrolled: 18,
      eligible: 15,
      analysed: 750,
      disclosure: { applied: true, minGroupPatients: MIN },
    });
    expect(total.bySplit.reduce((s: number, r: any) => s + r.patients, 0)).toBe(15);
    for (const row of data.studyFlow.slice(0, -1)) {
      expect(row).toMatchObject({
        suppressed: true,
        suppression: 'FEWER_THAN_MIN_PATIENTS',
        enrolled: null,
        excluded: null,
        eligible: null,
        joints: null,
        analysed: null,
        excludedByReason: [],
        bySplit: [],
      });
    }
    const north = await gqlOk(node().url, tokens[role]!, STUDY_FLOW, { scope: { siteIds: [siteIds.NORTH] } });
    expect(north.studyFlow.map((r: any) => [r.site, r.suppression])).toEqual([
      ['NORTH', 'FEWER_THAN_MIN_PATIENTS'],
      [null, 'FEWER_THAN_MIN_PATIENTS'],
    ]);
  });

  it('refuses every statistics query to a HUB token', async () => {
    const hub = tokens.HUB!;
    expect(codeOf(await gql(node().url, hub, METRICS, { input: { rater: { modelVersionId } } }))).toBe('FORBIDDEN');
    expect(codeOf(await gql(node().url, hub, COMPARE, { input: { modelVersionId } }))).toBe('FORBIDDEN');
    expect(codeOf(await gql(node().url, hub, AGREEMENT, {}))).toBe('FORBIDDEN');
    expect(codeOf(await gql(node().url, hub, STUDY_FLOW, {}))).toBe('FORBIDDEN');
  });

  it.each(['ADMIN', 'COORDINATOR_NORTH'] as const)('withholds nothing from %s, who sees patient-level data anyway, and says so', async (who) => {
    const token = tokens[who]!;
    const metrics = await gqlOk(node().url, token, METRICS, { input: { rater: { modelVersionId }, groupBy: ['SITE'], bootstrapReplicates: 200 } });
    expect(metrics.metrics.disclosure).toEqual({ applied: false, minGroupPatients: MIN, rocGridSteps: 20 });
    expect(metrics.metrics.groups.length).toBe(who === 'ADMIN' ? 4 : 2);
    for (const g of metrics.metrics.groups) {
      expect(g).toMatchObject({ suppressed: false, suppression: null });
      expect(g.auc.value).toBeGreaterThan(0.5);
    }
    // Raw score thresholds: off the 0.05 grid.
    expect(onGrid(metrics.metrics.groups[0].roc.thresholds)).toBe(false);
    const compare = await gqlOk(node().url, token, COMPARE, { input: { modelVersionId, bootstrapReplicates: 200 } });
    expect(compare.compare.disclosure.applied).toBe(false);
    expect(compare.compare.comparisons.length).toBe(who === 'ADMIN' ? 6 : 2);
    for (const c of compare.compare.comparisons) expect(c).toMatchObject({ suppressed: false, patients: 5 });
    const agreement = await gqlOk(node().url, token, AGREEMENT, { scope: { features: ['OSTEOPHYTES'] }, bySite: true });
    for (const g of agreement.agreement) {
      expect(g).toMatchObject({ suppressed: false, disclosure: { applied: false } });
      expect(g.readers.cases).toBe(50);
      for (const r of g.readerVsReference) expect(r.suppressed).toBe(false);
    }
    const flow = await gqlOk(node().url, token, STUDY_FLOW, {});
    for (const row of flow.studyFlow) expect(row).toMatchObject({ suppressed: false, disclosure: { applied: false } });
    expect(flow.studyFlow[0].enrolled).toBe(6);
  });

  it('withholds the rows of a rater that missed a few patients of the scope, where another rater would give them away', async () => {
    const input = { rater: { modelVersionId: partialModelId }, bootstrapReplicates: 200 };
    const statistician = await gqlOk(node().url, tokens.STATISTICIAN!, METRICS, { input: { ...input, groupBy: ['SITE'] } });
    expect(statistician.metrics.groups[0]).toMatchObject({ pooled: true, suppressed: true, suppression: 'COMPLEMENT_TOO_SMALL' });
    // Its pooled row and the full model's differ in one patient's reference grades (prevalence, positives).
    const admin = await gqlOk(node().url, tokens.ADMIN!, METRICS, { input });
    expect(admin.metrics.groups[0]).toMatchObject({ suppressed: false, patients: 14 });
  });

  it('withholds confirmed-only rows when the unconfirmed grades belong to fewer patients than the minimum', async () => {
    // One patient's grades not yet confirmed by the senior group.
    const before: Array<{ id: string; confirmed_at: Date }> = await node().dataSource.query(
      `SELECT r.id, r.confirmed_at FROM reference_grade r JOIN joint j ON j.id = r.joint_id JOIN patient p ON p.id = j.patient_id WHERE p.pseudonym = 'NORTH-P001'`,
    );
    expect(before).toHaveLength(50);
    await node().dataSource.query(`UPDATE reference_grade SET confirmed_at = NULL WHERE id = ANY($1)`, [before.map((r) => r.id)]);
    try {
      const input = { rater: { modelVersionId }, bootstrapReplicates: 200 };
      const confirmed = await gqlOk(node().url, tokens.STATISTICIAN!, METRICS, { input });
      expect(confirmed.metrics.groups[0]).toMatchObject({ suppressed: true, suppression: 'COMPLEMENT_TOO_SMALL' });
      const all = await gqlOk(node().url, tokens.STATISTICIAN!, METRICS, { input: { ...input, confirmedOnly: false } });
      expect(all.metrics.groups[0]).toMatchObject({ suppressed: false, patients: 15 });
    } finally {
      for (const r of before) {
        await node().dataSource.query(`UPDATE reference_grade SET confirmed_at = $2 WHERE id = $1`, [r.id, r.confirmed_at]);
      }
    }
  });

  it('writes withheld groups into the CLI report as rows without numbers, with the reason', async () => {
    const run = (format: string) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const args = ['report', '--url', node().url, '--token', tokens.STATISTICIAN!, '--model', modelVersionId, '--group-by', 'SITE', '--format', format];
        const child = spawn(process.execPath, [path.resolve(__dirname, '../../dist/server/main.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (c: Buffer) => (out += c.toString()));
        child.stderr.on('data', (c: Buffer) => (out += c.toString()));
        child.once('exit', (code) => resolve({ code, out }));
      });
    const csv = await run('csv');
    expect(csv.code).toBe(0);
    const north = csv.out.split('\n').filter((l) => l.startsWith('NORTH,'));
    expect(north).toHaveLength(9);
    for (const line of north) expect(line).toMatch(/^NORTH,,,,,,false,,,[a-z0-9]+,,,,withheld,FEWER_THAN_MIN_PATIENTS$/);
    expect(csv.out.split('\n').find((l) => l.startsWith(',,,,,,true,750,15,auc,'))).toBeDefined();
    const html = await run('html');
    expect(html.code).toBe(0);
    expect(html.out).toMatch(/FEWER_THAN_MIN_PATIENTS/);
  });

  it('lets no generated pair of overlapping metrics queries recover a small group by differencing', async () => {
    type Case = { patient: string; site: string; split: string | null; level: string; side: string; feature: string; confirmed: boolean; predicted: boolean };
    const population: Case[] = await node().dataSource.query(
      `SELECT p.id AS patient, s.code AS site, sa.split, j.level, j.side, r.feature, (r.confirmed_at IS NOT NULL) AS confirmed,
         EXISTS (SELECT 1 FROM prediction pr WHERE pr.joint_id = r.joint_id AND pr.modality = r.modality AND pr.feature = r.feature AND pr.model_version_id = $1) AS predicted
       FROM reference_grade r JOIN joint j ON j.id = r.joint_id JOIN patient p ON p.id = j.patient_id JOIN site s ON s.id = p.site_id
       LEFT JOIN split_assignment sa ON sa.patient_id = p.id AND sa.split_version_id = $2
       WHERE NOT r.not_assessable AND cardinality(p.exclusion_reasons) = 0`,
      [modelVersionId, splitVersionId],
    );
    const codeOfSite = Object.fromEntries(Object.entries(siteIds).map(([code, id]) => [id, code]));
    const bits = (keep: (c: Case) => boolean) => population.reduce((b, c, i) => (keep(c) ? b | (1n << BigInt(i)) : b), 0n);
    const patientsOf = (b: bigint) => new Set(population.filter((_, i) => b & (1n << BigInt(i))).map((c) => c.patient)).size;
    const countOf = (b: bigint) => population.filter((_, i) => b & (1n << BigInt(i))).length;

    const random = seededRandom(2026);
    const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)];
    const subset = <T>(values: readonly T[]): T[] => {
      const chosen = values.filter(() => random() < 0.6);
      return chosen.length ? chosen : [pick(values)];
    };
    const dims = { SITE: 'site', SPLIT: 'split', LEVEL: 'level', SIDE: 'side', FEATURE: 'feature' } as const;
    const released: bigint[] = [];
    const all: bigint[] = [];
    for (let q = 0; q < 40; q++) {
      const scope: Record<string, unknown> = { splitVersionId };
      if (random() < 0.3) scope.siteIds = subset(Object.values(siteIds));
      if (random() < 0.3) scope.splits = subset(['TRAIN', 'VALIDATION', 'TEST']);
      if (random() < 0.5) scope.levels = subset(['L1_L2', 'L2_L3', 'L3_L4', 'L4_L5', 'L5_S1']);
      if (random() < 0.4) scope.sides = subset(['LEFT', 'RIGHT']);
      if (random() < 0.4) scope.features = subset(['JOINT_SPACE_NARROWING', 'OSTEOPHYTES', 'HYPERTROPHY', 'EROSION', 'SUBCHONDRAL_CYSTS']);
      const groupBy = (Object.keys(dims) as Array<keyof typeof dims>).filter(() => random() < 0.25);
      const inScope = (c: Case) =>
        c.confirmed &&
        c.predicted &&
        (!scope.siteIds || (scope.siteIds as string[]).map((id) => codeOfSite[id]).includes(c.site)) &&
        (!scope.splits || (scope.splits as string[]).includes(c.split as string)) &&
        (!scope.levels || (scope.levels as string[]).includes(c.level)) &&
        (!scope.sides || (scope.sides as string[]).includes(c.side)) &&
        (!scope.features || (scope.features as string[]).includes(c.feature));
      const data = await gqlOk(node().url, tokens.STATISTICIAN!, METRICS, { input: { rater: { modelVersionId }, scope, groupBy, bootstrapReplicates: 200 } });
      let withheld = 0n;
      for (const g of data.metrics.groups) {
        const rowBits = bits((c) => inScope(c) && (g.pooled || groupBy.every((d) => c[dims[d]] === g[dims[d]])));
        all.push(rowBits);
        if (g.suppressed) {
          if (!g.pooled) withheld |= rowBits;
          continue;
        }
        // The model of a row used here is the server's: the same number of cases and patients.
        expect([g.cases, g.patients]).toEqual([countOf(rowBits), patientsOf(rowBits)]);
        expect(onGrid(g.roc.thresholds)).toBe(true);
        released.push(rowBits);
      }
      // A released pooled row minus the released groups is what was withheld: none of it, or enough patients.
      const hidden = patientsOf(withheld);
      if (!data.metrics.groups[0].suppressed) expect(hidden === 0 || hidden >= MIN).toBe(true);
    }
    const smallDifferences = (rows: bigint[]) => {
      let found = 0;
      for (const small of rows)
        for (const large of rows)
          if (small !== large && (large & small) === small && patientsOf(large & ~small) > 0 && patientsOf(large & ~small) < MIN) found++;
      return found;
    };
    expect(released.length).toBeGreaterThan(50);
    // With only the minimum group size (every row of >= 7 patients released), these queries would give small groups away.
    expect(smallDifferences(all.filter((b) => patientsOf(b) >= MIN))).toBeGreaterThan(20);
    expect(smallDifferences(released)).toBe(0);
  });
});
