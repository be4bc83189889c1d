import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { codeSpans, proseLines, readDocument, ROOT } from './markdown';

/**
 * The repository's folders two levels deep (`server`, `server/dicom`, …): those holding a file git tracks or would
 * track (ignored build outputs such as node_modules and dist are left out by .gitignore).
 */
function repositoryFolders(): string[] {
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 })
    .split('\0')
    .filter((file) => file && existsSync(path.join(ROOT, file)));
  const folders = new Set<string>();
  for (const file of files) {
    const parts = file.split('/').slice(0, -1);
    for (let depth = 1; depth <= Math.min(2, parts.length); depth++) folders.add(parts.slice(0, depth).join('/'));
  }
  return [...folders].sort();
}

/** Whether development.md names `folder` as a code span (`server/dicom`, or `server/` for a top-level one). */
function named(document: string, folder: string): boolean {
  const spans = new Set(proseLines(document).flatMap(({ text }) => codeSpans(text)));
  return spans.has(folder) || spans.has(`${folder}/`);
}

/** Folders development.md need not name one by one: `test/<folder>` holds the tests of `server/<folder>`, as its table says. */
const mirrorsServer = (folder: string): boolean => /^test\/[^/]+$/.test(folder) && existsSync(path.join(ROOT, 'server', folder.slice('test/'.length)));

/** The paths a document quotes as code (`server/stats/engine.ts`, `test/docs`), without templates such as `<name>.job.ts` or `*.md`. */
function quotedPaths(document: string): string[] {
  const top = /^(server|schema|test|bench|tools|migrations|model-registry|sites|scripts|docs|\.ci)\//;
  return proseLines(document)
    .flatMap(({ text }) => codeSpans(text))
    .filter((span) => top.test(span) && !/[\s<>*…{}]/.test(span));
}

describe('docs/development.md', () => {
  const development = readDocument('docs/development.md');

  it('finds the folders of the repository (the check can fail)', () => {
    const folders = repositoryFolders();
    expect(folders).toEqual(expect.arrayContaining(['server', 'server/dicom', 'test/api', 'tools/lint', '.ci']));
    expect(folders).not.toContain('node_modules');
    expect(folders.some((f) => f.split('/').length > 2)).toBe(false);
    expect(named('| `server/` | x |\n| `server/dicom` | y |', 'server')).toBe(true);
    expect(named('the `server/dicom/reader.ts` module', 'server/dicom')).toBe(false);
  });

  it('names every folder of the repository in its table', () => {
    expect(repositoryFolders().filter((folder) => !named(development, folder) && !mirrorsServer(folder))).toEqual([]);
  });
});

describe.each(['README.md', 'docs/architecture.md', 'docs/development.md'])('%s', (file) => {
  it('quotes only paths that exist', () => {
    const paths = quotedPaths(readDocument(file));
    expect(paths.length).toBeGreaterThan(file === 'README.md' ? 3 : 20);
    expect(paths.filter((p) => !existsSync(path.join(ROOT, p)))).toEqual([]);
  });
});
