import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildSchema, parse, validate, type GraphQLSchema } from 'graphql';
import * as documents from '../../web/src/graphql/documents';

const SCHEMA_FILE = path.resolve(__dirname, '../../schema/schema.graphql');

/** The GraphQL documents the web app exports (every string export that parses as an operation). */
const operations = (): Array<[string, string]> =>
  Object.entries(documents as Record<string, unknown>).flatMap(([name, value]): Array<[string, string]> =>
    typeof value === 'string' && /^\s*(query|mutation|subscription)\b/.test(value) ? [[name, value]] : [],
  );

const errorsOf = (schema: GraphQLSchema, source: string): string[] => validate(schema, parse(source)).map((e) => e.message);

describe("the web app's GraphQL documents", () => {
  const schema = buildSchema(readFileSync(SCHEMA_FILE, 'utf8'));

  it('finds the operations of every page', () => {
    expect(operations().map(([name]) => name)).toEqual(
      expect.arrayContaining([
        'VIEWER',
        'JOBS',
        'JOBS_LIVE',
        'START_JOB',
        'CANCEL_JOB',
        'STUDY',
        'FEDERATED_INFERENCES',
        'FEDERATED_JOB_PROGRESS',
        'START_FEDERATED_INFERENCE',
        'CANCEL_FEDERATED_INFERENCE',
      ]),
    );
  });

  it.each(operations())('%s validates against schema/schema.graphql', (_name, source) => {
    expect(errorsOf(schema, source)).toEqual([]);
  });

  it('refuses a document that asks for a field the schema lacks (the check can fail)', () => {
    expect(errorsOf(schema, documents.VIEWER.replace('role', 'role clearance'))).toEqual([expect.stringMatching(/Cannot query field "clearance"/)]);
  });
});
