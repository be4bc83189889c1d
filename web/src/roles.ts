import type { Role } from './graphql/documents';

export type PageId = 'jobs' | 'study' | 'metrics' | 'upload' | 'federation' | 'reading';

/** The pages a role may open: the same roles the API allows for the queries behind each page. */
export const PAGES: { id: PageId; title: string; roles: Role[] }[] = [
  { id: 'jobs', title: 'Jobs', roles: ['ADMIN', 'ENGINEER', 'STATISTICIAN'] },
  { id: 'study', title: 'Study overview', roles: ['ADMIN', 'COORDINATOR', 'STATISTICIAN', 'ENGINEER'] },
  { id: 'metrics', title: 'Metrics', roles: ['ADMIN', 'COORDINATOR', 'STATISTICIAN', 'ENGINEER'] },
  { id: 'upload', title: 'Upload', roles: ['ADMIN', 'COORDINATOR'] },
  { id: 'reading', title: 'Reading', roles: ['READER'] },
  // A hub's page; elsewhere it says the server is not a hub.
  { id: 'federation', title: 'Federation', roles: ['ADMIN', 'STATISTICIAN'] },
];

export const mayOpen = (role: Role, page: PageId): boolean => PAGES.some((p) => p.id === page && p.roles.includes(role));

/** Starting and cancelling inference jobs. */
export const mayRunJobs = (role: Role): boolean => role === 'ADMIN' || role === 'ENGINEER';
