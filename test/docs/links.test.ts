import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { anchors, links, readDocument, ROOT, slug, userDocuments } from './markdown';

/** Where a link points, as a path from the root and an anchor; null for a link that leaves the repository. */
function resolveLink(from: string, target: string): { file: string; anchor: string | null } | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return null;
  const [pathPart, anchor = null] = target.split('#', 2) as [string, string?];
  const file = pathPart === '' ? from : path.relative(ROOT, path.resolve(ROOT, path.dirname(from), decodeURIComponent(pathPart)));
  return { file, anchor: anchor === null ? null : decodeURIComponent(anchor) };
}

/** Every problem with the relative links of `from`: a missing file or folder, or an anchor no heading makes. */
function brokenLinks(from: string, text = readDocument(from)): string[] {
  return links(text).flatMap(({ line, target }) => {
    const resolved = resolveLink(from, target);
    if (!resolved) return [];
    const where = `${from}:${line} → ${target}`;
    if (resolved.file.startsWith('..') || !existsSync(path.join(ROOT, resolved.file))) return [`${where}: no such file or folder`];
    if (resolved.anchor === null) return [];
    if (!resolved.file.endsWith('.md') || statSync(path.join(ROOT, resolved.file)).isDirectory())
      return [`${where}: an anchor into a file that is not Markdown`];
    return anchors(readDocument(resolved.file)).has(resolved.anchor) ? [] : [`${where}: ${resolved.file} has no heading with that anchor`];
  });
}

describe('relative links of the README and docs/*.md', () => {
  it('reads links of every form the documents use, so a link cannot be missed', () => {
    const found = links(
      ['[a](docs/a.md)', '[`b`](../b.md#part "title") and [c](<c.md>)', 'text `[x](not-a-link.md)`', '```', '[y](inside-a-fence.md)', '```'].join('\n'),
    ).map((l) => l.target);
    expect(found).toEqual(['docs/a.md', '../b.md#part', 'c.md']);
  });

  it('makes anchors as GitHub does', () => {
    expect(slug('Tokens: expiry, revocation, the end of subscriptions (ADMIN)')).toBe('tokens-expiry-revocation-the-end-of-subscriptions-admin');
    expect(slug('`FACET_MIN_GROUP_PATIENTS` and **disclosure**')).toBe('facet_min_group_patients-and-disclosure');
    expect(slug('3.1 Transport')).toBe('31-transport');
    expect([...anchors('# A\n## A\n```\n# not a heading\n```\n### A')]).toEqual(['a', 'a-1', 'a-2']);
  });

  it('finds a missing file, a missing anchor and a link out of the repository (the check can fail)', () => {
    const text = [
      '[ok](api.md) [ok](api.md#errors) [ok](#errors) [ok](examples/cohort) [ok](https://example.org/missing.md)',
      '[missing](no-such-document.md) [anchor](api.md#no-such-heading) [outside](../../elsewhere.md) [not markdown](../package.json#x)',
    ].join('\n');
    expect(brokenLinks('docs/api.md', text)).toEqual([
      'docs/api.md:2 → no-such-document.md: no such file or folder',
      'docs/api.md:2 → api.md#no-such-heading: docs/api.md has no heading with that anchor',
      'docs/api.md:2 → ../../elsewhere.md: no such file or folder',
      'docs/api.md:2 → ../package.json#x: an anchor into a file that is not Markdown',
    ]);
  });

  it.each(userDocuments())('%s: every relative link reaches an existing file, folder and heading', (file) => {
    expect(brokenLinks(file)).toEqual([]);
  });
});
