import type { Db } from '../../db/transaction';
import { ErrorCode, IngestRejectionCode, Modality, Role } from '../../domain';
import { Reader } from '../../entities';
import { AppError } from '../../errors/app-error';
import type { AuditService } from '../audit.service';
import { readCsv, wholeNumber } from '../csv';
import { notStored, notStoredWhenRejected, RowsRejected, type ManifestResult } from '../import-result';
import type { NodeKeyService } from '../node-key.service';
import type { ReadingService, RecordReading } from '../reading.service';
import type { RequestContext } from '../request-context';
import { lookupJoints } from './joint-lookup';

const COLUMNS = ['reader', 'patient_id', 'level', 'side', 'modality', 'feature', 'grade'] as const;

/**
 * The readings manifest: grades read elsewhere, recorded as each named reader's reading through the same rules
 * as the recordReading mutation (one grade per reader and cell, two readers per cell, the grading scale,
 * agreement becoming the reference grade).
 */
export class ReadingsManifest {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly keys: NodeKeyService,
    private readonly readings: ReadingService,
  ) {}

  async import(ctx: RequestContext, siteId: string, csv: string): Promise<ManifestResult> {
    const { rows, rejected } = readCsv(csv, COLUMNS);
    const key = await this.keys.identifierKey();
    const lookups = await lookupJoints(this.db, ctx, siteId, key, rows);
    const readers = new Map((await this.db.repo(ctx, Reader).find()).map((r) => [r.code, r]));
    const parsed: Array<{ line: number; reader: Reader; input: RecordReading }> = [];
    const seen = new Set<string>();
    for (const { line, values } of rows) {
      const reject = (code: IngestRejectionCode, reason: string) => rejected.push({ source: `line ${line}`, code, reason });
      const reader = readers.get(values.reader ?? '');
      if (!reader || (reader.siteId !== null && reader.siteId !== siteId)) {
        reject(IngestRejectionCode.UNKNOWN_READER, `No reader ${JSON.stringify(values.reader ?? '')} reads for this site`);
        continue;
      }
      const joint = lookups.get(line);
      if (!joint || 'code' in joint) {
        if (joint) reject(joint.code, joint.reason);
        continue;
      }
      const modality = (values.modality ?? '').toUpperCase();
      if (!(modality in Modality)) {
        reject(IngestRejectionCode.INVALID_VALUE, `modality must be XR, CT or MR, got ${JSON.stringify(values.modality)}`);
        continue;
      }
      const gradeText = (values.grade ?? '').toUpperCase();
      const notAssessable = gradeText === 'NA';
      if (!notAssessable && wholeNumber(gradeText) === null) {
        reject(IngestRejectionCode.INVALID_VALUE, `grade must be a whole number or NA, got ${JSON.stringify(values.grade)}`);
        continue;
      }
      const input: RecordReading = {
        jointId: joint.jointId,
        modality: modality as Modality,
        feature: (values.feature ?? '').toUpperCase(),
        ...(notAssessable ? { notAssessable: true } : { grade: wholeNumber(gradeText) }),
      };
      const identity = `${reader.id}:${input.jointId}:${input.modality}:${input.feature}`;
      if (seen.has(identity)) {
        reject(IngestRejectionCode.DUPLICATE_ROW, 'The same reader grades the same joint-feature earlier in this manifest');
        continue;
      }
      seen.add(identity);
      parsed.push({ line, reader, input });
    }
    if (rejected.length) return notStored(rows.length, rejected);
    return this.db
      .transaction(ctx, async (tx) => {
        for (const row of parsed) {
          const asReader: RequestContext = {
            requestId: tx.requestId,
            clientRequestId: tx.clientRequestId,
            manager: tx.manager,
            actor: {
              tokenId: tx.actor?.tokenId ?? null,
              name: `manifest as ${row.reader.code}`,
              role: Role.READER,
              siteId,
              readerId: row.reader.id,
              readerRole: row.reader.role,
            },
          };
          try {
            await this.readings.recordReading(asReader, row.input);
          } catch (error) {
            if (!(error instanceof AppError)) throw error;
            const code = error.code === ErrorCode.BAD_USER_INPUT ? IngestRejectionCode.INVALID_VALUE : IngestRejectionCode.RULE_VIOLATION;
            throw new RowsRejected([{ source: `line ${row.line}`, code, reason: error.message }]);
          }
        }
        await this.audit.record(tx, { action: 'importReadingsManifest', entityType: 'Reading', siteId, details: { rows: parsed.length } });
        return { stored: true, rows: rows.length, created: parsed.length, updated: 0, rejected: [] };
      })
      .catch(notStoredWhenRejected(rows.length));
  }
}
