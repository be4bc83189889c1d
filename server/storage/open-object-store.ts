import { FileObjectStore } from './file-object-store';
import type { ObjectStore } from './object-store';
import { S3ObjectStore, type S3Settings } from './s3-object-store';

/** Which backend holds a node's objects (Config's objectStore, from FACET_OBJECT_STORE and the FACET_S3_* settings). */
export type ObjectStoreSettings = { kind: 'file'; root: string } | ({ kind: 's3' } & S3Settings);

/** The object store the settings name. */
export function openObjectStore(settings: ObjectStoreSettings): ObjectStore {
  if (settings.kind === 's3') return new S3ObjectStore(settings);
  return new FileObjectStore(settings.root);
}
