import type { Level, Modality, ReaderRole, ReaderSlot, Side, Split } from './enums';

/** Plain filter shapes shared by GraphQL inputs (which implement them) and services (which apply them). */

export interface PageRequest {
  /** At most this many nodes (default 50, max 500). */
  first?: number | null;
  /** The `endCursor` of the previous page. */
  after?: string | null;
}

export interface SplitSelector {
  splitVersionId: string;
  split: Split;
}

export interface PatientFilter {
  siteIds?: string[] | null;
  eligible?: boolean | null;
  split?: SplitSelector | null;
}

export interface JointFilter extends PatientFilter {
  patientIds?: string[] | null;
  levels?: Level[] | null;
  sides?: Side[] | null;
}

export interface GradeFilter extends JointFilter {
  modalities?: Modality[] | null;
  features?: string[] | null;
}

export interface ReadingFilter extends GradeFilter {
  readerIds?: string[] | null;
}

export interface ReferenceGradeFilter extends GradeFilter {
  confirmed?: boolean | null;
}

export interface ImagingFilter extends PatientFilter {
  patientIds?: string[] | null;
  modalities?: Modality[] | null;
}

export interface JointImageFilter extends JointFilter {
  modalities?: Modality[] | null;
}

export interface ReaderFilter {
  siteIds?: string[] | null;
  roles?: ReaderRole[] | null;
  slots?: ReaderSlot[] | null;
}

export interface SplitAssignmentFilter {
  splitVersionId: string;
  siteIds?: string[] | null;
  splits?: Split[] | null;
}
