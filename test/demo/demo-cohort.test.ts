import { loadDemoCohort, type DemoSummary } from '../../server/demo/demo-cohort';
import { Role } from '../../server/domain';
import { Factory } from '../helpers/factories';
import { gqlOk, subscribe } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';

const FEATURES = ['JOINT_SPACE_NARROWING', 'OSTEOPHYTES', 'HYPERTROPHY', 'EROSION', 'SUBCHONDRAL_CYSTS'];

describe('the synthetic demo study', () => {
  const node = useTestNode();
  let summary: DemoSummary;
  let statistician: string;
  let engineer: string;

  beforeAll(async () => {
    summary = await loadDemoCohort(node().services);
    const factory = new Factory(node().services);
    statistician = await factory.token(Role.STATISTICIAN);
    engineer = await factory.token(Role.ENGINEER);
  }, 180_000);

  it('holds three sites of phantoms for XR, CT and MR with joint regions, and one finished inference job', async () => {
    // 3 sites x 5 eligible patients x 3 modalities x 5 levels: one slice per level holds both facet joints.
    expect(summary).toMatchObject({ sites: 3, patients: 18, instances: 225, readings: 3 * 5 * 10 * 3 * 5 * 2 });
    const [counts] = await node().dataSource.query(
      `SELECT (SELECT count(*)::int FROM joint_image) AS images, (SELECT count(DISTINCT modality)::int FROM series) AS modalities,
              (SELECT count(*)::int FROM reference_grade WHERE confirmed_at IS NULL) AS unconfirmed`,
    );
    expect(counts).toEqual({ images: 450, modalities: 3, unconfirmed: 0 });
    const job = await gqlOk(node().url, engineer, `query ($id: ID!) { job(id: $id) { status total done failed provider } }`, { id: summary.jobId });
    expect(job.job).toEqual({ status: 'SUCCEEDED', total: 450, done: 450, failed: 0, provider: 'cpu' });
    expect(summary.predictions).toBe(450 * 5);
  });

  it('has two readers who disagree realistically (quadratic kappa 0.4-0.8 per modality), every disagreement adjudicated', async () => {
    const data = await gqlOk(node().url, statistician, `{ agreement(bySite: false) { modality feature readers { quadratic { value } } adjudicationRate { value } } }`);
    expect(summary.adjudications).toBeGreaterThan(0);
    for (const modality of ['XR', 'CT', 'MR']) {
      const groups = data.agreement.filter((g: any) => g.modality === modality);
      const kappa = groups.reduce((s: number, g: any) => s + g.readers.quadratic.value, 0) / groups.length;
      expect(kappa).toBeGreaterThanOrEqual(0.4);
      expect(kappa).toBeLessThanOrEqual(0.8);
    }
  });

  it("rates the reference model's predictions on the demo clearly above chance for every feature", async () => {
    const data = await gqlOk(
      node().url,
      statistician,
      `query ($id: ID!) { metrics(input: { rater: { modelVersionId: $id }, groupBy: [FEATURE], bootstrapReplicates: 200 }) { groups { pooled feature cases auc { value } } } }`,
      { id: (await node().dataSource.query(`SELECT model_version_id AS id FROM inference_job`))[0].id },
    );
    for (const feature of FEATURES) {
      const group = data.metrics.groups.find((g: any) => g.feature === feature);
      expect(group.cases).toBe(450);
      expect(group.auc.value).toBeGreaterThan(0.7);
    }
  });

  it('answers a jobs subscription with the finished job only after it changes (no active job is left over)', async () => {
    const live = await subscribe<{ jobs: { id: string } }>(node().url, engineer, `subscription { jobs { id status } }`);
    try {
      await new Promise((r) => setTimeout(r, 300));
      expect(live.events).toEqual([]);
    } finally {
      await live.close();
    }
  });
});
