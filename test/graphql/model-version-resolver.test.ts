import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { getMetadataStorage } from 'type-graphql';
import { ModelVersionResolver } from '../../server/graphql/resolvers/model-version.resolver';
import { StatisticsResolver } from '../../server/graphql/resolvers/statistics.resolver';

/** The root fields each resolver class declares, from type-graphql's metadata (the classes are imported above). */
function fieldsOf(target: Function): string[] {
  const storage = getMetadataStorage();
  return [...storage.queries, ...storage.mutations]
    .filter((f) => f.target === target)
    .map((f) => f.schemaName)
    .sort();
}

describe(ModelVersionResolver.name, () => {
  it('owns the model-version queries and mutations; StatisticsResolver keeps only the statistics', () => {
    expect(fieldsOf(ModelVersionResolver)).toEqual(['importPredictions', 'modelVersion', 'modelVersions', 'registerExternalModel']);
    expect(fieldsOf(StatisticsResolver)).toEqual(['agreement', 'compare', 'metrics', 'studyFlow']);
  });

  it('keeps the model-version GraphQL types out of metrics.type.ts', async () => {
    const metricsTypes = await readFile(path.resolve(__dirname, '../../schema/types/metrics.type.ts'), 'utf8');
    expect(metricsTypes).not.toMatch(/ObjectType\('ModelVersion/);
    const modelTypes = await readFile(path.resolve(__dirname, '../../schema/types/model-version.type.ts'), 'utf8');
    expect(modelTypes).toMatch(/ObjectType\('ModelVersion'/);
    expect(modelTypes).toMatch(/ObjectType\('ModelVersionConnection'/);
  });
});
