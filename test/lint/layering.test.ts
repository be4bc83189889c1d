import { spawnSync } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

/** Lints `source` as if it lived at `file`, with the repo's ESLint config; returns the messages. */
function lint(file: string, source: string): string {
  const result = spawnSync(path.join(ROOT, 'node_modules/.bin/eslint'), ['-c', 'tools/lint/eslint.config.mjs', '--stdin', '--stdin-filename', file], {
    cwd: ROOT,
    input: source,
    encoding: 'utf8',
  });
  return result.stdout + result.stderr;
}

describe('STYLE.md layering (ESLint no-restricted-imports)', () => {
  it.each([
    ['a resolver importing TypeORM', 'server/graphql/resolvers/x.resolver.ts', `import { In } from 'typeorm';\nexport const x = In;\n`],
    ['a resolver importing an entity at runtime', 'server/graphql/resolvers/x.resolver.ts', `import { Site } from '../../entities';\nexport const x = Site;\n`],
    ['a service importing type-graphql', 'server/services/x.service.ts', `import { Field } from 'type-graphql';\nexport const x = Field;\n`],
    [
      'a service importing the GraphQL layer',
      'server/services/x.service.ts',
      `import { authChecker } from '../graphql/auth-checker';\nexport const x = authChecker;\n`,
    ],
    [
      'an entity importing a service',
      'server/entities/x.entity.ts',
      `import { SiteService } from '../services/site.service';\nexport const x = SiteService;\n`,
    ],
    ['domain importing anything outside itself', 'server/domain/x.ts', `import { AppError } from '../errors/app-error';\nexport const x = AppError;\n`],
    ['a service importing dcmjs (only server/dicom does)', 'server/services/x.service.ts', `import { data } from 'dcmjs';\nexport const x = data;\n`],
    [
      'schema importing a service',
      'schema/types/x.type.ts',
      `import { SiteService } from '../../server/services/site.service';\nexport const x = SiteService;\n`,
    ],
  ])('rejects %s', (_label, file, source) => {
    expect(lint(file, source)).toMatch(/no-restricted-imports/);
  });

  it('allows type-only imports and the permitted direction', () => {
    const source = `import type { Site } from '../../server/entities';\nimport { Role } from '../../server/domain';\nexport const x: [Site | null, Role] = [null, Role.ADMIN];\n`;
    expect(lint('schema/types/x.type.ts', source)).not.toMatch(/no-restricted-imports/);
  });
});
