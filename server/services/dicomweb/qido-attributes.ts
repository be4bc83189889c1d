import { jsonTag, type DicomJsonAttribute, type DicomJsonDataset } from '../../dicom/dicom-json';
import { tagOfKeyword } from '../../dicom/dictionary';
import { Sex } from '../../domain';
import type { QidoLevel, QidoQuery } from './qido-query';

/** One search result as the database holds it: the study's columns, and the series' and instance's at their levels. */
export interface QidoRow {
  study_uid: string;
  study_date: string | null;
  study_description: string | null;
  pseudonym: string;
  sex: Sex;
  modalities: string[] | null;
  study_series: string | number;
  study_instances: string | number;
  series_uid?: string;
  modality?: string;
  series_number?: number | null;
  series_description?: string | null;
  series_instances?: string | number;
  sop_uid?: string;
  sop_class_uid?: string;
  instance_number?: number | null;
  rows?: number;
  columns?: number;
  bits_allocated?: number;
  number_of_frames?: number;
  samples_per_pixel?: number;
  photometric_interpretation?: string;
  transfer_syntax_uid?: string;
}

const SEX_CODE: Record<Sex, string | null> = { [Sex.FEMALE]: 'F', [Sex.MALE]: 'M', [Sex.OTHER]: 'O', [Sex.UNKNOWN]: null };

const value = (vr: string, v: unknown): DicomJsonAttribute => (v === null || v === undefined || v === '' ? { vr } : { vr, Value: [v] });
const da = (iso: string | null) => value('DA', iso ? iso.replaceAll('-', '') : null);

/**
 * The attributes each level can answer, by keyword. De-identification empties Accession Number, Study Time,
 * Study ID, Referring Physician's Name and Patient's Birth Date (PS3.15 Basic Profile), so those are present
 * and empty; Patient ID and Patient's Name hold the pseudonym, as in the stored objects.
 */
const STUDY_ATTRIBUTES: Record<string, (r: QidoRow, base: string) => DicomJsonAttribute> = {
  SpecificCharacterSet: () => value('CS', 'ISO_IR 192'),
  StudyDate: (r) => da(r.study_date),
  StudyTime: () => ({ vr: 'TM' }),
  AccessionNumber: () => ({ vr: 'SH' }),
  InstanceAvailability: () => value('CS', 'ONLINE'),
  ModalitiesInStudy: (r) => (r.modalities?.length ? { vr: 'CS', Value: [...r.modalities].sort() } : { vr: 'CS' }),
  ReferringPhysicianName: () => ({ vr: 'PN' }),
  StudyDescription: (r) => value('LO', r.study_description),
  PatientName: (r) => value('PN', { Alphabetic: r.pseudonym }),
  PatientID: (r) => value('LO', r.pseudonym),
  PatientBirthDate: () => ({ vr: 'DA' }),
  PatientSex: (r) => value('CS', SEX_CODE[r.sex]),
  StudyInstanceUID: (r) => value('UI', r.study_uid),
  StudyID: () => ({ vr: 'SH' }),
  NumberOfStudyRelatedSeries: (r) => value('IS', Number(r.study_series)),
  NumberOfStudyRelatedInstances: (r) => value('IS', Number(r.study_instances)),
};
const SERIES_ATTRIBUTES: Record<string, (r: QidoRow, base: string) => DicomJsonAttribute> = {
  Modality: (r) => value('CS', r.modality),
  SeriesDescription: (r) => value('LO', r.series_description),
  SeriesNumber: (r) => value('IS', r.series_number),
  SeriesInstanceUID: (r) => value('UI', r.series_uid),
  NumberOfSeriesRelatedInstances: (r) => value('IS', Number(r.series_instances)),
};
const INSTANCE_ATTRIBUTES: Record<string, (r: QidoRow, base: string) => DicomJsonAttribute> = {
  SOPClassUID: (r) => value('UI', r.sop_class_uid),
  SOPInstanceUID: (r) => value('UI', r.sop_uid),
  InstanceNumber: (r) => value('IS', r.instance_number),
  Rows: (r) => value('US', r.rows),
  Columns: (r) => value('US', r.columns),
  BitsAllocated: (r) => value('US', r.bits_allocated),
  NumberOfFrames: (r) => value('IS', r.number_of_frames),
  SamplesPerPixel: (r) => value('US', r.samples_per_pixel),
  PhotometricInterpretation: (r) => value('CS', r.photometric_interpretation),
  AvailableTransferSyntaxUID: (r) => value('UI', r.transfer_syntax_uid),
};

/** The default return keys of each level (PS3.18 Tables 10.6.3-3 to -5), Study Description added for viewers' study lists. */
const DEFAULTS: Record<QidoLevel, string[]> = {
  study: Object.keys(STUDY_ATTRIBUTES),
  series: [
    'SpecificCharacterSet',
    'StudyInstanceUID',
    'Modality',
    'SeriesDescription',
    'SeriesNumber',
    'SeriesInstanceUID',
    'NumberOfSeriesRelatedInstances',
    'InstanceAvailability',
  ],
  instance: [
    'SpecificCharacterSet',
    'StudyInstanceUID',
    'SeriesInstanceUID',
    'SOPClassUID',
    'SOPInstanceUID',
    'InstanceAvailability',
    'InstanceNumber',
    'Rows',
    'Columns',
    'BitsAllocated',
    'NumberOfFrames',
  ],
};

/** The Retrieve URL of a result at its level (PS3.18 10.6.3.3: the resource WADO-RS retrieves it from). */
function retrieveUrl(r: QidoRow, level: QidoLevel, base: string): DicomJsonAttribute {
  const study = `${base}/studies/${r.study_uid}`;
  const url = level === 'study' ? study : level === 'series' ? `${study}/series/${r.series_uid}` : `${study}/series/${r.series_uid}/instances/${r.sop_uid}`;
  return { vr: 'UR', Value: [url] };
}

/**
 * One search result as a DICOM JSON data set: the level's default return keys, the attributes of the levels
 * above when the request did not name them in its path (a search of all series also returns each series'
 * study), every matching key asked, and what `includefield` named (`all`: everything the level can answer).
 */
export function qidoResult(r: QidoRow, query: QidoQuery, context: { studyInPath: boolean; seriesInPath: boolean }, base: string): DicomJsonDataset {
  const available = {
    ...STUDY_ATTRIBUTES,
    ...(query.level !== 'study' ? SERIES_ATTRIBUTES : {}),
    ...(query.level === 'instance' ? INSTANCE_ATTRIBUTES : {}),
  };
  const wanted = new Set<string>(DEFAULTS[query.level]);
  if (query.level !== 'study' && !context.studyInPath) DEFAULTS.study.forEach((k) => wanted.add(k));
  if (query.level === 'instance' && !context.seriesInPath) DEFAULTS.series.forEach((k) => wanted.add(k));
  for (const k of [...query.matchedKeywords, ...query.includeFields]) wanted.add(k);
  if (query.includeAll) Object.keys(available).forEach((k) => wanted.add(k));
  const out: DicomJsonDataset = { [jsonTag(tagOfKeyword('RetrieveURL') as number)]: retrieveUrl(r, query.level, base) };
  for (const keyword of wanted) {
    const attribute = available[keyword];
    if (attribute) out[jsonTag(tagOfKeyword(keyword) as number)] = attribute(r, base);
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

/** The return keys `includefield` named that this level cannot answer (a study search asked for Rows): answered with a warning. */
export function unanswerableFields(query: QidoQuery): string[] {
  const available = new Set([
    ...Object.keys(STUDY_ATTRIBUTES),
    'RetrieveURL',
    ...(query.level !== 'study' ? Object.keys(SERIES_ATTRIBUTES) : []),
    ...(query.level === 'instance' ? Object.keys(INSTANCE_ATTRIBUTES) : []),
  ]);
  return query.includeFields.filter((k) => !available.has(k));
}
