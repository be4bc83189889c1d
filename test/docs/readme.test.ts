import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ErrorCode, Role } from '../../server/domain';
import { HTTP_STATUS } from '../../server/http/problem';
import { cells, links, proseLines, readDocument, ROOT, tablesUnder, userDocuments } from './markdown';

const README = readDocument('README.md');

/**
 * A citation of the project's own history (an issue number, a closing note): documents describe the product. An
 * issue of another project, named with its repository (`socket.io/socket.io#1277`), is evidence and may stay.
 */
const HISTORY = /\bissues?\s*#?\s*\d+|(?<![\w./-])#\d+\b|closing note/i;

/** The README's n-th command exactly as CI takes it: `.ci/run`'s own `readme_command`, run by bash. */
function ciReadmeCommand(n: number): string {
  const definition = readFileSync(path.join(ROOT, '.ci/run'), 'utf8')
    .split('\n')
    .find((line) => line.startsWith('readme_command()'));
  if (!definition) throw new Error('.ci/run no longer defines readme_command()');
  return execFileSync('bash', ['-c', `${definition}\nreadme_command ${n}`], { cwd: ROOT, encoding: 'utf8' }).trim();
}

describe('README.md', () => {
  it('begins with the two commands CI runs: install and start on the embedded database, then the tests', () => {
    expect(ciReadmeCommand(1)).toBe('npm ci && npm start');
    expect(ciReadmeCommand(2)).toBe('npm test');
  });

  it('cites no issue or closing note, nor does any document in docs/', () => {
    expect(HISTORY.test('What works today (issue 2, the foundation)')).toBe(true);
    expect(HISTORY.test('the closing note of Issue #5')).toBe(true);
    expect(HISTORY.test('fixed in #12')).toBe(true);
    expect(HISTORY.test('a cursor this API did not issue is BAD_USER_INPUT')).toBe(false);
    expect(HISTORY.test('as in socket.io/socket.io#1277')).toBe(false);
    const citations = userDocuments().flatMap((file) =>
      readDocument(file)
        .split('\n')
        .flatMap((line, i) => (HISTORY.test(line) ? [`${file}:${i + 1}: ${line.trim().slice(0, 100)}`] : [])),
    );
    expect(citations).toEqual([]);
  });

  it('lists its capabilities in one table, each row with a link to a runnable example', () => {
    const tables = tablesUnder(README, '## What it does');
    expect(tables).toHaveLength(1);
    const rows = tables[0].slice(2);
    expect(rows.length).toBeGreaterThanOrEqual(10);
    const withoutExample = rows.filter((row) => links(cells(row).at(-1) ?? '').length === 0).map((row) => cells(row)[0]);
    expect(withoutExample).toEqual([]);
  });

  it('says what every role may do', () => {
    const [roles] = tablesUnder(README, '## Using the API');
    const named = roles.slice(2).map((row) => cells(row)[0].replace(/`/g, ''));
    expect(named.sort()).toEqual(Object.values(Role).sort());
    expect(roles.join('\n')).not.toMatch(/reserved/i);
  });

  it('lists every error code with the HTTP status the routes answer it with', () => {
    const [errors] = tablesUnder(README, '### Errors');
    const listed = Object.fromEntries(errors.slice(2).map((row) => [cells(row)[0].replace(/`/g, ''), Number(cells(row)[1])]));
    expect(listed).toEqual(Object.fromEntries(Object.values(ErrorCode).map((code) => [code, HTTP_STATUS[code]])));
  });

  it('keeps the section on the libraries it relies on, each with why', () => {
    const [libraries] = tablesUnder(README, '## Libraries it relies on, and why');
    expect(libraries.length).toBeGreaterThan(10);
    for (const row of libraries.slice(2)) expect(cells(row)[1].length).toBeGreaterThan(20);
  });

  it('reads only prose: a heading inside a fenced block is not a section', () => {
    expect(proseLines('a\n```sh\n## What it does\n```\nb').map((l) => l.text)).toEqual(['a', 'b']);
  });
});
