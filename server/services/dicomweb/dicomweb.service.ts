import type { ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import type { Db } from '../../db/transaction';
import { uintOf } from '../../dicom/dataset';
import { toDicomJson, type DicomJsonDataset } from '../../dicom/dicom-json';
import { TAGS } from '../../dicom/dictionary';
import { readPart10, type Part10File } from '../../dicom/reader';
import { EXPLICIT_VR_LITTLE_ENDIAN } from '../../dicom/transfer-syntax';
import { ErrorCode } from '../../domain';
import { Instance, Patient, Series, Study } from '../../entities';
import { AppError, notFound } from '../../errors/app-error';
import { encodedFrame, PixelDecodeError } from '../../inference/pixels';
import { frameCount, renderFrame, type RenderedMediaType, type RenderOptions } from '../../inference/render';
import type { ObjectStore } from '../../storage/object-store';
import type { AuditService } from '../audit.service';
import { PATIENT_LEVEL_ROLES } from '../patient.service';
import { requireRole, type RequestContext } from '../request-context';
import { applyPatientFilter } from '../scope';
import { qidoResult, unanswerableFields, type QidoRow } from './qido-attributes';
import { badQuery, parseQidoQuery, wildcardMatches, type QidoLevel, type QidoQuery } from './qido-query';

/** DICOM UID syntax (PS3.5 9.1): what a path segment must be to name anything. */
const DICOM_UID = /^(?=.{1,64}$)[0-9]+(\.[0-9]+)*$/;

/** The UIDs of a WADO-RS path: a study, a series in it, an instance in that. */
export interface ResourcePath {
  study: string;
  series?: string;
  instance?: string;
}

/** The media type each stored transfer syntax's frames travel as (PS3.18 Table 8.7.3-5); native frames are octets. */
const FRAME_MEDIA_TYPE: Record<string, string> = {
  '1.2.840.10008.1.2.5': 'image/x-dicom-rle',
  '1.2.840.10008.1.2.4.50': 'image/jpeg',
  '1.2.840.10008.1.2.4.51': 'image/jpeg',
  '1.2.840.10008.1.2.4.57': 'image/jpeg',
  '1.2.840.10008.1.2.4.70': 'image/jpeg',
  '1.2.840.10008.1.2.4.80': 'image/jls',
  '1.2.840.10008.1.2.4.81': 'image/jls',
  '1.2.840.10008.1.2.4.90': 'image/jp2',
  '1.2.840.10008.1.2.4.91': 'image/jp2',
  '1.2.840.10008.1.2.4.201': 'image/jphc',
  '1.2.840.10008.1.2.4.203': 'image/jphc',
};

/** Frames of one instance as stored: their media type and transfer syntax, one buffer per frame asked. */
export interface RetrievedFrames {
  mediaType: string;
  transferSyntaxUid: string;
  frames: Buffer[];
}

/** Objects parsed at once when a metadata request covers many instances (each is read whole, then dropped). */
const METADATA_CONCURRENCY = 8;

/**
 * DICOMweb reads over the stored, de-identified objects: QIDO-RS search, WADO-RS metadata, rendered frames and
 * frames. Every query joins up to the patient and goes through the caller's site scope (scope.ts), for the
 * roles that may see patient-level data, exactly as the WADO-RS instance retrieve of ImagingService does; every
 * answer is audited, and so is every refusal. Audit rows name the query's keys but not their values (a caller
 * may type an original, identifying Patient ID into a search).
 */
export class DicomwebService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly objects: ObjectStore,
  ) {}

  /** QIDO-RS: the matches at `level` under `path` (a study and maybe a series), as DICOM JSON, with PS3.18 warnings. */
  async search(
    ctx: RequestContext,
    level: QidoLevel,
    path: { study?: string; series?: string },
    params: Record<string, unknown>,
    baseUrl: string,
  ): Promise<{ results: DicomJsonDataset[]; warnings: string[] }> {
    requireRole(ctx, ...PATIENT_LEVEL_ROLES);
    const query = parseQidoQuery(level, params);
    for (const [key, uid] of [
      ['StudyInstanceUID', path.study],
      ['SeriesInstanceUID', path.series],
    ] as const) {
      if (uid !== undefined && !DICOM_UID.test(uid)) throw badQuery(key, `The path's ${key} is not a UID`);
    }
    if (path.study) query.studyInstanceUids = query.studyInstanceUids ? query.studyInstanceUids.filter((u) => u === path.study) : [path.study];
    if (path.series) query.seriesInstanceUids = query.seriesInstanceUids ? query.seriesInstanceUids.filter((u) => u === path.series) : [path.series];
    const rows = await this.matches(ctx, query);
    await this.audit.recordAccess(ctx, level === 'study' ? 'Study' : level === 'series' ? 'Series' : 'Instance', rows.length, {
      dicomweb: 'search',
      keys: [...query.matchedKeywords, ...(path.study ? ['path:StudyInstanceUID'] : []), ...(path.series ? ['path:SeriesInstanceUID'] : [])],
    });
    const context = { studyInPath: Boolean(path.study), seriesInPath: Boolean(path.series) };
    const warnings = [...query.warnings, ...unanswerableFields(query).map((k) => `${k} is not a return key of this level; it is not returned`)];
    return { results: rows.map((r) => qidoResult(r, query, context, baseUrl)), warnings };
  }

  /** WADO-RS metadata of a study, a series or an instance: one DICOM JSON data set per instance, pixel data by Bulk Data URI. */
  async metadata(ctx: RequestContext, path: ResourcePath, baseUrl: string): Promise<DicomJsonDataset[]> {
    try {
      const instances = await this.instancesAt(ctx, path);
      const out: DicomJsonDataset[] = new Array(instances.length);
      for (let i = 0; i < instances.length; i += METADATA_CONCURRENCY) {
        await Promise.all(
          instances.slice(i, i + METADATA_CONCURRENCY).map(async (row, k) => {
            const file = readPart10(await this.objects.read(row.sha256));
            const url = `${baseUrl}/studies/${row.study_uid}/series/${row.series_uid}/instances/${row.sop_uid}`;
            const frames = Array.from({ length: frameCount(file) }, (_, f) => f + 1).join(',');
            out[i + k] = toDicomJson(file, `${url}/frames/${frames}`);
          }),
        );
      }
      await this.audit.recordAccess(ctx, 'Instance', instances.length, { dicomweb: 'metadata', level: levelOf(path) });
      return out;
    } catch (error) {
      throw await this.audit.refusedRead(ctx, 'Instance', null, error, { dicomweb: 'metadata', level: levelOf(path) });
    }
  }

  /**
   * WADO-RS rendered (PS3.18 8.3.5, 10.4.1.1.3): one frame (from 1; the first for an instance) as PNG or JPEG,
   * windowed by `options.window`, else the object's window or VOI LUT. A frame that does not exist is NOT_FOUND;
   * pixel data Facet cannot decode is NOT_ACCEPTABLE (no image representation can be made).
   */
  async rendered(
    ctx: RequestContext,
    path: Required<ResourcePath>,
    frame: number | null,
    mediaType: RenderedMediaType,
    options: RenderOptions,
  ): Promise<Buffer> {
    try {
      const { file, instanceId } = await this.readInstance(ctx, path);
      const frames = frameCount(file);
      if (frame !== null && frame > frames) throw notFound('Frame', `${frame} of ${frames}`);
      let image: Buffer;
      try {
        image = await renderFrame(file, (frame ?? 1) - 1, mediaType, options);
      } catch (error) {
        if (!(error instanceof PixelDecodeError)) throw error;
        throw new AppError(ErrorCode.NOT_ACCEPTABLE, `This instance cannot be rendered: ${error.message}`);
      }
      await this.audit.recordSingleRead(ctx, 'Instance', instanceId, 'OK', { dicomweb: 'rendered', frame: frame ?? 1 });
      return image;
    } catch (error) {
      throw await this.audit.refusedRead(ctx, 'Instance', null, error, { dicomweb: 'rendered' });
    }
  }

  /**
   * WADO-RS frames (PS3.18 10.4.1.1.2): the pixel data of each frame asked (from 1), as stored. Native frames are
   * little-endian octets (a big-endian object's 16-bit samples are swapped); compressed frames are their
   * codestreams, never transcoded, each part labelled with its transfer syntax. `partType` (the client's Accept)
   * names the media type the parts travel as, or null when the client accepts nothing stored: NOT_ACCEPTABLE.
   */
  async frames(
    ctx: RequestContext,
    path: Required<ResourcePath>,
    numbers: number[],
    partType: (mediaType: string, transferSyntaxUid: string) => string | null,
  ): Promise<RetrievedFrames> {
    try {
      const { file, instanceId } = await this.readInstance(ctx, path);
      const count = frameCount(file);
      const missing = numbers.find((n) => n > count);
      if (missing !== undefined) throw notFound('Frame', `${missing} of ${count}`);
      const result = framesOf(file, numbers, count);
      const mediaType = partType(result.mediaType, result.transferSyntaxUid);
      if (!mediaType) {
        throw new AppError(
          ErrorCode.NOT_ACCEPTABLE,
          `These frames are stored as ${result.mediaType} (transfer syntax ${result.transferSyntaxUid}) and are not transcoded; accept it, or transfer-syntax=*`,
        );
      }
      await this.audit.recordSingleRead(ctx, 'Instance', instanceId, 'OK', { dicomweb: 'frames', frames: numbers.length });
      return { ...result, mediaType };
    } catch (error) {
      throw await this.audit.refusedRead(ctx, 'Instance', null, error, { dicomweb: 'frames' });
    }
  }

  private async readInstance(ctx: RequestContext, path: Required<ResourcePath>): Promise<{ file: Part10File; instanceId: string }> {
    const [row] = await this.instancesAt(ctx, path);
    return { file: readPart10(await this.objects.read(row.sha256)), instanceId: row.id };
  }

  /** The instances under a path in the caller's scope, in series and instance order; NOT_FOUND when there are none. */
  private async instancesAt(ctx: RequestContext, path: ResourcePath) {
    requireRole(ctx, ...PATIENT_LEVEL_ROLES);
    // A UID of the wrong syntax names nothing (and PostgreSQL would refuse a NUL in it).
    if (![path.study, path.series, path.instance].every((uid) => uid === undefined || DICOM_UID.test(uid)))
      throw notFound(levelName(path), 'with a malformed UID');
    const qb = this.instanceQuery(ctx)
      .select([
        'instance.id AS id',
        'instance.sha256 AS sha256',
        'study.study_instance_uid AS study_uid',
        'series.series_instance_uid AS series_uid',
        'instance.sop_instance_uid AS sop_uid',
      ])
      .andWhere('study.study_instance_uid = :study', { study: path.study })
      .orderBy('series.series_number', 'ASC', 'NULLS LAST')
      .addOrderBy('series.series_instance_uid')
      .addOrderBy('instance.instance_number', 'ASC', 'NULLS LAST')
      .addOrderBy('instance.sop_instance_uid');
    if (path.series) qb.andWhere('series.series_instance_uid = :series', { series: path.series });
    if (path.instance) qb.andWhere('instance.sop_instance_uid = :instance', { instance: path.instance });
    const rows = await qb.getRawMany<{ id: string; sha256: string; study_uid: string; series_uid: string; sop_uid: string }>();
    if (rows.length === 0) throw notFound(levelName(path), path.instance ?? path.series ?? path.study);
    return rows;
  }

  private instanceQuery(ctx: RequestContext) {
    const qb = this.db
      .repo(ctx, Instance)
      .createQueryBuilder('instance')
      .innerJoin(Series, 'series', 'series.id = instance.series_id')
      .innerJoin(Study, 'study', 'study.id = series.study_id')
      .innerJoin(Patient, 'patient', 'patient.id = study.patient_id');
    applyPatientFilter(qb, ctx, 'patient', {});
    return qb;
  }

  /** The search's rows: one query at the level asked, narrowed to the caller's sites, then the matching keys, then the page. */
  private async matches(ctx: RequestContext, query: QidoQuery): Promise<QidoRow[]> {
    const studyColumns = [
      'study.study_instance_uid AS study_uid',
      `to_char(study.study_date, 'YYYY-MM-DD') AS study_date`,
      'study.description AS study_description',
      'patient.pseudonym AS pseudonym',
      'patient.sex AS sex',
      '(SELECT array_agg(DISTINCT sm.modality::text) FROM series sm WHERE sm.study_id = study.id) AS modalities',
      '(SELECT count(*) FROM series sc WHERE sc.study_id = study.id) AS study_series',
      '(SELECT count(*) FROM instance ic JOIN series si ON si.id = ic.series_id WHERE si.study_id = study.id) AS study_instances',
    ];
    const seriesColumns = [
      'series.series_instance_uid AS series_uid',
      'series.modality AS modality',
      'series.series_number AS series_number',
      'series.description AS series_description',
      '(SELECT count(*) FROM instance ix WHERE ix.series_id = series.id) AS series_instances',
    ];
    const instanceColumns = [
      'instance.sop_instance_uid AS sop_uid',
      'instance.sop_class_uid AS sop_class_uid',
      'instance.instance_number AS instance_number',
      'instance.rows AS rows',
      'instance.columns AS columns',
      'instance.bits_allocated AS bits_allocated',
      'instance.number_of_frames AS number_of_frames',
      'instance.samples_per_pixel AS samples_per_pixel',
      'instance.photometric_interpretation AS photometric_interpretation',
      'instance.transfer_syntax_uid AS transfer_syntax_uid',
    ];
    let qb: SelectQueryBuilder<ObjectLiteral>;
    if (query.level === 'study') {
      qb = this.db.repo(ctx, Study).createQueryBuilder('study').innerJoin(Patient, 'patient', 'patient.id = study.patient_id').select(studyColumns);
    } else if (query.level === 'series') {
      qb = this.db
        .repo(ctx, Series)
        .createQueryBuilder('series')
        .innerJoin(Study, 'study', 'study.id = series.study_id')
        .innerJoin(Patient, 'patient', 'patient.id = study.patient_id')
        .select([...studyColumns, ...seriesColumns]);
    } else {
      qb = this.instanceQuery(ctx).select([...studyColumns, ...seriesColumns, ...instanceColumns]);
    }
    applyPatientFilter(qb, ctx, 'patient', {});
    applyMatching(qb, query);
    qb.orderBy('study.study_date', 'DESC', 'NULLS LAST').addOrderBy('study.study_instance_uid');
    if (query.level !== 'study') qb.addOrderBy('series.series_number', 'ASC', 'NULLS LAST').addOrderBy('series.series_instance_uid');
    if (query.level === 'instance') qb.addOrderBy('instance.instance_number', 'ASC', 'NULLS LAST').addOrderBy('instance.sop_instance_uid');
    return qb.offset(query.offset).limit(query.limit).getRawMany<QidoRow>();
  }
}

/** The matching keys as SQL over the aliases study, patient (and series, instance at their levels). */
function applyMatching(qb: SelectQueryBuilder<ObjectLiteral>, q: QidoQuery): void {
  const inList = (column: string, name: string, values: string[] | undefined) => {
    if (values) qb.andWhere(values.length ? `${column} IN (:...${name})` : '1 = 0', { [name]: values });
  };
  const like = (column: string, name: string, match: { like: string } | undefined) => {
    if (match) qb.andWhere(`${column} LIKE :${name} ESCAPE '\\'`, { [name]: match.like });
  };
  inList('study.study_instance_uid', 'qStudyUids', q.studyInstanceUids);
  inList('series.series_instance_uid', 'qSeriesUids', q.seriesInstanceUids);
  inList('instance.sop_instance_uid', 'qSopUids', q.sopInstanceUids);
  inList('instance.sop_class_uid', 'qSopClassUids', q.sopClassUids);
  // Patient ID and Patient's Name both hold the pseudonym in a stored object.
  like('patient.pseudonym', 'qPatientId', q.patientId);
  like('patient.pseudonym', 'qPatientName', q.patientName);
  like(`COALESCE(study.description, '')`, 'qStudyDescription', q.studyDescription);
  like(`COALESCE(series.description, '')`, 'qSeriesDescription', q.seriesDescription);
  // De-identification empties Accession Number: a pattern matches every study or none.
  if (q.accessionNumber && !wildcardMatches(q.accessionNumber.pattern, '')) qb.andWhere('1 = 0');
  if (q.studyDate?.from) qb.andWhere('study.study_date >= :qDateFrom', { qDateFrom: q.studyDate.from });
  if (q.studyDate?.to) qb.andWhere('study.study_date <= :qDateTo', { qDateTo: q.studyDate.to });
  if (q.modalities) {
    if (q.level === 'study')
      qb.andWhere('EXISTS (SELECT 1 FROM series mq WHERE mq.study_id = study.id AND mq.modality::text IN (:...qModalities))', { qModalities: q.modalities });
    else qb.andWhere('series.modality::text IN (:...qModalities)', { qModalities: q.modalities });
  }
  if (q.seriesNumber !== undefined) qb.andWhere('series.series_number = :qSeriesNumber', { qSeriesNumber: q.seriesNumber });
  if (q.instanceNumber !== undefined) qb.andWhere('instance.instance_number = :qInstanceNumber', { qInstanceNumber: q.instanceNumber });
}

const levelOf = (path: ResourcePath): QidoLevel => (path.instance ? 'instance' : path.series ? 'series' : 'study');
const levelName = (path: ResourcePath): string => ({ study: 'Study', series: 'Series', instance: 'Instance' })[levelOf(path)];

/** The frames asked of a parsed object, as they travel: octets (little-endian) for native pixel data, codestreams otherwise. */
function framesOf(file: Part10File, numbers: number[], count: number): RetrievedFrames {
  const { dataset, transferSyntax } = file;
  const pixelData = dataset.get(TAGS.pixelData);
  if (transferSyntax.encapsulated) {
    if (!pixelData?.fragments) throw notFound('Pixel Data', 'of this instance');
    const mediaType = FRAME_MEDIA_TYPE[transferSyntax.uid];
    if (!mediaType) throw new AppError(ErrorCode.NOT_ACCEPTABLE, `Frames of ${transferSyntax.name} cannot be sent`);
    try {
      return { mediaType, transferSyntaxUid: transferSyntax.uid, frames: numbers.map((n) => encodedFrame(pixelData.fragments as Buffer[], n - 1, count)) };
    } catch (error) {
      if (error instanceof PixelDecodeError) throw new AppError(ErrorCode.NOT_ACCEPTABLE, error.message);
      throw error;
    }
  }
  const bytes = pixelData?.bytes;
  if (!bytes) throw notFound('Pixel Data', 'of this instance');
  const le = transferSyntax.littleEndian;
  const bits = uintOf(dataset, TAGS.bitsAllocated, le) ?? 16;
  const size = ((uintOf(dataset, TAGS.rows, le) ?? 0) * (uintOf(dataset, TAGS.columns, le) ?? 0) * (uintOf(dataset, TAGS.samplesPerPixel, le) ?? 1) * bits) / 8;
  const bits16 = bits === 16 && !le;
  const frames = numbers.map((n) => {
    const frame = Buffer.from(bytes.subarray((n - 1) * size, n * size));
    return bits16 ? frame.swap16() : frame;
  });
  return { mediaType: 'application/octet-stream', transferSyntaxUid: EXPLICIT_VR_LITTLE_ENDIAN, frames };
}
