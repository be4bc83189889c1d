/**
 * Every GraphQL operation the web app sends, with the shape of its answer. They are written by hand against
 * schema/schema.graphql and a jest test (test/web/documents.test.ts) validates each one against that file, so a
 * schema change that breaks the app fails `npm test` instead of a page. Plain strings: nothing here is imported at
 * run time from the server.
 */

export type Role = 'ADMIN' | 'COORDINATOR' | 'READER' | 'STATISTICIAN' | 'ENGINEER' | 'HUB';
export type Modality = 'XR' | 'CT' | 'MR';
export const MODALITIES: Modality[] = ['XR', 'CT', 'MR'];

export interface Viewer {
  name: string;
  role: Role;
  siteId: string | null;
  readerId: string | null;
}

export const VIEWER = /* GraphQL */ `
  query Viewer {
    viewer {
      name
      role
      siteId
      readerId
    }
  }
`;
export interface ViewerData {
  viewer: Viewer;
}

export interface Site {
  id: string;
  code: string;
  name: string;
}
export const SITES = /* GraphQL */ `
  query Sites {
    sites(first: 500) {
      nodes {
        id
        code
        name
      }
    }
  }
`;
export interface SitesData {
  sites: { nodes: Site[] };
}

export interface Job {
  id: string;
  modelVersionId: string;
  status: string;
  done: number;
  failed: number;
  total: number;
  rate: number | null;
  etaSeconds: number | null;
  provider: string | null;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

const JOB_FIELDS = `id modelVersionId status done failed total rate etaSeconds provider error createdAt startedAt finishedAt`;

export const JOBS = /* GraphQL */ `
  query Jobs {
    jobs(first: 500) {
      totalCount
      nodes { ${JOB_FIELDS} }
    }
    modelVersions(first: 500) {
      nodes {
        id
        name
        version
        sha256
      }
    }
  }
`;
export interface ModelVersion {
  id: string;
  name: string;
  version: string;
  sha256: string | null;
}
export interface JobsData {
  jobs: { totalCount: number; nodes: Job[] };
  modelVersions: { nodes: ModelVersion[] };
}

export const JOBS_LIVE = /* GraphQL */ `
  subscription JobsLive($siteId: ID) {
    jobs(siteId: $siteId) { ${JOB_FIELDS} }
  }
`;
export interface JobsLiveData {
  jobs: Job;
}

export const START_JOB = /* GraphQL */ `
  mutation StartJob($modelVersionId: ID!, $siteIds: [ID!], $modalities: [Modality!]) {
    startInferenceJob(modelVersionId: $modelVersionId, siteIds: $siteIds, modalities: $modalities) { ${JOB_FIELDS} }
  }
`;
export interface StartJobData {
  startInferenceJob: Job;
}

export const CANCEL_JOB = /* GraphQL */ `
  mutation CancelJob($id: ID!) {
    cancelJob(id: $id) { ${JOB_FIELDS} }
  }
`;
export interface CancelJobData {
  cancelJob: Job;
}

export interface StudyFlowRow {
  site: string | null;
  suppressed: boolean;
  suppression: string | null;
  enrolled: number | null;
  excluded: number | null;
  excludedByReason: { reason: string; patients: number }[];
  eligible: number | null;
  joints: number | null;
  referenceCells: number | null;
  assessable: number | null;
  notAssessable: number | null;
  analysed: number | null;
  bySplit: { split: string; patients: number }[];
}

export const STUDY = /* GraphQL */ `
  query Study {
    studyFlow {
      site
      suppressed
      suppression
      enrolled
      excluded
      excludedByReason {
        reason
        patients
      }
      eligible
      joints
      referenceCells
      assessable
      notAssessable
      analysed
      bySplit {
        split
        patients
      }
    }
    splitVersions(first: 50) {
      nodes {
        id
        name
        frozen
        counts {
          siteId
          split
          patients
        }
      }
    }
    sites(first: 500) {
      nodes {
        id
        code
        name
      }
    }
  }
`;
export interface SplitVersion {
  id: string;
  name: string;
  frozen: boolean;
  counts: { siteId: string; split: string; patients: number }[];
}
export interface StudyData {
  studyFlow: StudyFlowRow[];
  splitVersions: { nodes: SplitVersion[] };
  sites: { nodes: Site[] };
}

export type GroupBy = 'SITE' | 'FEATURE' | 'MODALITY' | 'LEVEL' | 'SIDE' | 'SPLIT';
export const GROUP_BYS: GroupBy[] = ['SITE', 'FEATURE', 'MODALITY', 'LEVEL', 'SIDE', 'SPLIT'];

/** A rater as MetricsInput takes it: exactly one of these. */
export interface RaterInput {
  modelVersionId?: string;
  readerId?: string;
  readerSlot?: 'FIRST' | 'SECOND';
  readerRole?: 'READER';
}

export interface MetricsInput {
  rater: RaterInput;
  groupBy: GroupBy[];
  clustered: boolean;
}

export interface Estimate {
  value: number | null;
  lower: number | null;
  upper: number | null;
  method: string;
  reason: string | null;
}

export interface MetricsGroup {
  pooled: boolean;
  site: string | null;
  feature: string | null;
  modality: string | null;
  level: string | null;
  side: string | null;
  split: string | null;
  suppressed: boolean;
  suppression: string | null;
  cases: number | null;
  patients: number | null;
  auc: Estimate | null;
  sensitivity: Estimate | null;
  specificity: Estimate | null;
  f1: Estimate | null;
  accuracy: Estimate | null;
  roc: { fpr: number[]; tpr: number[] } | null;
  multiclass: { confusion: number[][]; quadraticKappa: { value: number | null } } | null;
}

export interface MetricsResult {
  clustered: boolean;
  level: number;
  threshold: number;
  disclosure: { applied: boolean; minGroupPatients: number };
  groups: MetricsGroup[];
}

const ESTIMATE = `value lower upper method reason`;
const METRICS_FIELDS = `
  clustered level threshold
  disclosure { applied minGroupPatients }
  groups {
    pooled site feature modality level side split suppressed suppression cases patients
    auc { ${ESTIMATE} } sensitivity { ${ESTIMATE} } specificity { ${ESTIMATE} } f1 { ${ESTIMATE} } accuracy { ${ESTIMATE} }
    roc { fpr tpr }
    multiclass { confusion quadraticKappa { value } }
  }`;

export const METRICS = /* GraphQL */ `
  query Metrics($input: MetricsInput!) {
    metrics(input: $input) { ${METRICS_FIELDS} }
  }
`;
export interface MetricsData {
  metrics: MetricsResult;
}

/** A reader's operating point per feature: sensitivity and specificity only. */
export const OPERATING_POINTS = /* GraphQL */ `
  query OperatingPoints($input: MetricsInput!) {
    metrics(input: $input) {
      groups {
        feature
        suppressed
        sensitivity {
          value
        }
        specificity {
          value
        }
      }
    }
  }
`;
export interface OperatingPointsData {
  metrics: {
    groups: { feature: string | null; suppressed: boolean; sensitivity: { value: number | null } | null; specificity: { value: number | null } | null }[];
  };
}

export interface RaterChoices {
  modelVersions: { nodes: ModelVersion[] };
  readers: { nodes: { id: string; code: string; slot: 'FIRST' | 'SECOND' | null; role: string; site: { code: string } | null }[] };
}
export const RATERS = /* GraphQL */ `
  query Raters {
    modelVersions(first: 500) {
      nodes {
        id
        name
        version
        sha256
      }
    }
    readers(first: 500, filter: { roles: [READER] }) {
      nodes {
        id
        code
        slot
        role
        site {
          code
        }
      }
    }
  }
`;

export interface AgreementGroup {
  site: string | null;
  feature: string;
  modality: string;
  suppressed: boolean;
  suppression: string | null;
  readers: { cases: number | null; quadratic: { value: number | null } | null; percentAgreement: { value: number | null } } | null;
}
export const AGREEMENT = /* GraphQL */ `
  query Agreement {
    agreement(bySite: true) {
      site
      feature
      modality
      suppressed
      suppression
      readers {
        cases
        quadratic {
          value
        }
        percentAgreement {
          value
        }
      }
    }
  }
`;
export interface AgreementData {
  agreement: AgreementGroup[];
}

export interface FederatedQuery {
  id: string;
  kind: string;
  status: string;
  minSites: number;
  deadline: string;
  createdAt: string;
  revision: number;
  updated: boolean;
  requestedBy: string;
  query: Record<string, unknown>;
  sites: { site: string; state: string; reason: string | null; late: boolean; claimedAt: string | null; settledAt: string | null }[];
  missing: { site: string; code: string; reason: string | null }[];
}
const FEDERATED_QUERY_FIELDS = `id kind status minSites deadline createdAt revision updated requestedBy query
  sites { site state reason late claimedAt settledAt }
  missing { site code reason }`;

export const FEDERATION = /* GraphQL */ `
  query Federation {
    federationSites {
      code
      name
      keyId
      lastClaimAt
      contactName
      contactEmail
    }
    federatedQueries(limit: 50) { ${FEDERATED_QUERY_FIELDS} }
  }
`;
export interface FederationData {
  federationSites: { code: string; name: string; keyId: string; lastClaimAt: string | null; contactName: string; contactEmail: string }[];
  federatedQueries: FederatedQuery[];
}

export const FEDERATED_QUERY_UPDATED = /* GraphQL */ `
  subscription FederatedQueryUpdated($id: ID!) {
    federatedQueryUpdated(id: $id) { ${FEDERATED_QUERY_FIELDS} }
  }
`;
export interface FederatedQueryUpdatedData {
  federatedQueryUpdated: FederatedQuery;
}

export const GRADING_SCHEME = /* GraphQL */ `
  query GradingScheme {
    gradingScheme {
      code
      label
      grades {
        grade
        label
      }
    }
  }
`;
export interface GradingSchemeData {
  gradingScheme: { code: string; label: string; grades: { grade: number; label: string }[] }[];
}

export interface Page<T> {
  nodes: T[];
  pageInfo: { endCursor: string | null; hasNextPage: boolean };
}

export const WORKLIST_IMAGES = /* GraphQL */ `
  query WorklistImages($after: String) {
    jointImages(first: 500, after: $after, filter: { eligible: true }) {
      pageInfo {
        endCursor
        hasNextPage
      }
      nodes {
        id
        frame
        roiX
        roiY
        roiWidth
        roiHeight
        joint {
          id
          level
          side
          patient {
            pseudonym
          }
        }
        instance {
          sopInstanceUid
          numberOfFrames
          series {
            modality
            seriesInstanceUid
            study {
              studyInstanceUid
            }
          }
        }
      }
    }
  }
`;
/** A joint image of the worklist: where the joint is (instance, frame, region) and which joint it is. */
export interface WorklistImage {
  id: string;
  frame: number;
  roiX: number;
  roiY: number;
  roiWidth: number;
  roiHeight: number;
  joint: { id: string; level: string; side: string; patient: { pseudonym: string } | null } | null;
  instance: {
    sopInstanceUid: string;
    numberOfFrames: number;
    series: { modality: Modality; seriesInstanceUid: string; study: { studyInstanceUid: string } | null } | null;
  } | null;
}
export interface WorklistImagesData {
  jointImages: Page<WorklistImage>;
}

export const OWN_READINGS = /* GraphQL */ `
  query OwnReadings($readerId: ID!, $after: String) {
    readings(first: 500, after: $after, filter: { readerIds: [$readerId] }) {
      pageInfo {
        endCursor
        hasNextPage
      }
      nodes {
        jointId
        modality
        feature
        grade
        notAssessable
      }
    }
  }
`;
export interface OwnReading {
  jointId: string;
  modality: Modality;
  feature: string;
  grade: number | null;
  notAssessable: boolean;
}
export interface OwnReadingsData {
  readings: Page<OwnReading>;
}

/**
 * Recording a reading. The reading page reads the joint images of the reader's site and the reader's own readings
 * only (`readerIds`), so it never asks for a grade the API would blind, nor makes the reader lose independence.
 */
export const RECORD_READING = /* GraphQL */ `
  mutation RecordReading($input: RecordReadingInput!) {
    recordReading(input: $input) {
      jointId
      modality
      feature
      grade
      notAssessable
    }
  }
`;

export const READER_ROLE = /* GraphQL */ `
  query ReaderRole($readerId: ID!) {
    reader(id: $readerId) {
      role
    }
  }
`;
export interface ReaderRoleData {
  reader: { role: string };
}

/** Asked only by an adjudicator: it shows both grades, which would cost a reader of the cell their independence. */
export const ADJUDICATION_QUEUE = /* GraphQL */ `
  query AdjudicationQueue {
    adjudicationQueue(first: 500) {
      totalCount
      nodes {
        id
        jointId
        modality
        feature
        readings {
          grade
          notAssessable
          reader {
            code
          }
          joint {
            level
            side
            patient {
              pseudonym
            }
          }
        }
      }
    }
  }
`;
export interface AdjudicationQueueData {
  adjudicationQueue: {
    totalCount: number;
    nodes: {
      id: string;
      jointId: string;
      modality: Modality;
      feature: string;
      readings: {
        grade: number | null;
        notAssessable: boolean;
        reader: { code: string } | null;
        joint: { level: string; side: string; patient: { pseudonym: string } | null } | null;
      }[];
    }[];
  };
}

export const ADJUDICATE = /* GraphQL */ `
  mutation Adjudicate($input: AdjudicateInput!) {
    adjudicate(input: $input) {
      id
      grade
    }
  }
`;

/** Asked only by a senior reader: the reference grades of their site still to confirm. */
export const UNCONFIRMED_REFERENCE = /* GraphQL */ `
  query UnconfirmedReference {
    referenceGrades(first: 500, filter: { confirmed: false }) {
      totalCount
      nodes {
        id
        modality
        feature
        grade
        notAssessable
        source
        joint {
          level
          side
          patient {
            pseudonym
          }
        }
      }
    }
  }
`;
export interface UnconfirmedReferenceData {
  referenceGrades: {
    totalCount: number;
    nodes: {
      id: string;
      modality: Modality;
      feature: string;
      grade: number | null;
      notAssessable: boolean;
      source: string;
      joint: { level: string; side: string; patient: { pseudonym: string } | null } | null;
    }[];
  };
}

export const CONFIRM_REFERENCE = /* GraphQL */ `
  mutation ConfirmReference($ids: [ID!]!) {
    confirmReferenceGrades(input: { ids: $ids }) {
      id
      confirmedAt
    }
  }
`;
