import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildSchema, Kind, parse, validate } from 'graphql';
import { readDocument, ROOT, userDocuments } from './markdown';

/**
 * Every operation in the ```graphql blocks of a document (a block may hold several, split at top-level braces).
 * Type definitions (a proposed schema, as federation.md's) are not operations and are left out.
 */
function graphqlExamples(file: string): string[] {
  const text = readDocument(file);
  return [...text.matchAll(/```graphql\n([\s\S]*?)```/g)].flatMap(([, block]) =>
    parse(block)
      .definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION)
      .map((d) => block.slice(d.loc!.start, d.loc!.end)),
  );
}

const schema = buildSchema(readFileSync(path.join(ROOT, 'schema/schema.graphql'), 'utf8'));
const errorsOf = (operation: string): string[] => validate(schema, parse(operation)).map((e) => e.message);

describe('GraphQL examples of the README and docs/*.md', () => {
  it('docs/api.md walks through the API with examples', () => {
    expect(graphqlExamples('docs/api.md').length).toBeGreaterThan(20);
  });

  it('refuses an example the schema does not have (the check can fail)', () => {
    expect(errorsOf('query { metrics(input: { rater: {} }) { noSuchField } }')).toEqual(['Cannot query field "noSuchField" on type "MetricsResult".']);
  });

  const examples = userDocuments().flatMap((file) => graphqlExamples(file).map((operation) => [file, operation.split('\n')[0], operation]));
  it.each(examples)('%s: %s… is valid against the committed schema', (_file, _first, operation) => {
    expect(errorsOf(operation)).toEqual([]);
  });
});
