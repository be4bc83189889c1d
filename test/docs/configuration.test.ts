import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { cells, readDocument, ROOT, tablesUnder } from './markdown';

/** Every TypeScript file under `folder`, recursively. */
function sources(folder: string): string[] {
  return readdirSync(path.join(ROOT, folder), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

/**
 * The environment variables a body of code reads: `env.NAME`, `env['NAME']`, and the names `server/config/config.ts`
 * hands its readers (`integer(env, 'NAME', …)`).
 */
function variablesRead(code: string): Set<string> {
  const names = new Set<string>();
  for (const m of code.matchAll(/\benv(?:\.([A-Z][A-Z0-9_]+)|\[\s*['"]([A-Z][A-Z0-9_]+)['"]\s*\])/g)) names.add(m[1] ?? m[2]);
  for (const m of code.matchAll(/\(\s*env\s*,\s*'([A-Z][A-Z0-9_]+)'/g)) names.add(m[1]);
  return names;
}

/** The variables named in the first column of configuration.md's table. */
function documented(): Set<string> {
  const [table] = tablesUnder(readDocument('docs/configuration.md'), '# Configuration');
  return new Set(table.slice(2).flatMap((row) => [...cells(row)[0].matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1])));
}

describe('docs/configuration.md', () => {
  const server = sources('server').map((file) => readFileSync(file, 'utf8'));
  const tests = sources('test').map((file) => readFileSync(file, 'utf8'));
  const readByServer = new Set(server.flatMap((code) => [...variablesRead(code)]));
  const readAnywhere = new Set([...readByServer, ...tests.flatMap((code) => [...variablesRead(code)])]);

  it('finds variables however the code reads them (the check can fail)', () => {
    expect([...variablesRead("const a = process.env.FACET_URL; const b = env['X_Y']; integer(env, 'FACET_Z', 1)")].sort()).toEqual([
      'FACET_URL',
      'FACET_Z',
      'X_Y',
    ]);
    expect([...readByServer]).toEqual(expect.arrayContaining(['DATABASE_URL', 'PORT', 'FACET_MAX_STOW_BYTES', 'FACET_URL']));
  });

  it('documents every environment variable the node and its CLI read', () => {
    const missing = [...readByServer].filter((name) => !documented().has(name));
    expect(missing.sort()).toEqual([]);
  });

  it('documents no variable that nothing reads any more', () => {
    expect([...documented()].filter((name) => !readAnywhere.has(name)).sort()).toEqual([]);
  });
});
