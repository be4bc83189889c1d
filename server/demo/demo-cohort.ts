import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ExclusionReason, Level, Modality, ReaderRole, Role, WEISHAUPT_FEATURES } from '../domain';
import { ReferenceGrade, type Site } from '../entities';
import { badInput } from '../errors/app-error';
import { systemContext, type Actor, type RequestContext, type Services } from '../services';
import { drawFacetSlice, PHANTOM_UID_ROOT, phantomPart10, prng, sampleJointGrades, type JointGrades } from './phantoms';

/** Works from server/demo (ts) and dist/server/demo (js). */
const REPO_ROOT = path.resolve(__dirname, __dirname.split(path.sep).includes('dist') ? '../../..' : '../..');
export const REFERENCE_MODEL_DIR = path.join(REPO_ROOT, 'model-registry/reference');

export const DEMO_SITES = [
  { code: 'NORTH', name: 'North University Hospital' },
  { code: 'HARBOUR', name: 'Harbour General' },
  { code: 'VALLEY', name: 'Valley Spine Center' },
];
export const DEMO_PATIENTS_PER_SITE = 6;
export const DEMO_SPLIT_NAME = 'demo-v1';
const LEVELS = Object.values(Level);
const SIDES = ['LEFT', 'RIGHT'] as const;

/**
 * How often a reader's grade is off by one, by modality: radiographs are the hardest to read, CT the easiest
 * (the second, more experienced reader errs a fifth less). Tuned so the two readers' quadratic kappa lands
 * in the 0.4-0.8 range reported for facet-joint grading.
 */
const READER_ERROR: Record<Modality, number> = { [Modality.XR]: 0.34, [Modality.CT]: 0.2, [Modality.MR]: 0.26 };

export interface DemoOptions {
  /** Modalities read (default XR, CT and MR). */
  modalities?: Modality[];
  /** DICOM phantoms, the reference model and one inference job (default true); false: grades only. */
  images?: boolean;
  /** With images: register the reference model and run its job over them (default true); false leaves the images unpredicted. */
  registerModel?: boolean;
  /**
   * Codes of the demo sites to load (default all three): a federation demo node holds only its own site's share.
   * The other sites' patients and grades are still drawn, not stored, so each share is exactly that site's part of
   * the full study, and the shares of all three sites together are the full study (with the same `images` and
   * `modalities`; the split is drawn per node over the patients it holds).
   */
  sites?: string[];
}

/**
 * The demo sites named by `codes` (any letter case), in DEMO_SITES order; all of them without `codes`. A code the
 * demo does not have, or an empty list, is BAD_USER_INPUT naming the demo's codes.
 */
export function demoSitesNamed(codes: string[] | undefined): typeof DEMO_SITES {
  if (!codes) return DEMO_SITES;
  const wanted = new Set(codes.map((c) => c.trim().toUpperCase()));
  const unknown = [...wanted].filter((c) => !DEMO_SITES.some((s) => s.code === c));
  const known = DEMO_SITES.map((s) => s.code);
  if (unknown.length)
    throw badInput(`No demo site ${unknown.map((c) => JSON.stringify(c)).join(', ')}: the demo sites are ${known.join(', ')}`, { unknown, known });
  if (!wanted.size) throw badInput(`Name at least one demo site: ${known.join(', ')}`, { known });
  return DEMO_SITES.filter((s) => wanted.has(s.code));
}

export interface DemoSummary {
  sites: number;
  patients: number;
  instances: number;
  readings: number;
  adjudications: number;
  jobId: string | null;
  predictions: number;
}

interface DemoPatient {
  patientId: string;
  pseudonym: string;
  excluded: boolean;
  /** The true grades of each joint, `${level}:${side}`: drawn into the phantoms, the readers' target. */
  truth: Map<string, JointGrades>;
}

/** Ten joints of a patient whose degeneration shares a patient-level tendency (older spines degenerate throughout). */
function drawPatient(siteCode: string, index: number, random: () => number): DemoPatient {
  const tendency = random();
  const truth = new Map<string, JointGrades>();
  for (const level of LEVELS) {
    for (const side of SIDES) truth.set(`${level}:${side}`, sampleJointGrades(random, Math.min(1, Math.max(0, 0.6 * tendency + 0.4 * random()))));
  }
  const number = String(index).padStart(3, '0');
  return { patientId: `${siteCode}-MRN-${number}`, pseudonym: `${siteCode}-P${number}`, excluded: index === DEMO_PATIENTS_PER_SITE, truth };
}

/** A reader's grade: the truth, or one grade off with the modality's error rate. */
function readGrade(truth: number, grades: number, error: number, random: () => number): number {
  if (random() >= error) return truth;
  const step = truth === 0 ? 1 : truth === grades - 1 ? -1 : random() < 0.5 ? -1 : 1;
  return truth + step;
}

/** A site's phantoms: for each patient, modality and level one axial slice holding both facet joints, and its joint-images.csv rows. */
function sitePhantoms(siteIndex: number, patients: DemoPatient[], modalities: Modality[], random: () => number): { files: Buffer[]; jointImages: string[] } {
  const files: Buffer[] = [];
  const jointImages: string[] = [];
  for (const [p, patient] of patients.entries()) {
    for (const [m, modality] of modalities.entries()) {
      const study = `${PHANTOM_UID_ROOT}.6.${siteIndex + 1}.${p + 1}.${m + 1}`;
      for (const [l, level] of LEVELS.entries()) {
        const slice = drawFacetSlice(modality, patient.truth.get(`${level}:LEFT`)!, patient.truth.get(`${level}:RIGHT`)!, random);
        const sopInstanceUid = `${study}.1.${l + 1}`;
        files.push(
          phantomPart10({
            patientId: patient.patientId,
            patientName: `DEMO^${patient.pseudonym}`,
            studyInstanceUid: study,
            seriesInstanceUid: `${study}.1`,
            sopInstanceUid,
            seriesNumber: 1,
            instanceNumber: l + 1,
            studyDate: `2025${String(siteIndex + 3).padStart(2, '0')}${String(p + 10)}`,
            studyDescription: `Lumbar spine ${modality} (synthetic phantom)`,
            seriesDescription: `Facet joints ${modality}`,
            slice,
          }),
        );
        for (const side of SIDES) {
          const roi = slice.rois[side];
          jointImages.push([patient.patientId, level, side, sopInstanceUid, 0, roi.x, roi.y, roi.width, roi.height].join(','));
        }
      }
    }
  }
  return { files, jointImages };
}

/** readings.csv rows of two readers (the first errs a fifth more often) over every joint, modality and feature of `patients`. */
function readingRows(patients: DemoPatient[], modalities: Modality[], readerCodes: string[], random: () => number): string[] {
  const rows: string[] = [];
  for (const patient of patients) {
    for (const [joint, truth] of patient.truth) {
      const [level, side] = joint.split(':');
      for (const modality of modalities) {
        for (const feature of WEISHAUPT_FEATURES) {
          for (const [r, readerCode] of readerCodes.entries()) {
            const grade = readGrade(truth[feature.code as keyof JointGrades], feature.grades.length, READER_ERROR[modality] * (r === 0 ? 1 : 0.8), random);
            rows.push([readerCode, patient.patientId, level, side, modality, feature.code, grade].join(','));
          }
        }
      }
    }
  }
  return rows;
}

function expectStored(what: string, result: { stored: boolean; rejected: Array<{ reason: string }> }): void {
  if (!result.stored) throw new Error(`Demo ${what} were rejected: ${JSON.stringify(result.rejected.slice(0, 3))}`);
}

/**
 * A synthetic three-site study, loaded through the same services a coordinator's upload uses, so every rule
 * applies: patients.csv (one excluded patient per site), DICOM phantoms for XR, CT and MR whose facet joints
 * carry known grades (server/demo/phantoms.ts) with their joint regions, two readers per site who read those
 * grades with realistic disagreement, an adjudicator who settles every disagreement, a senior who confirms
 * every reference grade, and a frozen split; all in one transaction. Then the reference model
 * (model-registry/reference) is registered and one inference job runs over every image, so every query and
 * subscription has real data on first start.
 */
export async function loadDemoCohort(services: Services, options: DemoOptions = {}): Promise<DemoSummary> {
  const modalities = options.modalities ?? [Modality.XR, Modality.CT, Modality.MR];
  const images = options.images ?? true;
  const loaded = new Set(demoSitesNamed(options.sites).map((s) => s.code));
  const random = prng(20261127);
  const system = systemContext('demo loader');
  const summary: DemoSummary = { sites: loaded.size, patients: 0, instances: 0, readings: 0, adjudications: 0, jobId: null, predictions: 0 };
  const modelId = await services.db.transaction(system, async (tx) => {
    const as = (actor: Partial<Actor>): RequestContext => ({
      requestId: tx.requestId,
      manager: tx.manager,
      actor: { tokenId: null, name: 'demo', role: Role.READER, siteId: null, readerId: null, readerRole: null, ...actor },
    });
    const sites = new Map<string, Site>();
    for (const spec of DEMO_SITES) if (loaded.has(spec.code)) sites.set(spec.code, await services.sites.createSite(tx, spec));
    const cohorts = DEMO_SITES.map((spec) => Array.from({ length: DEMO_PATIENTS_PER_SITE }, (_, i) => drawPatient(spec.code, i + 1, random)));
    const patientsCsv = ['site,patient_id,pseudonym,sex,age,eligible,exclusion_reasons'];
    for (const [s, cohort] of cohorts.entries()) {
      for (const patient of cohort) {
        const sex = random() < 0.5 ? 'F' : 'M';
        const age = 40 + Math.floor(random() * 40);
        if (!loaded.has(DEMO_SITES[s].code)) continue;
        patientsCsv.push(
          [
            DEMO_SITES[s].code,
            patient.patientId,
            patient.pseudonym,
            sex,
            age,
            patient.excluded ? 'no' : 'yes',
            patient.excluded ? ExclusionReason.SPONDYLOLISTHESIS : '',
          ].join(','),
        );
      }
    }
    expectStored('patients', await services.manifests.importPatients(tx, patientsCsv.join('\n')));
    summary.patients = patientsCsv.length - 1;

    for (const [s, { code }] of DEMO_SITES.entries()) {
      const site = sites.get(code);
      const included = cohorts[s].filter((p) => !p.excluded);
      if (!site) {
        // Another node's share: its draws are made and dropped, so the next site's patients are the full study's.
        if (images) sitePhantoms(s, included, modalities, random);
        readingRows(included, modalities, [`${code}-R1`, `${code}-R2`], random);
        continue;
      }
      const coordinator = as({ role: Role.COORDINATOR, siteId: site.id });
      const reader = async (suffix: string, role: ReaderRole, years: number) => {
        const r = await services.readers.createReader(tx, { code: `${code}-${suffix}`, role, yearsOfExperience: years, siteId: site.id });
        return { code: r.code, ctx: as({ siteId: site.id, readerId: r.id, readerRole: r.role }) };
      };
      const readers = [await reader('R1', ReaderRole.READER, 3 + s), await reader('R2', ReaderRole.READER, 6 + s)];
      const adjudicator = await reader('ADJ', ReaderRole.ADJUDICATOR, 15);
      const senior = await reader('SEN', ReaderRole.SENIOR, 25);

      if (images) {
        const { files, jointImages } = sitePhantoms(s, included, modalities, random);
        const ingested = await services.ingest.ingestDicom(
          coordinator,
          site.id,
          files.map((bytes, i) => ({ source: `phantom ${i + 1}`, bytes })),
        );
        expectStored('DICOM phantoms', ingested);
        summary.instances += files.length;
        const header = 'patient_id,level,side,sop_instance_uid,frame,x,y,width,height';
        expectStored('joint images', await services.manifests.importJointImages(coordinator, site.id, [header, ...jointImages].join('\n')));
      }

      const readingsCsv = [
        'reader,patient_id,level,side,modality,feature,grade',
        ...readingRows(
          included,
          modalities,
          readers.map((r) => r.code),
          random,
        ),
      ];
      expectStored('readings', await services.manifests.importReadings(coordinator, site.id, readingsCsv.join('\n')));
      summary.readings += readingsCsv.length - 1;

      // The adjudicator settles every disagreement on the truth (on re-review, with the images side by side).
      const truthOf = new Map<string, JointGrades>();
      const joints: Array<{ id: string; pseudonym: string; level: string; side: string }> = await services.db
        .manager(tx)
        .query(`SELECT j.id, p.pseudonym, j.level, j.side FROM joint j JOIN patient p ON p.id = j.patient_id WHERE p.site_id = $1`, [site.id]);
      for (const j of joints) {
        const patient = included.find((p) => p.pseudonym === j.pseudonym);
        if (patient) truthOf.set(j.id, patient.truth.get(`${j.level}:${j.side}`)!);
      }
      for (;;) {
        const queue = await services.readings.adjudicationQueue(adjudicator.ctx, { siteIds: [site.id] }, { first: 500 });
        if (!queue.nodes.length) break;
        for (const item of queue.nodes) {
          const grade = truthOf.get(item.jointId)![item.feature as keyof JointGrades];
          await services.readings.adjudicate(adjudicator.ctx, {
            jointId: item.jointId,
            modality: item.modality,
            feature: item.feature,
            grade,
            rationale: 'Demo adjudication: consensus on re-review.',
          });
          summary.adjudications++;
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
        await services.references.confirmReferenceGrades(
          senior.ctx,
          references.slice(i, i + 1000).map((r) => r.id),
        );
      }
    }
    const split = await services.splits.createSplitVersion(tx, { name: DEMO_SPLIT_NAME, seed: 2026 });
    await services.splits.freezeSplitVersion(tx, split.id);
    if (!images || options.registerModel === false) return null;
    const manifest = JSON.parse(readFileSync(path.join(REFERENCE_MODEL_DIR, 'manifest.json'), 'utf8'));
    const model = await services.models.registerModelVersion(tx, readFileSync(path.join(REFERENCE_MODEL_DIR, 'model.onnx')), manifest);
    return model.id;
  });

  if (modelId) {
    // One job over every image, run here and now (its queue job, once a worker takes it, finds it finished).
    const job = await services.inference.startInferenceJob(system, { modelVersionId: modelId });
    while ((await services.inferenceRunner.runSlice(systemContext('demo worker'), job.id)) === 'continued');
    // 'skipped': a worker sharing the database took the job over; wait for it to finish.
    let finished = await services.inference.getJob(system, job.id);
    for (const deadline = Date.now() + 600_000; (finished.status === 'QUEUED' || finished.status === 'RUNNING') && Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      finished = await services.inference.getJob(system, job.id);
    }
    if (finished.status !== 'SUCCEEDED' || finished.failed) throw new Error(`The demo inference job ended ${finished.status} with ${finished.failed} failures`);
    summary.jobId = job.id;
    summary.predictions = (
      await services.db.query<{ n: number }>(system, `SELECT count(*)::int AS n FROM prediction WHERE model_version_id = $1`, [modelId])
    )[0].n;
  }
  return summary;
}
