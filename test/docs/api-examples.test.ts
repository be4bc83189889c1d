import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildSchema, parse, validate } from 'graphql';

const ROOT = path.resolve(__dirname, '../..');

/** Every operation in the ```graphql blocks of a document (a block may hold several, split at top-level braces). */
function graphqlExamples(file: string): string[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  return [...text.matchAll(/```graphql\n([\s\S]*?)```/g)].flatMap(([, block]) => parse(block).definitions.map((d) => block.slice(d.loc!.start, d.loc!.end)));
}

describe('docs/api.md', () => {
  const schema = buildSchema(readFileSync(path.join(ROOT, 'schema/schema.graphql'), 'utf8'));
  const examples = graphqlExamples('docs/api.md');

  it('has examples', () => {
    expect(examples.length).toBeGreaterThan(20);
  });

  it.each(examples.map((e) => [e.split('\n')[0], e]))('%s… is valid against the committed schema', (_first, operation) => {
    expect(validate(schema, parse(operation)).map((e) => e.message)).toEqual([]);
  });
});
