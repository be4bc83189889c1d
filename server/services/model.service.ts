import type { Db } from '../db/transaction';
import { ErrorCode, IngestRejectionCode, Level, Modality, Role, Side, type PageRequest } from '../domain';
import { GradingFeature, InferenceJob, Joint, ModelVersion, Patient, Prediction } from '../entities';
import { AppError, badInput, conflict } from '../errors/app-error';
import { ManifestError, parseManifest, type ModelManifest } from '../inference/manifest';
import { checkModel, ModelCheckError } from '../inference/onnx-model';
import type { ObjectStore } from '../storage/object-store';
import type { AuditService } from './audit.service';
import { readCsv } from './csv';
import type { RejectedItem } from './import-result';
import { paginate, type Page } from './pagination';
import { readProbabilities, sameProbabilities } from './prediction-rows';
import { requireActor, requireRole, type RequestContext } from './request-context';

export interface RegisterExternalModel {
  name: string;
  version: string;
  description?: string | null;
}

const PREDICTION_COLUMNS = ['site', 'patient', 'level', 'side', 'modality', 'feature'];

/** What importPredictions did: every row stored (created, or equal to what was there) or none; rows repaired for rounding residue. */
export interface PredictionImportResult {
  /** True when every row is now stored; false when any was rejected (then nothing was written). */
  stored: boolean;
  rows: number;
  /** Rows for cells the model version had no prediction of. */
  created: number;
  /** Rows equal to the stored prediction (nothing written for them). */
  unchanged: number;
  /** Rows whose probabilities were clipped into [0, 1] or renormalised to sum 1 (residue within SUM_TOLERANCE). */
  clipped: number;
  rejected: RejectedItem[];
}

interface ParsedPrediction {
  line: number;
  jointId: string;
  modality: Modality;
  feature: string;
  probabilities: number[];
  predictedGrade: number;
}

const predictionKey = (p: { jointId: string; modality: string; feature: string }): string => `${p.jointId}:${p.modality}:${p.feature}`;

/** Index of the largest probability; the lowest grade wins a tie. */
export const argmax = (p: readonly number[]): number => p.reduce((best, v, i) => (v > p[best] ? i : best), 0);

/** Model versions (ONNX files checked against their manifest, or external models) and their predictions. */
export class ModelService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly objects: ObjectStore,
    private readonly executionProviders: readonly string[] = ['cpu'],
  ) {}

  /**
   * An ONNX model version: the manifest is checked for structure and against the grading scheme, the model is
   * opened in ONNX Runtime, checked against the manifest and run on one dummy batch; then the file is stored by
   * its sha256 and the version recorded (immutable). NOT_ONNX and structural problems are BAD_USER_INPUT, a
   * model that does not match its manifest MODEL_MANIFEST_MISMATCH.
   */
  async registerModelVersion(ctx: RequestContext, model: Buffer, manifestJson: unknown): Promise<ModelVersion> {
    const actor = requireRole(ctx, Role.ENGINEER);
    let manifest: ModelManifest;
    try {
      manifest = parseManifest(manifestJson);
    } catch (error) {
      if (error instanceof ManifestError) throw badInput(error.message, { problems: error.problems });
      throw error;
    }
    const scheme = new Map((await this.db.repo(ctx, GradingFeature).find()).map((f) => [f.code, f.grades.length]));
    const wrong = manifest.outputs.filter((o) => scheme.get(o.feature) !== o.grades);
    if (wrong.length) {
      throw new AppError(
        ErrorCode.MODEL_MANIFEST_MISMATCH,
        wrong
          .map((o) =>
            scheme.has(o.feature) ? `${o.feature} has ${scheme.get(o.feature)} grades, not ${o.grades}` : `${o.feature} is not a feature of the grading scheme`,
          )
          .join('; '),
      );
    }
    try {
      await checkModel(model, manifest, this.executionProviders);
    } catch (error) {
      if (!(error instanceof ModelCheckError)) throw error;
      throw error.kind === 'NOT_ONNX' ? badInput(error.message, { field: 'model' }) : new AppError(ErrorCode.MODEL_MANIFEST_MISMATCH, error.message);
    }
    const repo = this.db.repo(ctx, ModelVersion);
    if (await repo.existsBy({ name: manifest.name, version: manifest.version }))
      throw conflict(`Model ${manifest.name} ${manifest.version} exists; versions are immutable`);
    const stored = await this.objects.put(model);
    return this.db.transaction(ctx, async (tx) => {
      const saved = await this.db.repo(tx, ModelVersion).save(
        this.db.repo(tx, ModelVersion).create({
          name: manifest.name,
          version: manifest.version,
          description: null,
          sha256: stored.sha256,
          manifest: manifest as unknown as Record<string, unknown>,
          registeredByTokenId: actor.tokenId,
        }),
      );
      await this.audit.record(tx, {
        action: 'registerModelVersion',
        entityType: 'ModelVersion',
        entityId: saved.id,
        details: { name: saved.name, version: saved.version, sha256: stored.sha256 },
      });
      return saved;
    });
  }

  listModelVersions(ctx: RequestContext, page: PageRequest): Promise<Page<ModelVersion>> {
    requireActor(ctx);
    return paginate(this.db.repo(ctx, ModelVersion).createQueryBuilder('mv'), 'mv', page);
  }

  async getModelVersion(ctx: RequestContext, id: string): Promise<ModelVersion> {
    requireActor(ctx);
    return this.db.getEntityOrThrow(ctx, ModelVersion, id);
  }

  /** A model run elsewhere: a name and version, no file; its predictions arrive by importPredictions. */
  async registerExternalModel(ctx: RequestContext, input: RegisterExternalModel): Promise<ModelVersion> {
    const actor = requireRole(ctx, Role.ENGINEER);
    return this.db.transaction(ctx, async (tx) => {
      const repo = this.db.repo(tx, ModelVersion);
      if (await repo.existsBy({ name: input.name, version: input.version }))
        throw conflict(`Model ${input.name} ${input.version} exists; versions are immutable`);
      const saved = await repo.save(
        repo.create({
          name: input.name,
          version: input.version,
          description: input.description ?? null,
          sha256: null,
          manifest: null,
          registeredByTokenId: actor.tokenId,
        }),
      );
      await this.audit.record(tx, {
        action: 'registerExternalModel',
        entityType: 'ModelVersion',
        entityId: saved.id,
        details: { name: input.name, version: input.version },
      });
      return saved;
    });
  }

  /**
   * Predictions CSV, `site,patient,level,side,modality,feature,p0,p1,…` (patient = the study pseudonym; one
   * probability column per grade of the feature), for an external model version only: a version with an ONNX
   * file gets its predictions from its inference jobs alone (MODEL_VERSION_NOT_EXTERNAL).
   *
   * Predictions are immutable once written. A row equal to the stored one is unchanged (re-importing a file is a
   * no-op); a row for a cell not yet predicted is added (a file may be sent again with more rows: append-only);
   * a file that would change any stored prediction is refused whole (PREDICTIONS_IMMUTABLE) and writes nothing.
   * Rounding residue within SUM_TOLERANCE is repaired and counted (`clipped`); other bad rows are rejected by line
   * and then nothing is written. A row's content is checked before its joint is looked up, and an unknown joint
   * gets one fixed reason, so the answer is the same for a pseudonym of another site and an invented one.
   */
  async importPredictions(ctx: RequestContext, modelVersionId: string, csv: string): Promise<PredictionImportResult> {
    requireRole(ctx, Role.ENGINEER);
    const model = await this.getModelVersion(ctx, modelVersionId);
    if (model.sha256 !== null || (await this.db.repo(ctx, InferenceJob).existsBy({ modelVersionId: model.id }))) {
      throw new AppError(
        ErrorCode.MODEL_VERSION_NOT_EXTERNAL,
        'This model version has an ONNX file: its predictions come from its inference jobs only. Import predictions into a version made by registerExternalModel',
        { modelVersionId: model.id },
      );
    }
    const { rows, rejected } = readCsv(csv, PREDICTION_COLUMNS);
    const features = new Map((await this.db.repo(ctx, GradingFeature).find()).map((f) => [f.code, f]));
    const jointOf = await this.jointIndex(ctx);
    const parsed: ParsedPrediction[] = [];
    const seen = new Set<string>();
    let clipped = 0;
    for (const { line, values } of rows) {
      const reject = (code: IngestRejectionCode, reason: string) => rejected.push({ source: `line ${line}`, code, reason } as RejectedItem);
      const level = (values.level ?? '').toUpperCase().replace('/', '_');
      const side = (values.side ?? '').toUpperCase();
      const modality = (values.modality ?? '').toUpperCase();
      const feature = features.get((values.feature ?? '').toUpperCase());
      if (!(level in Level) || !(side in Side) || !(modality in Modality) || !feature) {
        reject(
          IngestRejectionCode.INVALID_VALUE,
          'level must be L1_L2..L5_S1, side LEFT or RIGHT, modality XR, CT or MR and feature a code of the grading scheme',
        );
        continue;
      }
      const extra = Object.keys(values).filter((k) => /^p\d+$/.test(k) && Number(k.slice(1)) >= feature.grades.length && values[k].trim() !== '');
      if (extra.length) {
        reject(IngestRejectionCode.INVALID_VALUE, `${extra.join(', ')} lie beyond the ${feature.grades.length} grades of ${feature.code}`);
        continue;
      }
      const read = readProbabilities(
        feature.grades.map((g) => values[`p${g.grade}`] ?? ''),
        feature.code,
      );
      if (!read.ok) {
        reject(IngestRejectionCode.INVALID_VALUE, read.reason);
        continue;
      }
      if (read.adjusted) clipped++;
      // Duplicates by the row's own key, before any lookup: whether the joint exists must not change the answer.
      const cell = JSON.stringify([values.site, values.patient, level, side, modality, feature.code]);
      if (seen.has(cell)) {
        reject(IngestRejectionCode.DUPLICATE_ROW, 'The same joint, modality and feature appear earlier in this file');
        continue;
      }
      seen.add(cell);
      const jointId = jointOf.get(JSON.stringify([values.site, values.patient, level, side]));
      if (!jointId) {
        // One fixed reason that echoes nothing: a pseudonym of another site and an invented one read alike.
        reject(IngestRejectionCode.UNKNOWN_PATIENT, 'No joint of the study has this site, patient, level and side');
        continue;
      }
      parsed.push({
        line,
        jointId,
        modality: modality as Modality,
        feature: feature.code,
        probabilities: read.probabilities,
        predictedGrade: argmax(read.probabilities),
      });
    }
    if (rejected.length) return { stored: false, rows: rows.length, created: 0, unchanged: 0, clipped, rejected };
    return this.db.transaction(ctx, async (tx) => {
      const m = this.db.manager(tx);
      // One import into a version at a time: the check of the stored predictions below stays true until commit.
      await m.query('SELECT 1 FROM model_version WHERE id = $1 FOR UPDATE', [model.id]);
      const stored = await this.storedPredictions(tx, model.id, parsed);
      const changed = parsed.filter((p) => {
        const before = stored.get(predictionKey(p));
        return before !== undefined && !sameProbabilities(before, p.probabilities);
      });
      if (changed.length) {
        throw new AppError(
          ErrorCode.PREDICTIONS_IMMUTABLE,
          `${changed.length} row(s) would change predictions this model version already has; predictions are immutable, nothing was written`,
          { lines: changed.slice(0, 100).map((p) => p.line), changed: changed.length },
        );
      }
      const fresh = parsed.filter((p) => !stored.has(predictionKey(p)));
      for (let i = 0; i < fresh.length; i += 1000) {
        await this.db
          .manager(tx)
          .createQueryBuilder()
          .insert()
          .into(Prediction)
          .values(fresh.slice(i, i + 1000).map(({ line: _line, ...p }) => ({ ...p, modelVersionId: model.id })))
          .execute();
      }
      if (fresh.length) {
        await this.audit.record(tx, {
          action: 'importPredictions',
          entityType: 'Prediction',
          entityId: model.id,
          details: { rows: parsed.length, created: fresh.length, unchanged: parsed.length - fresh.length, clipped },
        });
      }
      return { stored: true, rows: rows.length, created: fresh.length, unchanged: parsed.length - fresh.length, clipped, rejected: [] };
    });
  }

  /** Every joint of the study by its public key (site code, pseudonym, level, side). */
  private async jointIndex(ctx: RequestContext): Promise<Map<string, string>> {
    const joints = await this.db
      .repo(ctx, Joint)
      .createQueryBuilder('joint')
      .innerJoin(Patient, 'patient', 'patient.id = joint.patient_id')
      .innerJoin('site', 'site', 'site.id = patient.site_id')
      .select(['joint.id AS "id"', 'joint.level AS "level"', 'joint.side AS "side"', 'patient.pseudonym AS "pseudonym"', 'site.code AS "site"'])
      .getRawMany<{ id: string; level: string; side: string; pseudonym: string; site: string }>();
    return new Map(joints.map((j) => [JSON.stringify([j.site, j.pseudonym, j.level, j.side]), j.id]));
  }

  /** The model version's stored probabilities for the cells of `rows`, by predictionKey. */
  private async storedPredictions(ctx: RequestContext, modelVersionId: string, rows: readonly ParsedPrediction[]): Promise<Map<string, number[]>> {
    const stored = new Map<string, number[]>();
    const jointIds = [...new Set(rows.map((r) => r.jointId))];
    for (let i = 0; i < jointIds.length; i += 5000) {
      const found: Array<{ jointId: string; modality: Modality; feature: string; probabilities: number[] }> = await this.db
        .manager(ctx)
        .query(`SELECT joint_id AS "jointId", modality, feature, probabilities FROM prediction WHERE model_version_id = $1 AND joint_id = ANY($2::uuid[])`, [
          modelVersionId,
          jointIds.slice(i, i + 5000),
        ]);
      for (const f of found) stored.set(predictionKey(f), f.probabilities.map(Number));
    }
    return stored;
  }
}
