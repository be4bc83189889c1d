/**
 * The Weishaupt facet-joint grading scheme, shipped as the default rows of the `grading_feature` table
 * (the initial migration inserts them). Code reads the scheme from the database; this constant is the
 * seed and the reference for the derived overall grade.
 */
export interface GradeDefinition {
  grade: number;
  label: string;
}

export interface FeatureDefinition {
  code: string;
  label: string;
  grades: GradeDefinition[];
}

export const WEISHAUPT_FEATURES: readonly FeatureDefinition[] = [
  {
    code: 'JOINT_SPACE_NARROWING',
    label: 'Joint-space narrowing',
    grades: [
      { grade: 0, label: 'normal (2-4 mm)' },
      { grade: 1, label: 'narrowed (<2 mm)' },
    ],
  },
  {
    code: 'OSTEOPHYTES',
    label: 'Osteophytes',
    grades: [
      { grade: 0, label: 'none' },
      { grade: 1, label: 'small' },
      { grade: 2, label: 'moderate' },
      { grade: 3, label: 'large' },
    ],
  },
  {
    code: 'HYPERTROPHY',
    label: 'Articular process hypertrophy',
    grades: [
      { grade: 0, label: 'none' },
      { grade: 1, label: 'mild' },
      { grade: 2, label: 'moderate' },
      { grade: 3, label: 'severe' },
    ],
  },
  {
    code: 'EROSION',
    label: 'Articular-surface erosion',
    grades: [
      { grade: 0, label: 'none' },
      { grade: 1, label: 'mild' },
      { grade: 2, label: 'severe' },
    ],
  },
  {
    code: 'SUBCHONDRAL_CYSTS',
    label: 'Subchondral cysts',
    grades: [
      { grade: 0, label: 'absent' },
      { grade: 1, label: 'present' },
    ],
  },
];
