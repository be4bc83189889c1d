export * from './enums';
export * from './error-code';
export * from './filters';
export * from './grading-scheme';
export * from './inference-job';
export * from './federation-hub';
export * from './federation';
