import path from 'node:path';
import { loadConfig } from '../../server/config/config';

describe('loadConfig', () => {
  it('uses the documented defaults for an empty environment', () => {
    expect(loadConfig({})).toMatchObject({
      databaseUrl: null,
      host: '127.0.0.1',
      port: 4000,
      dataDir: path.resolve('.facet-data'),
      embeddedPostgresPort: 54329,
      introspection: true,
      maxQueryDepth: 12,
      maxAliases: 30,
      maxBodyBytes: 16 * 1024 * 1024,
      maxAnonymousBodyBytes: 8 * 1024,
      maxQueryTokens: 5000,
    });
  });

  it('treats empty strings as unset', () => {
    expect(loadConfig({ DATABASE_URL: '', HOST: '', PORT: '', FACET_INTROSPECTION: '', FACET_MAX_QUERY_DEPTH: '' })).toMatchObject({
      databaseUrl: null,
      host: '127.0.0.1',
      port: 4000,
      introspection: true,
      maxQueryDepth: 12,
    });
  });

  it('passes DATABASE_URL through unchanged', () => {
    const url = 'postgres://facet:secret@db.example.org:6543/facet?sslmode=require';
    expect(loadConfig({ DATABASE_URL: url }).databaseUrl).toBe(url);
  });

  it('reads the other variables', () => {
    expect(
      loadConfig({
        HOST: '0.0.0.0',
        PORT: '8080',
        FACET_DATA_DIR: '/var/lib/facet',
        FACET_EMBEDDED_PG_PORT: '6000',
        FACET_MAX_QUERY_DEPTH: '8',
        FACET_MAX_ALIASES: '5',
        FACET_MAX_BODY_BYTES: '2048',
        FACET_MAX_ANONYMOUS_BODY_BYTES: '512',
        FACET_MAX_QUERY_TOKENS: '900',
      }),
    ).toMatchObject({
      databaseUrl: null,
      host: '0.0.0.0',
      port: 8080,
      dataDir: '/var/lib/facet',
      embeddedPostgresPort: 6000,
      introspection: true,
      maxQueryDepth: 8,
      maxAliases: 5,
      maxBodyBytes: 2048,
      maxAnonymousBodyBytes: 512,
      maxQueryTokens: 900,
    });
    expect(loadConfig({ PORT: '0' }).port).toBe(0);
  });

  it('resolves a relative FACET_DATA_DIR against the working directory', () => {
    expect(loadConfig({ FACET_DATA_DIR: 'data/facet' }).dataDir).toBe(path.resolve('data/facet'));
  });

  it.each(['abc', '-1', '1.5', '4000abc', ' ', '0x1F', '1e3', '70000'])('rejects PORT=%j naming the variable', (value) => {
    expect(() => loadConfig({ PORT: value })).toThrow(/PORT/);
    expect(() => loadConfig({ PORT: value })).toThrow(JSON.stringify(value));
  });

  it.each([
    'FACET_EMBEDDED_PG_PORT',
    'FACET_MAX_QUERY_DEPTH',
    'FACET_MAX_ALIASES',
    'FACET_MAX_QUERY_COST',
    'FACET_MAX_BODY_BYTES',
    'FACET_MAX_ANONYMOUS_BODY_BYTES',
    'FACET_MAX_QUERY_TOKENS',
  ])('rejects a non-integer %s naming it', (name) => {
    expect(() => loadConfig({ [name]: 'lots' })).toThrow(name);
    expect(() => loadConfig({ [name]: '-3' })).toThrow(name);
  });

  it('reads the disclosure policy: a minimum group of 5 patients and a 0.05 ROC grid by default', () => {
    expect(loadConfig({})).toMatchObject({ minGroupPatients: 5, rocGridSteps: 20 });
    expect(loadConfig({ FACET_MIN_GROUP_PATIENTS: '10', FACET_ROC_GRID_STEPS: '10' })).toMatchObject({ minGroupPatients: 10, rocGridSteps: 10 });
  });

  it.each(['FACET_MIN_GROUP_PATIENTS', 'FACET_ROC_GRID_STEPS'])('rejects %s of 0 (no control at all), a fraction or a word, naming it', (name) => {
    for (const value of ['0', '2.5', 'five', '-1']) expect(() => loadConfig({ [name]: value })).toThrow(name);
  });

  it('reads the DICOM limits (FACET_DICOM_MAX_ELEMENTS, FACET_DICOM_MAX_DEPTH up to 128) with their documented defaults', () => {
    expect(loadConfig({})).toMatchObject({ dicomMaxElements: 100_000, dicomMaxDepth: 16 });
    expect(loadConfig({ FACET_DICOM_MAX_ELEMENTS: '300000', FACET_DICOM_MAX_DEPTH: '32' })).toMatchObject({ dicomMaxElements: 300_000, dicomMaxDepth: 32 });
    expect(() => loadConfig({ FACET_DICOM_MAX_DEPTH: '129' })).toThrow(/FACET_DICOM_MAX_DEPTH/);
    expect(() => loadConfig({ FACET_DICOM_MAX_ELEMENTS: 'many' })).toThrow(/FACET_DICOM_MAX_ELEMENTS/);
  });

  it('reads the metrics settings: no scrape token and no port of their own by default', () => {
    expect(loadConfig({})).toMatchObject({ metricsToken: null, metricsPort: null, metricsHost: '127.0.0.1' });
    const token = 'a'.repeat(32);
    expect(loadConfig({ FACET_METRICS_TOKEN: token, FACET_METRICS_PORT: '9464', FACET_METRICS_HOST: '0.0.0.0' })).toMatchObject({
      metricsToken: token,
      metricsPort: 9464,
      metricsHost: '0.0.0.0',
    });
    for (const weak of ['short', 'a'.repeat(31), `${'a'.repeat(32)} b`]) expect(() => loadConfig({ FACET_METRICS_TOKEN: weak })).toThrow(/FACET_METRICS_TOKEN/);
    for (const port of ['65536', 'nine', '-1']) expect(() => loadConfig({ FACET_METRICS_PORT: port })).toThrow(/FACET_METRICS_PORT/);
  });

  it.each(['false', '0', 'no', 'FALSE', 'No'])('turns introspection off for FACET_INTROSPECTION=%j', (value) => {
    expect(loadConfig({ FACET_INTROSPECTION: value }).introspection).toBe(false);
  });

  it.each(['true', '1', 'yes', 'TRUE'])('turns introspection on for FACET_INTROSPECTION=%j', (value) => {
    expect(loadConfig({ FACET_INTROSPECTION: value }).introspection).toBe(true);
  });

  it.each(['maybe', 'off', 'on', '2'])('rejects FACET_INTROSPECTION=%j naming the variable', (value) => {
    expect(() => loadConfig({ FACET_INTROSPECTION: value })).toThrow(/FACET_INTROSPECTION must be true or false/);
  });

  it('reads process.env when called without an argument', () => {
    const saved = process.env.PORT;
    process.env.PORT = '4321';
    try {
      expect(loadConfig().port).toBe(4321);
    } finally {
      if (saved === undefined) delete process.env.PORT;
      else process.env.PORT = saved;
    }
  });

  describe('the object store', () => {
    const S3 = { FACET_OBJECT_STORE: 's3', FACET_S3_BUCKET: 'facet-objects' };

    it('keeps objects under the data directory by default, and in a bucket with FACET_OBJECT_STORE=s3', () => {
      expect(loadConfig({ FACET_DATA_DIR: '/srv/facet' }).objectStore).toEqual({ kind: 'file', root: '/srv/facet/objects' });
      expect(loadConfig({ FACET_OBJECT_STORE: 'FILE' }).objectStore.kind).toBe('file');
      expect(loadConfig(S3).objectStore).toEqual({
        kind: 's3',
        bucket: 'facet-objects',
        prefix: 'objects/',
        endpoint: null,
        region: null,
        forcePathStyle: false,
      });
      expect(
        loadConfig({
          ...S3,
          FACET_S3_ENDPOINT: 'https://minio.example.org:9000',
          FACET_S3_REGION: 'eu-central-1',
          FACET_S3_FORCE_PATH_STYLE: 'yes',
          FACET_S3_PREFIX: 'east',
        }).objectStore,
      ).toEqual({
        kind: 's3',
        bucket: 'facet-objects',
        prefix: 'east/',
        endpoint: 'https://minio.example.org:9000',
        region: 'eu-central-1',
        forcePathStyle: true,
      });
      expect(loadConfig({ ...S3, FACET_S3_PREFIX: '' }).objectStore).toMatchObject({ prefix: '' });
    });

    it('refuses an unknown backend, a missing or malformed bucket, an endpoint that is not an http(s) URL and a path style that is not a flag', () => {
      for (const kind of ['S4', 'disk', 'gcs'])
        expect(() => loadConfig({ FACET_OBJECT_STORE: kind })).toThrow(`FACET_OBJECT_STORE must be file or s3, got ${JSON.stringify(kind)}`);
      for (const bucket of [undefined, '', 'ab', 'Facet', 'a_b_c', '-facet', 'facet-', 'x'.repeat(64)]) {
        expect(() => loadConfig({ FACET_OBJECT_STORE: 's3', FACET_S3_BUCKET: bucket })).toThrow(/FACET_S3_BUCKET must name a bucket/);
      }
      for (const endpoint of ['minio:9000x', 'ftp://minio', 'not a url', '/relative']) {
        expect(() => loadConfig({ ...S3, FACET_S3_ENDPOINT: endpoint })).toThrow(/FACET_S3_ENDPOINT must be the store's http\(s\) URL/);
      }
      expect(() => loadConfig({ ...S3, FACET_S3_FORCE_PATH_STYLE: 'sometimes' })).toThrow('FACET_S3_FORCE_PATH_STYLE must be true or false');
    });
  });
});
