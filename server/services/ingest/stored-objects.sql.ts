import type { EntityManager } from 'typeorm';

/**
 * The lock between committing DICOM batches and removing object files no row references. A batch that commits
 * holds it shared, so a file it found already stored cannot disappear between its check and its commit; clean-up
 * holds it exclusive while it decides which files are unreferenced.
 */
const OBJECT_LOCK = 7_146_319;

/** Takes the object lock shared, until the transaction of `m` ends. */
export async function lockObjectsShared(m: EntityManager): Promise<void> {
  await m.query('SELECT pg_advisory_xact_lock_shared($1)', [OBJECT_LOCK]);
}

/** Takes the object lock exclusive, until the transaction of `m` ends. */
export async function lockObjectsExclusive(m: EntityManager): Promise<void> {
  await m.query('SELECT pg_advisory_xact_lock($1)', [OBJECT_LOCK]);
}

/** Those of `sha256s` a row references: an instance's DICOM object or a model version's ONNX file. */
export async function referencedObjects(m: EntityManager, sha256s: readonly string[]): Promise<Set<string>> {
  const rows: Array<{ sha256: string }> = await m.query(
    'SELECT sha256 FROM instance WHERE sha256 = ANY($1) UNION SELECT sha256 FROM model_version WHERE sha256 = ANY($1)',
    [sha256s],
  );
  return new Set(rows.map((r) => r.sha256.trim()));
}
