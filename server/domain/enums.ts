/** Plain enums shared by every layer. GraphQL enum values equal these string values. */

export enum Modality {
  XR = 'XR',
  CT = 'CT',
  MR = 'MR',
}

export enum Level {
  L1_L2 = 'L1_L2',
  L2_L3 = 'L2_L3',
  L3_L4 = 'L3_L4',
  L4_L5 = 'L4_L5',
  L5_S1 = 'L5_S1',
}

export enum Side {
  LEFT = 'LEFT',
  RIGHT = 'RIGHT',
}

export enum Split {
  TRAIN = 'TRAIN',
  VALIDATION = 'VALIDATION',
  TEST = 'TEST',
}

/** A reader's role in the reading workflow (not an API role). */
export enum ReaderRole {
  READER = 'READER',
  ADJUDICATOR = 'ADJUDICATOR',
  SENIOR = 'SENIOR',
}

/**
 * A reader's place within their site's pair: every cell of a site is read once by its FIRST and once by its SECOND
 * reader. Statistics use it to pool "reader 1 of every site" and to orient agreement tables; it says nothing of
 * order in time or of seniority.
 */
export enum ReaderSlot {
  FIRST = 'FIRST',
  SECOND = 'SECOND',
}

/** The role an API token carries (DESIGN.md section 8). */
export enum Role {
  ADMIN = 'ADMIN',
  COORDINATOR = 'COORDINATOR',
  READER = 'READER',
  STATISTICIAN = 'STATISTICIAN',
  ENGINEER = 'ENGINEER',
  HUB = 'HUB',
}

export enum Sex {
  FEMALE = 'FEMALE',
  MALE = 'MALE',
  OTHER = 'OTHER',
  UNKNOWN = 'UNKNOWN',
}

/** Exclusion criteria of the facet-joint study protocol. */
export enum ExclusionReason {
  SPONDYLOLYSIS = 'SPONDYLOLYSIS',
  SPONDYLOLISTHESIS = 'SPONDYLOLISTHESIS',
  FRACTURE = 'FRACTURE',
  PRIOR_LUMBAR_SURGERY = 'PRIOR_LUMBAR_SURGERY',
  SEVERE_SCOLIOSIS = 'SEVERE_SCOLIOSIS',
}

/** How a reference grade came about. */
export enum ReferenceSource {
  AGREEMENT = 'AGREEMENT',
  ADJUDICATION = 'ADJUDICATION',
  /** Changed after agreement or adjudication by an adjudicator or senior who did not read the cell (who, when and the previous value are kept). */
  REVISED = 'REVISED',
  /** Imported: the consensus of a panel that graded the de-identified images outside this node. */
  CONSENSUS_PANEL = 'CONSENSUS_PANEL',
  /** Imported: one outside expert's (or a core lab's) read. */
  EXTERNAL_READ = 'EXTERNAL_READ',
}

/** Sources a reference-standard file may name; the others come only from the reading workflow. */
export const IMPORTED_REFERENCE_SOURCES: readonly ReferenceSource[] = [ReferenceSource.CONSENSUS_PANEL, ReferenceSource.EXTERNAL_READ];

export const ALL_LEVELS: readonly Level[] = Object.values(Level);
export const ALL_SIDES: readonly Side[] = Object.values(Side);
export const ALL_SPLITS: readonly Split[] = Object.values(Split);

/** Why an uploaded file or manifest row was not stored (returned per item, never thrown). */
export enum IngestRejectionCode {
  NOT_PART10 = 'NOT_PART10',
  TRUNCATED = 'TRUNCATED',
  IMPOSSIBLE_LENGTH = 'IMPOSSIBLE_LENGTH',
  MALFORMED_ELEMENT = 'MALFORMED_ELEMENT',
  UNSUPPORTED_TRANSFER_SYNTAX = 'UNSUPPORTED_TRANSFER_SYNTAX',
  UNSUPPORTED_MEDIA_TYPE = 'UNSUPPORTED_MEDIA_TYPE',
  UNSUPPORTED_SOP_CLASS = 'UNSUPPORTED_SOP_CLASS',
  UNSUPPORTED_MODALITY = 'UNSUPPORTED_MODALITY',
  MISSING_ATTRIBUTE = 'MISSING_ATTRIBUTE',
  PIXEL_LENGTH_MISMATCH = 'PIXEL_LENGTH_MISMATCH',
  /** Burned In Annotation (0028,0301) is YES: text in the pixels cannot be de-identified by attributes. */
  BURNED_IN_ANNOTATION = 'BURNED_IN_ANNOTATION',
  /** The object holds more elements, items or fragments, or nests deeper, than FACET_DICOM_MAX_ELEMENTS / FACET_DICOM_MAX_DEPTH allow. */
  TOO_COMPLEX = 'TOO_COMPLEX',
  UNKNOWN_PATIENT = 'UNKNOWN_PATIENT',
  /** The SOP Instance UID is stored already (or appears earlier in the batch) with other content. */
  INSTANCE_CONFLICT = 'INSTANCE_CONFLICT',
  /** STOW-RS to /studies/{uid}: the instance belongs to another study. */
  STUDY_MISMATCH = 'STUDY_MISMATCH',
  CONFLICT = 'CONFLICT',
  /** Valid, but not stored because another item of the same batch was rejected (a batch lands whole or not at all). */
  BATCH_REJECTED = 'BATCH_REJECTED',
  /** Manifests: the header lacks a required column, or the CSV cannot be parsed. */
  MALFORMED_CSV = 'MALFORMED_CSV',
  /**
   * Manifests: a value is missing or outside its allowed set. DICOM: a value Facet records in a column breaks its
   * VR (PS3.5 Table 6.2-1: length, characters, range) or has another VR than PS3.6 gives; the reason names the tag.
   */
  INVALID_VALUE = 'INVALID_VALUE',
  UNKNOWN_SITE = 'UNKNOWN_SITE',
  /** Manifests: a row names a site outside the uploader's scope. */
  SITE_OUT_OF_SCOPE = 'SITE_OUT_OF_SCOPE',
  DUPLICATE_ROW = 'DUPLICATE_ROW',
  /** Manifests: the row names an instance this site has not stored (or one of another patient). */
  UNKNOWN_INSTANCE = 'UNKNOWN_INSTANCE',
  UNKNOWN_READER = 'UNKNOWN_READER',
  /** Manifests: the row breaks a rule of the reading workflow (a second grade by the same reader, a third reader…). */
  RULE_VIOLATION = 'RULE_VIOLATION',
  /** Reference standard: the grade is a whole number outside the feature's scale. */
  GRADE_OUT_OF_SCALE = 'GRADE_OUT_OF_SCALE',
  /** Reference standard: the source is not one a file may name (CONSENSUS_PANEL, EXTERNAL_READ). */
  UNKNOWN_SOURCE = 'UNKNOWN_SOURCE',
}

/** Dimensions a metrics query can group by (the pooled row comes always). */
export enum MetricsGroupBy {
  SITE = 'SITE',
  FEATURE = 'FEATURE',
  MODALITY = 'MODALITY',
  LEVEL = 'LEVEL',
  SIDE = 'SIDE',
  SPLIT = 'SPLIT',
}

/** Why a statistics row was withheld from a role without patient-level access (server/stats/disclosure.ts). */
export enum SuppressionReason {
  /** The row's cases belong to fewer patients than the minimum group size. */
  FEWER_THAN_MIN_PATIENTS = 'FEWER_THAN_MIN_PATIENTS',
  /** A query over a wider scope would differ from this row by fewer patients than the minimum (differencing). */
  COMPLEMENT_TOO_SMALL = 'COMPLEMENT_TOO_SMALL',
  /**
   * A slot's or a role's row where one of its readers holds fewer patients than the minimum, so that it and a row
   * without that reader would differ by them; or, the row being one reader's cases only, that reader's own row
   * would be withheld.
   */
  READER_SHARE_WITHHELD = 'READER_SHARE_WITHHELD',
  /** At a hub: a pooled row every site withheld its group of (nothing to sum). */
  ALL_SITES_WITHHELD = 'ALL_SITES_WITHHELD',
  /** At a hub: an AUC row whose round-2 sums do not come from exactly round 1's sites. */
  ROUND_TWO_INCOMPLETE = 'ROUND_TWO_INCOMPLETE',
}
