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
/** Libraries one folder owns: server/dicom and server/inference are their only importers. */
const OWNED = [
  { name: 'dcmjs', message: 'Only server/dicom imports dcmjs.' },
  { name: 'onnxruntime-node', message: 'Only server/inference imports ONNX Runtime.' },
];
const UPPER_LAYERS = ['**/graphql/*', '**/graphql', '**/http/*', '**/http', '**/main', '**/node'];

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
    rules: restrict([...TRANSPORT, ...OWNED], [...UPPER_LAYERS, '**/services/*', '**/services']),
  },
  {
    files: ['server/services/**/*.ts'],
    rules: restrict([...TRANSPORT, ...OWNED], UPPER_LAYERS),
  },
  {
    files: ['server/stats/**/*.ts'],
    rules: restrict([ORM, ...TRANSPORT, ...OWNED, { name: 'pg', message: 'stats/ is pure: no I/O.' }], ['../*', '!../domain', '!../domain/*', 'node:*']),
  },
  {
    files: ['server/graphql/**/*.ts'],
    rules: restrict([ORM, ...OWNED], ['**/entities', '**/entities/*', '**/db/*', '**/http/*', '**/http']),
  },
  {
    files: ['schema/**/*.ts'],
    rules: restrict([ORM, ...OWNED], ['**/server/*', '!**/server/domain', '**/server/*/*', '!**/server/domain/*']),
  },
);
