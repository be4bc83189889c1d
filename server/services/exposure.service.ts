import type { Db } from '../db/transaction';
import { ErrorCode, Role } from '../domain';
import { CellExposure } from '../entities';
import { AppError } from '../errors/app-error';
import type { RequestContext } from './request-context';
import type { GradeCell } from './reading.service';

/** A grade a read returned: its cell, and whose grade it is where it is one reader's (a reading). */
export interface ShownGrade extends GradeCell {
  readerId?: string | null;
}

/**
 * Which reader has seen which cell's grades. A reader who saw other grades of a joint x modality x feature (other
 * readers' readings, the adjudication queue, adjudications, reference grades) is no longer independent of them and
 * may not be one of its two readers. Every read that returns grades goes through `recordGradeRead`, which writes
 * the read's audit event and the exposures in one transaction, before the grades leave the service.
 */
export class ExposureService {
  constructor(private readonly db: Db) {}

  /**
   * Writes a read's audit event (`writeAudit`, which returns its id) and, for a reader's token, the cells whose
   * grades by others the read returned: one transaction, and only when there are such cells.
   */
  async recordGradeRead(ctx: RequestContext, shown: readonly ShownGrade[], writeAudit: (tx: RequestContext) => Promise<string>): Promise<void> {
    const readerId = ctx.actor?.role === Role.READER ? ctx.actor.readerId : null;
    const cells = readerId ? distinctCells(shown.filter((g) => g.readerId !== readerId)) : [];
    if (!cells.length) {
      await writeAudit(ctx);
      return;
    }
    await this.db.transaction(ctx, async (tx) => {
      await this.recordExposures(tx, readerId!, cells, await writeAudit(tx));
    });
  }

  /** Records that the acting reader saw `shown` under an audit event already written in `ctx`'s transaction. */
  async recordForEvent(ctx: RequestContext, shown: readonly ShownGrade[], auditEventId: string): Promise<void> {
    const readerId = ctx.actor?.role === Role.READER ? ctx.actor.readerId : null;
    if (!readerId) return;
    const cells = distinctCells(shown.filter((g) => g.readerId !== readerId));
    if (cells.length) await this.recordExposures(ctx, readerId, cells, auditEventId);
  }

  /** READER_NOT_INDEPENDENT when `readerId` has seen other grades of the cell. */
  async assertIndependent(ctx: RequestContext, readerId: string, cell: GradeCell): Promise<void> {
    const seen = await this.db.repo(ctx, CellExposure).findOneBy({ readerId, jointId: cell.jointId, modality: cell.modality, feature: cell.feature });
    if (seen) {
      throw new AppError(
        ErrorCode.READER_NOT_INDEPENDENT,
        'You have seen grades of this joint-feature (another reader’s, an adjudication or the reference grade), so you cannot be one of its independent readers',
        { firstSeenAt: seen.createdAt.toISOString() },
      );
    }
  }

  /** One statement for any number of cells (unnest: no parameter-count limit); the first sighting is kept. */
  private async recordExposures(ctx: RequestContext, readerId: string, cells: GradeCell[], auditEventId: string): Promise<void> {
    await this.db.manager(ctx).query(
      `INSERT INTO cell_exposure (reader_id, joint_id, modality, feature, audit_event_id)
       SELECT $1, c.joint_id, c.modality::modality, c.feature, $2 FROM unnest($3::uuid[], $4::text[], $5::text[]) AS c(joint_id, modality, feature)
       ON CONFLICT (reader_id, joint_id, modality, feature) DO NOTHING`,
      [readerId, auditEventId, cells.map((c) => c.jointId), cells.map((c) => c.modality), cells.map((c) => c.feature)],
    );
  }
}

function distinctCells(grades: readonly ShownGrade[]): GradeCell[] {
  const cells = new Map<string, GradeCell>();
  for (const g of grades) cells.set(`${g.jointId}:${g.modality}:${g.feature}`, { jointId: g.jointId, modality: g.modality, feature: g.feature });
  return [...cells.values()];
}
