import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildSchema, Kind, parse, validate } from 'graphql';

const ROOT = path.resolve(__dirname, '../../..');

describe('docs/federation.md node examples', () => {
  const schema = buildSchema(readFileSync(path.join(ROOT, 'schema/schema.graphql'), 'utf8'));
  const text = readFileSync(path.join(ROOT, 'docs/federation.md'), 'utf8');
  // Operations only: the protocol section shows the hub's SDL, which is not the node's schema.
  const operations = [...text.matchAll(/```graphql\n([\s\S]*?)```/g)]
    .map(([, block]) => parse(block))
    .filter((doc) => doc.definitions.every((d) => d.kind === Kind.OPERATION_DEFINITION));

  it('shows every node operation', () => {
    const source = operations.map((o) => o.loc?.source.body ?? '').join('\n');
    for (const field of ['releasePolicy', 'setReleasePolicy', 'federationInbox', 'approveFederationRelease', 'refuseFederationRelease']) {
      expect(source).toContain(`${field}`);
    }
  });

  it.each(operations.map((o) => [o.loc?.source.body.split('\n')[0], o]))('%s… is valid against the committed schema', (_first, document) => {
    expect(validate(schema, document).map((e) => e.message)).toEqual([]);
  });
});
