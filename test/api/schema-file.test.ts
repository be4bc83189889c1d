import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DataSource } from 'typeorm';
import { createSchema, SCHEMA_FILE } from '../../server/graphql/schema';
import { createServices } from '../../server/services';

describe('schema/schema.graphql', () => {
  it('matches the schema the code builds (run `npm run schema:emit` and commit when this fails)', async () => {
    const emitted = path.join(os.tmpdir(), `facet-schema-${process.pid}.graphql`);
    await createSchema(createServices(new DataSource({ type: 'postgres' }), { objectRoot: os.tmpdir() }), { emitSchemaFile: emitted });
    expect(await readFile(emitted, 'utf8')).toBe(await readFile(SCHEMA_FILE, 'utf8'));
  });
});
