import { spawnSync } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

/** Runs ESLint's API in one child process (the flat config is an ES module) over every case: one start, not one per case. */
const LINT_ALL = `
import { ESLint } from 'eslint';
let input = '';
for await (const chunk of process.stdin) input += chunk;
const eslint = new ESLint({ overrideConfigFile: 'tools/lint/eslint.config.mjs' });
const messages = [];
for (const { file, source } of JSON.parse(input)) {
  const [result] = await eslint.lintText(source, { filePath: file });
  messages.push(result.messages.map((m) => m.ruleId + ': ' + m.message).join('\\n'));
}
process.stdout.write(JSON.stringify(messages));
`;

/** Lints each `source` as if it lived at its `file`, with the repo's ESLint config; the messages of each. */
function lintAll(cases: Array<{ file: string; source: string }>): string[] {
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', LINT_ALL], { cwd: ROOT, input: JSON.stringify(cases), encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`ESLint failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as string[];
}

const REJECTED: Array<[label: string, file: string, source: string]> = [
  ['a resolver importing TypeORM', 'server/graphql/resolvers/x.resolver.ts', `import { In } from 'typeorm';\nexport const x = In;\n`],
  ['a resolver importing an entity at runtime', 'server/graphql/resolvers/x.resolver.ts', `import { Site } from '../../entities';\nexport const x = Site;\n`],
  ['a service importing type-graphql', 'server/services/x.service.ts', `import { Field } from 'type-graphql';\nexport const x = Field;\n`],
  [
    'a service importing the GraphQL layer',
    'server/services/x.service.ts',
    `import { authChecker } from '../graphql/auth-checker';\nexport const x = authChecker;\n`,
  ],
  ['an entity importing a service', 'server/entities/x.entity.ts', `import { SiteService } from '../services/site.service';\nexport const x = SiteService;\n`],
  ['domain importing anything outside itself', 'server/domain/x.ts', `import { AppError } from '../errors/app-error';\nexport const x = AppError;\n`],
  ['a service importing dcmjs (only server/dicom does)', 'server/services/x.service.ts', `import { data } from 'dcmjs';\nexport const x = data;\n`],
  [
    'schema importing a service',
    'schema/types/x.type.ts',
    `import { SiteService } from '../../server/services/site.service';\nexport const x = SiteService;\n`,
  ],
  ['http importing an entity at runtime', 'server/http/x.ts', `import { Site } from '../entities';\nexport const x = Site;\n`],
  [
    'a resolver importing the queue',
    'server/graphql/resolvers/x.resolver.ts',
    `import { JobQueue } from '../../queue/job-queue';\nexport const x = JobQueue;\n`,
  ],
  [
    'a resolver importing a job handler (a transport beside it)',
    'server/graphql/resolvers/x.resolver.ts',
    `import { jobHandlers } from '../../jobs/job-registry';\nexport const x = jobHandlers;\n`,
  ],
  [
    'a job handler importing the pg-boss adapter (it calls services)',
    'server/jobs/x.job.ts',
    `import { JobQueue } from '../queue/job-queue';\nexport const x = JobQueue;\n`,
  ],
  ['a job handler importing an entity', 'server/jobs/x.job.ts', `import { InferenceJob } from '../entities';\nexport const x = InferenceJob;\n`],
  [
    'a service importing a job handler (jobs call services, never the reverse)',
    'server/services/x.service.ts',
    `import { jobHandlers } from '../jobs/job-registry';\nexport const x = jobHandlers;\n`,
  ],
  [
    'a service module in a subfolder importing a job handler',
    'server/services/inference-job/x.ts',
    `import { runInferenceJob } from '../../jobs/run-inference.job';\nexport const x = runInferenceJob;\n`,
  ],
  ['the queue importing a service', 'server/queue/x.ts', `import { systemContext } from '../services';\nexport const x = systemContext;\n`],
  ['the queue importing the pub/sub', 'server/queue/x.ts', `import { PostgresPubSub } from '../pubsub/postgres-pubsub';\nexport const x = PostgresPubSub;\n`],
  ['the pub/sub importing an entity', 'server/pubsub/x.ts', `import { InferenceJob } from '../entities';\nexport const x = InferenceJob;\n`],
  ['the pub/sub importing the queue', 'server/pubsub/x.ts', `import { JobQueue } from '../queue/job-queue';\nexport const x = JobQueue;\n`],
  ['dicom importing the object store', 'server/dicom/x.ts', `import { ObjectStore } from '../storage/object-store';\nexport const x = ObjectStore;\n`],
  ['dicom importing ONNX Runtime', 'server/dicom/x.ts', `import { Tensor } from 'onnxruntime-node';\nexport const x = Tensor;\n`],
  ['a service importing the AWS SDK', 'server/services/x.ts', `import { S3Client } from '@aws-sdk/client-s3';\nexport const x = S3Client;\n`],
  ['inference importing the AWS SDK', 'server/inference/x.ts', `import { S3Client } from '@aws-sdk/client-s3';\nexport const x = S3Client;\n`],
  ['inference importing dcmjs (only server/dicom does)', 'server/inference/x.ts', `import { data } from 'dcmjs';\nexport const x = data;\n`],
  ['inference importing a service', 'server/inference/x.ts', `import { systemContext } from '../services';\nexport const x = systemContext;\n`],
  ['storage importing the database', 'server/storage/x.ts', `import { Db } from '../db/transaction';\nexport const x = Db;\n`],
  [
    'the DICOM pipeline importing the database',
    'server/services/ingest/dicom-pipeline.ts',
    `import { Db } from '../../db/transaction';\nexport const x = Db;\n`,
  ],
  [
    'the DICOM pipeline importing an entity at runtime',
    'server/services/ingest/dicom-pipeline.ts',
    `import { Patient } from '../../entities';\nexport const x = Patient;\n`,
  ],
  [
    'the DICOM pipeline importing the pub/sub',
    'server/services/ingest/dicom-pipeline.ts',
    `import { INGEST_PROGRESS } from '../../pubsub/topics';\nexport const x = INGEST_PROGRESS;\n`,
  ],
  ['stats doing I/O', 'server/stats/x.ts', `import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n`],
  ['federation importing the database', 'server/federation/x.ts', `import { Db } from '../db/transaction';\nexport const x = Db;\n`],
  ['federation importing an entity', 'server/federation/x.ts', `import { Site } from '../entities';\nexport const x = Site;\n`],
  ['federation importing a service', 'server/federation/x.ts', `import { SiteService } from '../services/site.service';\nexport const x = SiteService;\n`],
  ['the CLI importing services', 'server/cli/x.ts', `import { systemContext } from '../services';\nexport const x = systemContext;\n`],
  ['the CLI opening a database connection', 'server/cli/x.ts', `import { Client } from 'pg';\nexport const x = Client;\n`],
  ['the demo loader importing the GraphQL layer', 'server/demo/x.ts', `import { createSchema } from '../graphql/schema';\nexport const x = createSchema;\n`],
  ['config importing anything outside itself', 'server/config/x.ts', `import { log } from '../log';\nexport const x = log;\n`],
  ['db importing the queue', 'server/db/x.ts', `import { JobQueue } from '../queue/job-queue';\nexport const x = JobQueue;\n`],
  ['the metrics registry importing a layer', 'server/telemetry/x.ts', `import { log } from '../log';\nexport const x = log;\n`],
  ['the logger importing a layer', 'server/log.ts', `import { loadConfig } from './config/config';\nexport const x = loadConfig;\n`],
  ['the web app importing the server', 'web/src/pages/x.tsx', `import { Role } from '../../../server/domain';\nexport const x = Role;\n`],
  ['the web app importing a server type', 'web/src/x.ts', `import type { Site } from '../../server/entities';\nexport type X = Site;\n`],
  ['the web app importing Node', 'web/src/x.ts', `import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n`],
];

const ALLOWED: Array<[label: string, file: string, source: string]> = [
  [
    'a job handler importing services and the job catalogue',
    'server/jobs/x.job.ts',
    `import { systemContext } from '../services';\nimport { RUN_INFERENCE } from '../queue/job-catalogue';\nexport const x = [systemContext, RUN_INFERENCE];\n`,
  ],
  [
    'a service importing the queue and the pub/sub',
    'server/services/inference-job/x.ts',
    `import { JobQueue } from '../../queue/job-queue';\nimport { JOB_PROGRESS } from '../../pubsub/topics';\nexport const x = [JobQueue, JOB_PROGRESS];\n`,
  ],
  [
    'the DICOM pipeline importing dicom/ and a sibling service module',
    'server/services/ingest/dicom-pipeline.ts',
    `import { readPart10 } from '../../dicom/reader';\nimport { patientKeyOf } from '../patient-key';\nexport const x = [readPart10, patientKeyOf];\n`,
  ],
  [
    'a service and the HTTP layer counting into the metrics registry',
    'server/services/x.service.ts',
    `import { predictions } from '../telemetry/metrics';\nexport const x = predictions;\n`,
  ],
  ['inference decoding through dicom/', 'server/inference/x.ts', `import { readPart10 } from '../dicom/reader';\nexport const x = readPart10;\n`],
  ['federation using stats/', 'server/federation/x.ts', `import { addCluster } from '../stats/proportion';\nexport const x = addCluster;\n`],
  [
    'type-only imports and the permitted direction',
    'schema/types/x.type.ts',
    `import type { Site } from '../../server/entities';\nimport { Role } from '../../server/domain';\nexport const x: [Site | null, Role] = [null, Role.ADMIN];\n`,
  ],
  [
    'the web app importing its own modules, React and the GraphQL clients',
    'web/src/x.tsx',
    `import { useQuery } from 'urql';\nimport { createClient } from 'graphql-ws';\nimport { VIEWER } from './graphql/documents';\nexport const x = [useQuery, createClient, VIEWER];\n`,
  ],
];

describe('STYLE.md layering (ESLint no-restricted-imports)', () => {
  const messages = new Map<string, string>();
  beforeAll(() => {
    const cases = [...REJECTED, ...ALLOWED];
    lintAll(cases.map(([, file, source]) => ({ file, source }))).forEach((text, i) => messages.set(cases[i][0], text));
  });

  it.each(REJECTED)('rejects %s', (label) => {
    expect(messages.get(label)).toMatch(/no-restricted-imports/);
  });

  it.each(ALLOWED)('allows %s', (label) => {
    expect(messages.get(label)).not.toMatch(/no-restricted-imports/);
  });
});
