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
    jobs(first: 100) {
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
