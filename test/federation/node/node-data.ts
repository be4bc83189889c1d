import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadDemoCohort, REFERENCE_MODEL_DIR } from '../../../server/demo/demo-cohort';
import { prng } from '../../../server/demo/phantoms';
import { Modality, WEISHAUPT_FEATURES } from '../../../server/domain';
import { systemContext, type Services } from '../../../server/services';
import { NO_TRANSACTION } from '../../../server/db/transaction';
import { insertPredictions, type PredictionRow } from '../../../server/services/inference-job/prediction.sql';

/** What a node holds that must never cross to the hub: every value is searched for in the bytes the hub received. */
export interface NodeSecrets {
  pseudonyms: string[];
  hospitalIds: string[];
  /** Patient and joint row ids, the keyed hashes of hospital ids, reading ids. */
  rowIds: string[];
  /** Each per-case model score as written in the predictions CSV. */
  scores: string[];
}

export interface FederationTestData {
  modelSha256: string;
  secrets: NodeSecrets;
}

/**
 * A demo-like study (the demo loader's three sites, readers, adjudication, confirmed reference and frozen split, on
 * XR only to keep it quick) plus the reference model registered and per-case scores written for it: seeded scores
 * near the reference grade, printed with seven decimals so each is a string no aggregate contains by chance.
 */
export async function loadFederationTestData(services: Services, seed = 7): Promise<FederationTestData> {
  await loadDemoCohort(services, { images: false, modalities: [Modality.XR] });
  const ctx = systemContext('federation test data');
  const manifest = JSON.parse(readFileSync(path.join(REFERENCE_MODEL_DIR, 'manifest.json'), 'utf8'));
  const model = await services.models.registerModelVersion(ctx, readFileSync(path.join(REFERENCE_MODEL_DIR, 'model.onnx')), manifest);
  const cells: Array<{ jointId: string; site: string; pseudonym: string; level: string; side: string; feature: string; grade: number | null }> =
    await services.db.query(
      NO_TRANSACTION,
      `SELECT j.id AS "jointId", s.code AS site, p.pseudonym, j.level, j.side, r.feature, r.grade
       FROM reference_grade r JOIN joint j ON j.id = r.joint_id JOIN patient p ON p.id = j.patient_id JOIN site s ON s.id = p.site_id
      WHERE r.modality = 'XR' ORDER BY s.code, p.pseudonym, j.level, j.side, r.feature`,
    );
  const random = prng(seed);
  const grades = new Map(WEISHAUPT_FEATURES.map((f) => [f.code, f.grades.length]));
  const scores: string[] = [];
  const rows: PredictionRow[] = [];
  for (const cell of cells) {
    const k = grades.get(cell.feature) as number;
    // Mostly right, sometimes a grade off: a model with realistic, imperfect accuracy.
    const target = cell.grade === null ? 0 : random() < 0.75 ? cell.grade : Math.min(k - 1, Math.max(0, cell.grade + (random() < 0.5 ? -1 : 1)));
    const weights = Array.from({ length: k }, (_, g) => (g === target ? 3 : 0.2) + random());
    const total = weights.reduce((a, b) => a + b, 0);
    const p = weights.slice(0, -1).map((w) => Number((w / total).toFixed(7)));
    p.push(Number((1 - p.reduce((a, b) => a + b, 0)).toFixed(7)));
    const printed = p.map((v) => v.toFixed(7));
    scores.push(...printed.filter((s) => !/000$/.test(s)));
    rows.push({ joint_id: cell.jointId, modality: Modality.XR, feature: cell.feature, p, grade: p.indexOf(Math.max(...p)) });
  }
  // An ONNX version's predictions come from its jobs alone (importPredictions refuses it), and these images are not
  // loaded: the rows go in through the very statement a job's batch writes with.
  const written = await insertPredictions(services.db.manager(NO_TRANSACTION), model.id, rows);
  if (written !== rows.length) throw new Error(`wrote ${written} of ${rows.length} predictions`);
  const [ids] = await services.db.query(
    NO_TRANSACTION,
    `SELECT (SELECT array_agg(pseudonym) FROM patient) AS pseudonyms,
            (SELECT array_agg(id::text) FROM patient) || (SELECT array_agg(id::text) FROM joint) || (SELECT array_agg(id::text) FROM reading)
              || coalesce((SELECT array_agg(trim(patient_key)) FROM patient WHERE patient_key IS NOT NULL), '{}') AS "rowIds"`,
  );
  return {
    modelSha256: model.sha256 as string,
    secrets: {
      pseudonyms: ids.pseudonyms,
      hospitalIds: (ids.pseudonyms as string[]).map((p) => p.replace('-P', '-MRN-')),
      rowIds: ids.rowIds,
      scores: [...new Set(scores)],
    },
  };
}
