import { ExclusionReason, Modality, ReaderRole, Role, Sex, WEISHAUPT_FEATURES } from '../domain';
import { ReferenceGrade, Site } from '../entities';
import { systemContext, type Actor, type RequestContext, type Services } from '../services';

/** Deterministic PRNG (mulberry32): the demo cohort is the same on every machine. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const DEMO_SITES = [
  { code: 'NORTH', name: 'North University Hospital' },
  { code: 'HARBOUR', name: 'Harbour General' },
  { code: 'VALLEY', name: 'Valley Spine Center' },
];
export const DEMO_PATIENTS_PER_SITE = 6;
export const DEMO_MODALITIES = [Modality.CT];
export const DEMO_SPLIT_NAME = 'demo-v1';

/**
 * A small synthetic three-site study, loaded through the services so every rule applies: patients (one
 * excluded per site) with their joints, two readers per site who agree about 80% of the time, an adjudicator
 * who settles the rest, a senior who confirms every reference grade, and a frozen split. One transaction.
 */
export const DEMO_MODEL = { name: 'simulated-external', version: '1.0.0', description: 'Demo only: predictions simulated from the reference grades with noise' };

/**
 * A model "run elsewhere" whose per-grade probabilities are simulated around each reference grade (closer grades
 * likelier, with noise), imported like any external model's CSV, so the statistics queries have a model to
 * evaluate on first start. Issue 5's reference ONNX model replaces it with real inference.
 */
async function loadSimulatedModel(services: Services, ctx: RequestContext, random: () => number): Promise<void> {
  const model = await services.models.registerExternalModel(ctx, DEMO_MODEL);
  const rows: Array<{ site: string; pseudonym: string; level: string; side: string; modality: string; feature: string; grade: number; grades: number }> = await services.db
    .manager(ctx)
    .query(
      `SELECT s.code AS site, p.pseudonym, j.level, j.side, r.modality, r.feature, r.grade, jsonb_array_length(g.grades) AS grades
       FROM reference_grade r JOIN joint j ON j.id = r.joint_id JOIN patient p ON p.id = j.patient_id JOIN site s ON s.id = p.site_id
       JOIN grading_feature g ON g.code = r.feature WHERE NOT r.not_assessable ORDER BY 1, 2, 3, 4, 5, 6`,
    );
  const lines = ['site,patient,level,side,modality,feature,p0,p1,p2,p3'];
  for (const r of rows) {
    const weights = Array.from({ length: r.grades }, (_, g) => Math.exp(-1.2 * Math.abs(g - r.grade) + 2 * random()));
    const total = weights.reduce((a, b) => a + b, 0);
    const p = weights.map((w) => Math.round((w / total) * 1e6) / 1e6);
    p[0] = Math.round((p[0] + 1 - p.reduce((a, b) => a + b, 0)) * 1e6) / 1e6;
    lines.push([r.site, r.pseudonym, r.level, r.side, r.modality, r.feature, ...p, ...Array(4 - r.grades).fill('')].join(','));
  }
  const result = await services.models.importPredictions(ctx, model.id, lines.join('\n'));
  if (!result.stored) throw new Error(`Demo predictions were rejected: ${JSON.stringify(result.rejected.slice(0, 3))}`);
}

export async function loadDemoCohort(services: Services): Promise<{ sites: number; patients: number; readings: number }> {
  const random = prng(20261127);
  const system = systemContext('demo loader');
  let readingCount = 0;
  let patientCount = 0;
  await services.db.transaction(system, async (tx) => {
    const as = (actor: Partial<Actor>): RequestContext => ({
      requestId: tx.requestId,
      manager: tx.manager,
      actor: { tokenId: null, name: 'demo', role: Role.READER, siteId: null, readerId: null, readerRole: null, ...actor },
    });
    for (const [siteIndex, spec] of DEMO_SITES.entries()) {
      const site: Site = await services.sites.createSite(tx, spec);
      const reader = async (code: string, role: ReaderRole, years: number) => {
        const r = await services.readers.createReader(tx, { code: `${spec.code}-${code}`, role, yearsOfExperience: years, siteId: site.id });
        return as({ siteId: site.id, readerId: r.id, readerRole: r.role });
      };
      const readers = [await reader('R1', ReaderRole.READER, 3 + siteIndex), await reader('R2', ReaderRole.READER, 6 + siteIndex)];
      const adjudicator = await reader('ADJ', ReaderRole.ADJUDICATOR, 15);
      const senior = await reader('SEN', ReaderRole.SENIOR, 25);
      for (let p = 1; p <= DEMO_PATIENTS_PER_SITE; p++) {
        const patient = await services.patients.createPatient(tx, {
          siteId: site.id,
          pseudonym: `${spec.code}-P${String(p).padStart(3, '0')}`,
          sex: random() < 0.5 ? Sex.FEMALE : Sex.MALE,
          ageAtFirstImaging: 40 + Math.floor(random() * 40),
          exclusionReasons: p === DEMO_PATIENTS_PER_SITE ? [ExclusionReason.SPONDYLOLISTHESIS] : [],
        });
        patientCount++;
        if (p === DEMO_PATIENTS_PER_SITE) continue;
        const joints = await services.patients.jointsByPatientIds(tx, [patient.id]);
        for (const joint of joints) {
          for (const modality of DEMO_MODALITIES) {
            for (const feature of WEISHAUPT_FEATURES) {
              const top = feature.grades.length - 1;
              const truth = Math.min(top, Math.floor(random() * random() * (top + 1.5)));
              const cell = { jointId: joint.id, modality, feature: feature.code };
              for (const readerCtx of readers) {
                const grade = random() < 0.8 ? truth : Math.max(0, Math.min(top, truth + (random() < 0.5 ? -1 : 1)));
                await services.readings.recordReading(readerCtx, { ...cell, grade });
                readingCount++;
              }
              const queued = await services.readings.adjudicationQueue(adjudicator, { patientIds: [patient.id], levels: [joint.level], sides: [joint.side], modalities: [modality], features: [feature.code] }, { first: 1 });
              if (queued.nodes.length) await services.readings.adjudicate(adjudicator, { ...cell, grade: truth, rationale: 'Demo adjudication: consensus on re-review.' });
            }
          }
        }
      }
      const references = await services.db
        .repo(tx, ReferenceGrade)
        .createQueryBuilder('ref')
        .innerJoin('joint', 'joint', 'joint.id = ref.joint_id')
        .innerJoin('patient', 'patient', 'patient.id = joint.patient_id')
        .where('patient.site_id = :siteId', { siteId: site.id })
        .select('ref.id', 'id')
        .getRawMany<{ id: string }>();
      for (let i = 0; i < references.length; i += 1000) {
        await services.references.confirmReferenceGrades(senior, references.slice(i, i + 1000).map((r) => r.id));
      }
    }
    const split = await services.splits.createSplitVersion(tx, { name: DEMO_SPLIT_NAME, seed: 2026 });
    await services.splits.freezeSplitVersion(tx, split.id);
    await loadSimulatedModel(services, tx, random);
  });
  return { sites: DEMO_SITES.length, patients: patientCount, readings: readingCount };
}

