import type { EntityManager } from 'typeorm';
import type { Modality } from '../../domain';

/** The prediction SQL of a job's batches: which cells a model has predicted, and the one-time insert of a batch's predictions. */

export interface PredictionRow {
  joint_id: string;
  modality: Modality;
  feature: string;
  /** Probability per grade. */
  p: number[];
  grade: number;
}

/** The cells (`jointId:modality`) among `jointIds` that the model has predicted for every one of its `outputs` features. */
export async function predictedCells(m: EntityManager, modelVersionId: string, jointIds: string[], outputs: number): Promise<Set<string>> {
  const rows: Array<{ k: string }> = await m.query(
    `SELECT joint_id || ':' || modality AS k FROM prediction WHERE model_version_id = $1 AND joint_id = ANY($2)
     GROUP BY joint_id, modality HAVING count(*) >= $3`,
    [modelVersionId, jointIds, outputs],
  );
  return new Set(rows.map((r) => r.k));
}

/**
 * Writes a batch's predictions, one statement with one JSON parameter however many rows; returns how many rows it
 * wrote. Predictions are immutable once written: a cell the model has already predicted keeps its first value
 * (a job run again, or resumed after a worker died, neither duplicates nor rewrites). Only a model version with an
 * ONNX file takes predictions from a job: an external version's come from its import alone, so for one this
 * writes nothing, whatever job names it.
 */
export async function insertPredictions(m: EntityManager, modelVersionId: string, rows: PredictionRow[]): Promise<number> {
  if (!rows.length) return 0;
  const written: Array<{ id: string }> = await m.query(
    `INSERT INTO prediction (model_version_id, joint_id, modality, feature, probabilities, predicted_grade)
     SELECT $1, r.joint_id, r.modality::modality, r.feature, ARRAY(SELECT jsonb_array_elements_text(r.p)::float8), r.grade
     FROM jsonb_to_recordset($2::jsonb) AS r(joint_id uuid, modality text, feature text, p jsonb, grade smallint)
     WHERE EXISTS (SELECT 1 FROM model_version mv WHERE mv.id = $1 AND mv.sha256 IS NOT NULL)
     ON CONFLICT (model_version_id, joint_id, modality, feature) DO NOTHING
     RETURNING id`,
    [modelVersionId, JSON.stringify(rows)],
  );
  return written.length;
}
