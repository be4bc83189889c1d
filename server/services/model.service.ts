import type { Db } from '../db/transaction';
import { ErrorCode, IngestRejectionCode, Modality, Role, type PageRequest } from '../domain';
import { GradingFeature, Joint, ModelVersion, Patient, Prediction } from '../entities';
import { AppError, badInput, conflict, notFound } from '../errors/app-error';
import { ManifestError, parseManifest, type ModelManifest } from '../inference/manifest';
import { checkModel, ModelCheckError } from '../inference/onnx-model';
import type { ObjectStore } from '../storage/object-store';
import type { AuditService } from './audit.service';
import { readCsv } from './csv';
import type { ManifestResult, RejectedItem } from './import-result';
import { paginate, type Page } from './pagination';
import { requireActor, requireRole, type RequestContext } from './request-context';

export interface RegisterExternalModel {
  name: string;
  version: string;
  description?: string | null;
}

const PREDICTION_COLUMNS = ['site', 'patient', 'level', 'side', 'modality', 'feature'];
/** Probabilities of one row must sum to 1 within this (they are often printed with 6 decimals). */
const SUM_TOLERANCE = 1e-4;

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
    const version = await this.db.repo(ctx, ModelVersion).findOneBy({ id });
    if (!version) throw notFound('ModelVersion', id);
    return version;
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
   * probability column per grade of the feature). All rows or none; a row already imported is replaced.
   */
  async importPredictions(ctx: RequestContext, modelVersionId: string, csv: string): Promise<ManifestResult> {
    requireRole(ctx, Role.ENGINEER);
    const model = await this.getModelVersion(ctx, modelVersionId);
    const { rows, rejected } = readCsv(csv, PREDICTION_COLUMNS);
    const features = new Map((await this.db.repo(ctx, GradingFeature).find()).map((f) => [f.code, f]));
    const joints = await this.db
      .repo(ctx, Joint)
      .createQueryBuilder('joint')
      .innerJoin(Patient, 'patient', 'patient.id = joint.patient_id')
      .innerJoin('site', 'site', 'site.id = patient.site_id')
      .select(['joint.id AS "id"', 'joint.level AS "level"', 'joint.side AS "side"', 'patient.pseudonym AS "pseudonym"', 'site.code AS "site"'])
      .getRawMany<{ id: string; level: string; side: string; pseudonym: string; site: string }>();
    const jointOf = new Map(joints.map((j) => [`${j.site}:${j.pseudonym}:${j.level}:${j.side}`, j.id]));
    const parsed: Array<Pick<Prediction, 'modelVersionId' | 'jointId' | 'modality' | 'feature' | 'probabilities' | 'predictedGrade'>> = [];
    const seen = new Set<string>();
    for (const { line, values } of rows) {
      const reject = (code: IngestRejectionCode, reason: string) => rejected.push({ source: `line ${line}`, code, reason } as RejectedItem);
      const level = (values.level ?? '').toUpperCase().replace('/', '_');
      const side = (values.side ?? '').toUpperCase();
      const jointId = jointOf.get(`${values.site}:${values.patient}:${level}:${side}`);
      if (!jointId) {
        reject(IngestRejectionCode.UNKNOWN_PATIENT, `No joint ${level} ${side} of patient ${values.patient} at site ${values.site}`);
        continue;
      }
      const modality = (values.modality ?? '').toUpperCase();
      const feature = features.get((values.feature ?? '').toUpperCase());
      if (!(modality in Modality) || !feature) {
        reject(IngestRejectionCode.INVALID_VALUE, 'modality must be XR, CT or MR and feature a code of the grading scheme');
        continue;
      }
      const cells = feature.grades.map((g) => (values[`p${g.grade}`] ?? '').trim());
      const extra = Object.keys(values).filter((k) => /^p\d+$/.test(k) && Number(k.slice(1)) >= feature.grades.length && values[k].trim() !== '');
      const probabilities = cells.map(Number);
      if (
        cells.some((c) => c === '') ||
        extra.length ||
        probabilities.some((p) => !(p >= 0 && p <= 1)) ||
        Math.abs(probabilities.reduce((a, b) => a + b, 0) - 1) > SUM_TOLERANCE
      ) {
        reject(IngestRejectionCode.INVALID_VALUE, `${feature.code} needs p0..p${feature.grades.length - 1} in [0, 1] summing to 1`);
        continue;
      }
      const key = `${jointId}:${modality}:${feature.code}`;
      if (seen.has(key)) {
        reject(IngestRejectionCode.DUPLICATE_ROW, 'The same joint, modality and feature appear earlier in this file');
        continue;
      }
      seen.add(key);
      parsed.push({
        modelVersionId: model.id,
        jointId,
        modality: modality as Modality,
        feature: feature.code,
        probabilities,
        predictedGrade: argmax(probabilities),
      });
    }
    if (rejected.length) return { stored: false, rows: rows.length, created: 0, updated: 0, rejected };
    return this.db.transaction(ctx, async (tx) => {
      let created = 0;
      for (let i = 0; i < parsed.length; i += 1000) {
        const result = await this.db
          .manager(tx)
          .createQueryBuilder()
          .insert()
          .into(Prediction)
          .values(parsed.slice(i, i + 1000))
          .orUpdate(['probabilities', 'predicted_grade'], ['model_version_id', 'joint_id', 'modality', 'feature'])
          .returning('(xmax = 0) AS inserted')
          .execute();
        created += (result.raw as Array<{ inserted: boolean }>).filter((r) => r.inserted).length;
      }
      await this.audit.record(tx, { action: 'importPredictions', entityType: 'Prediction', entityId: model.id, details: { rows: parsed.length, created } });
      return { stored: true, rows: rows.length, created, updated: parsed.length - created, rejected: [] };
    });
  }
}
