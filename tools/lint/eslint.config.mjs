// ESLint for the whole repo: typescript-eslint's recommended rules plus STYLE.md's layering as
// no-restricted-imports, one block per folder. Run from the repo root: `npm run lint`.
import tseslint from 'typescript-eslint';

const ORM = { name: 'typeorm', message: 'Only services, entities and db/ talk to TypeORM.' };
const TRANSPORT = [
  { name: 'type-graphql', message: 'Services and below never import the GraphQL layer.' },
  { name: 'express', message: 'Services and below never import HTTP.' },
  { name: '@apollo/server', message: 'Services and below never import HTTP.' },
  { name: 'graphql-ws', message: 'Services and below never import transports.' },
];
/** Libraries one folder owns: server/dicom, server/inference and server/storage are their only importers. */
const OWNED = [
  { name: 'dcmjs', message: 'Only server/dicom imports dcmjs.' },
  { name: 'onnxruntime-node', message: 'Only server/inference imports ONNX Runtime.' },
  { name: '@aws-sdk/client-s3', message: 'Only server/storage imports the AWS SDK (the S3 object store).' },
];
const UPPER_LAYERS = ['**/graphql/*', '**/graphql', '**/http/*', '**/http', '**/main', '**/node'];
const PG = { name: 'pg', message: 'Only db/, pubsub/ and queue/ open PostgreSQL connections.' };

/** Folders with an index module, imported by their own name as well as by a module's path. */
const INDEXED = new Set(['services', 'entities', 'domain']);
/** The import patterns of server folders (a module inside, or the folder's index). */
const folders = (...names) => names.flatMap((name) => (INDEXED.has(name) ? [`**/${name}`, `**/${name}/*`] : [`**/${name}/*`]));
/** The entry points that compose a node: nothing imports them. */
const ROOTS = ['**/main', '**/node'];
/** Callers of services, beside one another: the two transports (resolvers, job handlers), the CLI and the demo loader. */
const ABOVE_SERVICES = [...UPPER_LAYERS, ...folders('jobs', 'cli', 'demo')];
/** The floors below services (STYLE.md: services -> {entities, db, queue, pubsub, dicom, inference, storage, stats, federation}). */
const BELOW_SERVICES = ['entities', 'db', 'queue', 'pubsub', 'dicom', 'inference', 'storage', 'stats', 'federation'];
/** Every folder below services but `keep`: siblings stay apart unless a block names why one may use another. */
const belowServicesBut = (...keep) => folders(...BELOW_SERVICES.filter((name) => !keep.includes(name)));

/**
 * `group` holds gitignore-style patterns, `regex` one regular expression; `import type` is always allowed,
 * since types carry no runtime coupling.
 */
const restrict = (paths, group = [], regex = null) => ({
  '@typescript-eslint/no-restricted-imports': [
    'error',
    {
      paths: paths.map((p) => ({ ...p, allowTypeImports: true })),
      patterns: [
        ...(group.length ? [{ group, allowTypeImports: true, message: 'STYLE.md layering: this layer does not import that one.' }] : []),
        ...(regex ? [{ regex, allowTypeImports: true, message: 'STYLE.md layering: this layer does not import that one.' }] : []),
      ],
    },
  ],
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'tools/lint/node_modules/**', 'coverage/**', '.facet-data/**', '**/*.js', '**/*.mjs'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-unsafe-function-type': 'off',
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['server/domain/**/*.ts'],
    rules: restrict([], [], '^(?!\\./)'),
  },
  {
    files: ['server/errors/**/*.ts'],
    rules: restrict([ORM, ...TRANSPORT, ...OWNED], ['../*', '!../domain', '!../domain/*']),
  },
  {
    files: ['server/entities/**/*.ts'],
    rules: restrict([...TRANSPORT, ...OWNED], ['../*', '!../domain', '!../domain/*', 'graphql']),
  },
  {
    files: ['server/db/**/*.ts'],
    rules: restrict([...TRANSPORT, ...OWNED], [...ABOVE_SERVICES, ...folders('services'), ...belowServicesBut('entities')]),
  },
  {
    // Business rules over every floor below; never a caller of their own (jobs/ handlers call services, not the reverse).
    files: ['server/services/**/*.ts'],
    rules: restrict([...TRANSPORT, ...OWNED], ABOVE_SERVICES),
  },
  {
    // The pure half of DICOM ingest (parse, check, de-identify, encode, hash): no database, no queue, no pub/sub;
    // the ingest service looks patients up and stores what it hands back. Entities only as types.
    files: ['server/services/ingest/dicom-pipeline.ts'],
    rules: restrict(
      [ORM, ...TRANSPORT, ...OWNED, PG],
      [...ABOVE_SERVICES, ...folders('services', 'entities', 'db', 'queue', 'pubsub', 'inference', 'federation')],
    ),
  },
  {
    files: ['server/stats/**/*.ts'],
    rules: restrict([ORM, ...TRANSPORT, ...OWNED, { name: 'pg', message: 'stats/ is pure: no I/O.' }], ['../*', '!../domain', '!../domain/*', 'node:*']),
  },
  {
    // A subfolder of stats/ (mrmc/) builds on the modules beside its parent; still nothing outside stats/ but domain/.
    files: ['server/stats/*/**/*.ts'],
    rules: restrict(
      [ORM, ...TRANSPORT, ...OWNED, { name: 'pg', message: 'stats/ is pure: no I/O.' }],
      ['../../*', '!../../domain', '!../../domain/*', 'node:*'],
    ),
  },
  {
    // The top: Express, Apollo, graphql-ws and DICOMweb over the GraphQL layer and services.
    files: ['server/http/**/*.ts'],
    rules: restrict([ORM, ...OWNED, PG], [...ROOTS, ...folders('jobs', 'cli', 'demo', ...BELOW_SERVICES)]),
  },
  {
    // Resolvers call services; entities only as `import type` (for the `implements` of schema types).
    files: ['server/graphql/**/*.ts'],
    rules: restrict([ORM, ...OWNED, PG], ['**/http/*', '**/http', ...ROOTS, ...folders('jobs', 'cli', 'demo', ...BELOW_SERVICES)]),
  },
  {
    // The second transport, beside graphql/: handlers call services. From queue/ only the catalogue (names, payload types).
    files: ['server/jobs/**/*.ts'],
    rules: restrict([ORM, ...TRANSPORT, ...OWNED, PG], [...UPPER_LAYERS, ...folders('cli', 'demo', ...BELOW_SERVICES), '!**/queue/job-catalogue']),
  },
  {
    // The pg-boss adapter and the job catalogue: a floor below services, which send through it.
    files: ['server/queue/**/*.ts'],
    rules: restrict([ORM, ...TRANSPORT, ...OWNED], [...ABOVE_SERVICES, ...folders('services'), ...belowServicesBut('db')]),
  },
  {
    // LISTEN/NOTIFY and the topic catalogue: a floor below services, which publish and subscribe through it.
    files: ['server/pubsub/**/*.ts'],
    rules: restrict([ORM, ...TRANSPORT, ...OWNED], [...ABOVE_SERVICES, ...folders('services'), ...belowServicesBut()]),
  },
  {
    // The only importer of dcmjs: pure parsing and encoding, no I/O of its own.
    files: ['server/dicom/**/*.ts'],
    rules: restrict([ORM, ...TRANSPORT, OWNED[1], OWNED[2], PG], ['../*', '!../domain', '!../domain/*']),
  },
  {
    // The only importer of ONNX Runtime; decodes pixels through dicom/.
    files: ['server/inference/**/*.ts'],
    rules: restrict([ORM, ...TRANSPORT, OWNED[0], OWNED[2], PG], ['../*', '!../domain', '!../domain/*', '!../dicom', '!../dicom/*']),
  },
  {
    // The only importer of the AWS SDK, for the S3 object store.
    files: ['server/storage/**/*.ts'],
    rules: restrict([ORM, ...TRANSPORT, OWNED[0], OWNED[1], PG], ['../*', '!../domain', '!../domain/*']),
  },
  {
    // Pure protocol modules plus an outbound HTTP client: a node dials out, nothing here touches the database.
    files: ['server/federation/**/*.ts'],
    rules: restrict([ORM, ...TRANSPORT, ...OWNED, PG], ['../*', '!../domain', '!../domain/*', '!../stats', '!../stats/*', '!../errors', '!../errors/*']),
  },
  {
    // A client of a node: it talks to one over HTTP only, never to its services or database.
    files: ['server/cli/**/*.ts'],
    rules: restrict(
      [ORM, ...TRANSPORT, ...OWNED, PG],
      [...ROOTS, ...folders('graphql', 'http', 'services', 'jobs', 'demo', 'entities', 'db', 'queue', 'pubsub', 'inference', 'storage')],
    ),
  },
  {
    // Loads the synthetic cohort through services, as a caller of them (like a transport).
    files: ['server/demo/**/*.ts'],
    rules: restrict([ORM, ...TRANSPORT, ...OWNED, PG], [...ROOTS, ...folders('graphql', 'http', 'jobs', 'cli'), ...belowServicesBut('entities', 'dicom')]),
  },
  {
    // Environment to a typed Config, read once: nothing but its own modules and Node.
    files: ['server/config/**/*.ts'],
    rules: restrict([], [], '^(?!\\./|node:)'),
  },
  {
    // The Prometheus registry: counted into by every layer that has something to count, so it imports none of them.
    files: ['server/telemetry/**/*.ts'],
    rules: restrict([], [], '^(?!node:|prom-client$)'),
  },
  {
    // Imported by every layer that logs, so it imports none of them.
    files: ['server/log.ts'],
    rules: restrict([], [], '^(?!node:)'),
  },
  {
    // The browser app: a client of the public GraphQL API only. Nothing from the server, the schema classes or Node,
    // not even as types (its operations are checked against schema/schema.graphql by a test instead).
    files: ['web/**/*.ts', 'web/**/*.tsx'],
    ignores: ['web/vite.config.mts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '(^|/)(server|schema|migrations|model-registry|test|bench|scripts)(/|$)', message: 'web/ talks to the server over GraphQL only.' },
            { regex: '^node:', message: 'web/ runs in the browser.' },
          ],
          paths: [ORM, ...TRANSPORT.filter((t) => t.name !== 'graphql-ws'), ...OWNED, PG].map((p) => ({ ...p, message: 'web/ runs in the browser.' })),
        },
      ],
    },
  },
  {
    files: ['schema/**/*.ts'],
    rules: restrict([ORM, ...OWNED], ['**/server/*', '!**/server/domain', '**/server/*/*', '!**/server/domain/*']),
  },
);
