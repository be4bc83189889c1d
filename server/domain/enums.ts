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
}

export const ALL_LEVELS: readonly Level[] = Object.values(Level);
export const ALL_SIDES: readonly Side[] = Object.values(Side);
export const ALL_SPLITS: readonly Split[] = Object.values(Split);
