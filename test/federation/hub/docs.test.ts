import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildSchema, Kind, parse, validate } from 'graphql';

const ROOT = path.resolve(__dirname, '../../..');
const text = readFileSync(path.join(ROOT, 'docs/federation.md'), 'utf8');

/**
 * The operations docs/federation.md shows a researcher: those in ```graphql blocks (the protocol's SDL excerpt in
 * the same kind of block is skipped) and those inside its curl lines.
 */
function operations(): string[] {
  const fromBlocks = [...text.matchAll(/```graphql\n([\s\S]*?)```/g)].flatMap(([, block]) =>
    parse(block)
      .definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION)
      .map((d) => block.slice(d.loc!.start, d.loc!.end)),
  );
  const fromCurl = [...text.matchAll(/"query":"((?:query|mutation)[^"]*)"/g), ...text.matchAll(/\{query: "((?:query|mutation)[^"]*)"/g)].map(([, op]) => op);
  return [...fromBlocks, ...fromCurl];
}

describe('docs/federation.md', () => {
  const schema = buildSchema(readFileSync(path.join(ROOT, 'schema/schema.graphql'), 'utf8'));
  const examples = operations();

  it('shows the researcher operations', () => {
    expect(examples.length).toBeGreaterThanOrEqual(3);
  });

  it.each(examples.map((e) => [e.split('\n')[0].slice(0, 60), e]))('%s… is valid against the committed schema', (_first, operation) => {
    expect(validate(schema, parse(operation)).map((e) => e.message)).toEqual([]);
  });
});
