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

/**
 * Overall Weishaupt grade 0-3 from the five feature grades (DESIGN.md section 3):
 * max(JSN>=1 ? 1 : 0, osteophytes, hypertrophy, [0,2,3][erosion], cysts ? 3 : 0).
 * Returns null when any feature is missing or not assessable.
 */
export function overallWeishauptGrade(grades: Readonly<Record<string, number | null | undefined>>): number | null {
  const jsn = grades.JOINT_SPACE_NARROWING;
  const ost = grades.OSTEOPHYTES;
  const hyp = grades.HYPERTROPHY;
  const ero = grades.EROSION;
  const cys = grades.SUBCHONDRAL_CYSTS;
  if (jsn == null || ost == null || hyp == null || ero == null || cys == null) return null;
  return Math.max(jsn >= 1 ? 1 : 0, ost, hyp, [0, 2, 3][ero], cys ? 3 : 0);
}
