import type { Db } from '../db/transaction';
import { GradingFeature } from '../entities';
import { badInput } from '../errors/app-error';
import { requireActor, type RequestContext } from './request-context';

/** A grade for one cell: an ordinal grade, or "not assessable" (never both, never neither). */
export interface GradeValue {
  grade?: number | null;
  notAssessable?: boolean | null;
}

/** The grading scheme lives in `grading_feature`; a grade is valid when it is one of the feature's grades. */
export class GradingService {
  /** The scheme changes only by migration, so one read per process is enough; every grade check uses it. */
  private features: Promise<Map<string, GradingFeature>> | null = null;

  constructor(private readonly db: Db) {}

  private async feature(ctx: RequestContext, code: string): Promise<GradingFeature | undefined> {
    this.features ??= this.db
      .repo(ctx, GradingFeature)
      .find()
      .then((rows) => new Map(rows.map((f) => [f.code, f])))
      .catch((error: unknown) => {
        this.features = null;
        throw error;
      });
    return (await this.features).get(code);
  }

  async listFeatures(ctx: RequestContext): Promise<GradingFeature[]> {
    requireActor(ctx);
    return this.db.repo(ctx, GradingFeature).find({ order: { position: 'ASC' } });
  }

  /** Checks `value` against `feature`'s scale and returns the columns to store. */
  async validateGrade(ctx: RequestContext, feature: string, value: GradeValue): Promise<{ grade: number | null; notAssessable: boolean }> {
    const definition = await this.feature(ctx, feature);
    if (!definition) throw badInput(`Unknown feature ${feature}`, { field: 'feature' });
    const hasGrade = value.grade !== null && value.grade !== undefined;
    const notAssessable = value.notAssessable === true;
    if (hasGrade === notAssessable) {
      throw badInput('Give either a grade or notAssessable: true, not both and not neither', { field: 'grade' });
    }
    if (notAssessable) return { grade: null, notAssessable: true };
    const allowed = definition.grades.map((g) => g.grade);
    if (!allowed.includes(value.grade as number)) {
      throw badInput(`Grade ${value.grade} is outside the ${feature} scale (${allowed.join(', ')})`, { field: 'grade', allowed });
    }
    return { grade: value.grade as number, notAssessable: false };
  }
}
