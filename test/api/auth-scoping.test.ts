import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildSchema, type GraphQLObjectType } from 'graphql';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { ExclusionReason, Modality, ReaderRole, Role } from '../../server/domain';
import { Instance, JointImage, Series, Study, type Joint, type Patient, type Reader, type Site } from '../../server/entities';
import { hashToken } from '../../server/services/token.service';
import { Factory } from '../helpers/factories';
import { codeOf, gql, gqlOk, gqlOverWebSocket, type GraphQLResponse } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';

const RECORD = `mutation ($input: RecordReadingInput!) { recordReading(input: $input) { id } }`;
const ADJUDICATE = `mutation ($input: AdjudicateInput!) { adjudicate(input: $input) { id } }`;
const CREATE_TOKEN = `mutation ($input: CreateApiTokenInput!) { createApiToken(input: $input) { secret token { id name role siteId readerId revokedAt } } }`;
const REVOKE_TOKEN = `mutation ($id: ID!) { revokeApiToken(id: $id) { id revokedAt } }`;
const CREATE_PATIENT = `mutation ($input: CreatePatientInput!) { createPatient(input: $input) { id siteId } }`;
const CREATE_READER = `mutation ($input: CreateReaderInput!) { createReader(input: $input) { id siteId } }`;
const SITES = `{ sites { totalCount nodes { id code } } }`;
const PATIENT_IDS = `query ($filter: PatientFilter) { patients(first: 500, filter: $filter) { totalCount nodes { id siteId } } }`;

/** The ids of one table's rows that belong to a site, straight from the database. */
const ROWS_OF_SITE = {
  patient: `SELECT p.id FROM patient p WHERE p.site_id = $1`,
  joint: `SELECT j.id FROM joint j JOIN patient p ON p.id = j.patient_id WHERE p.site_id = $1`,
  reading: `SELECT r.id FROM reading r JOIN joint j ON j.id = r.joint_id JOIN patient p ON p.id = j.patient_id WHERE p.site_id = $1`,
  reference_grade: `SELECT r.id FROM reference_grade r JOIN joint j ON j.id = r.joint_id JOIN patient p ON p.id = j.patient_id WHERE p.site_id = $1`,
  adjudication: `SELECT a.id FROM adjudication a JOIN joint j ON j.id = a.joint_id JOIN patient p ON p.id = j.patient_id WHERE p.site_id = $1`,
  study: `SELECT s.id FROM study s JOIN patient p ON p.id = s.patient_id WHERE p.site_id = $1`,
  series: `SELECT se.id FROM series se JOIN study s ON s.id = se.study_id JOIN patient p ON p.id = s.patient_id WHERE p.site_id = $1`,
  instance: `SELECT i.id FROM instance i JOIN series se ON se.id = i.series_id JOIN study s ON s.id = se.study_id JOIN patient p ON p.id = s.patient_id WHERE p.site_id = $1`,
  joint_image: `SELECT ji.id FROM joint_image ji JOIN joint j ON j.id = ji.joint_id JOIN patient p ON p.id = j.patient_id WHERE p.site_id = $1`,
  split_assignment: `SELECT sa.id FROM split_assignment sa JOIN patient p ON p.id = sa.patient_id WHERE p.site_id = $1`,
} as const;

type Table = keyof typeof ROWS_OF_SITE;

interface ReaderWithToken {
  reader: Reader;
  token: string;
}

/** One site's cohort: patients, readers with readings, a reference grade, a disagreement, an adjudication, imaging. */
interface SiteWorld {
  site: Site;
  patients: Patient[];
  joint: Joint;
  readers: ReaderWithToken[];
  adjudicator: ReaderWithToken;
  coordinator: string;
  coordinatorTokenId: string;
  readingId: string;
  instanceId: string;
}

interface AuditNode {
  action: string;
  actorRole: string | null;
  actorTokenId: string | null;
  entityType: string;
  entityId: string | null;
  siteId: string | null;
  requestId: string;
  clientRequestId: string | null;
  details: Record<string, any>;
}

/** POST /graphql with exactly the headers given (no helper-added Authorization), as a misbehaving client would. */
async function post(url: string, headers: Record<string, string>, query: string, variables: Record<string, unknown> = {}): Promise<GraphQLResponse> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as GraphQLResponse;
}

let uidCounter = 0;
const uid = (): string => `1.2.826.0.1.3680043.10.1234.${process.pid}.${++uidCounter}`;

describe('authentication, roles and site scoping', () => {
  const node = useTestNode();
  let factory: Factory;
  let admin: string;
  let adminTokenId: string;
  let statistician: string;
  let engineer: string;
  let A: SiteWorld;
  let B: SiteWorld;
  let splitVersionId: string;

  const url = (): string => node().url;
  const count = async (sql: string, params: unknown[] = []): Promise<number> => (await node().dataSource.query(sql, params))[0].n;
  const auditCount = (): Promise<number> => count('SELECT count(*)::int AS n FROM audit_event');
  const idsOf = async (table: Table, siteId: string): Promise<Set<string>> =>
    new Set((await node().dataSource.query(ROWS_OF_SITE[table], [siteId])).map((r: { id: string }) => r.id));
  const tokenIdOf = async (secret: string): Promise<string> =>
    (await node().dataSource.query('SELECT id FROM api_token WHERE token_hash = $1', [hashToken(secret)]))[0].id;

  /** Every audit event with one of `actions`, across pages (ADMIN). */
  async function auditEvents(actions: string[]): Promise<AuditNode[]> {
    const nodes: AuditNode[] = [];
    let after: string | null = null;
    do {
      const data: Record<string, any> = await gqlOk(
        url(),
        admin,
        `query ($actions: [String!], $after: String) {
          auditEvents(actions: $actions, first: 500, after: $after) {
            nodes { action actorRole actorTokenId entityType entityId siteId requestId clientRequestId details }
            pageInfo { endCursor hasNextPage }
          }
        }`,
        { actions, after },
      );
      nodes.push(...data.auditEvents.nodes);
      after = data.auditEvents.pageInfo.hasNextPage ? data.auditEvents.pageInfo.endCursor : null;
    } while (after);
    return nodes;
  }

  async function createToken(input: Record<string, unknown>): Promise<{ id: string; secret: string }> {
    const data = await gqlOk(url(), admin, CREATE_TOKEN, { input: { name: `t-${randomUUID().slice(0, 8)}`, ...input } });
    return { id: data.createApiToken.token.id, secret: data.createApiToken.secret };
  }

  /** Imaging rows as ingest would write them (ingest does not exist yet): study, CT series, instance, joint image. */
  async function addImaging(patient: Patient, joint: Joint): Promise<string> {
    const ds = node().dataSource;
    const study = await ds
      .getRepository(Study)
      .save({ patientId: patient.id, studyInstanceUid: uid(), studyDate: '2021-03-04', description: 'CT lumbar spine' });
    const series = await ds
      .getRepository(Series)
      .save({ studyId: study.id, seriesInstanceUid: uid(), modality: Modality.CT, seriesNumber: 1, description: 'axial' });
    const sopInstanceUid = uid();
    const instance = await ds.getRepository(Instance).save({
      seriesId: series.id,
      sopInstanceUid,
      sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
      instanceNumber: 1,
      rows: 512,
      columns: 512,
      numberOfFrames: 1,
      bitsAllocated: 16,
      samplesPerPixel: 1,
      photometricInterpretation: 'MONOCHROME2',
      transferSyntaxUid: '1.2.840.10008.1.2.1',
      sha256: createHash('sha256').update(sopInstanceUid).digest('hex'),
      sizeBytes: 524_288,
    });
    await ds.getRepository(JointImage).save({ jointId: joint.id, instanceId: instance.id, frame: 0, roiX: 100, roiY: 120, roiWidth: 64, roiHeight: 64 });
    return instance.id;
  }

  async function buildSite(code: string): Promise<SiteWorld> {
    const site = await factory.site(code);
    const patients = [await factory.patient(site), await factory.patient(site), await factory.patient(site)];
    const [joint] = await factory.joints(patients[0]);
    const readers = [await factory.readerWithToken(site), await factory.readerWithToken(site)];
    const adjudicator = await factory.readerWithToken(site, ReaderRole.ADJUDICATOR);
    const coordinator = await factory.token(Role.COORDINATOR, { site });
    const record = async (reader: ReaderWithToken, modality: string, feature: string, grade: number): Promise<string> =>
      (await gqlOk(url(), reader.token, RECORD, { input: { jointId: joint.id, modality, feature, grade } })).recordReading.id;
    // Two agreeing readings: an AGREEMENT reference grade.
    const readingId = await record(readers[0], 'CT', 'OSTEOPHYTES', 1);
    await record(readers[1], 'CT', 'OSTEOPHYTES', 1);
    // A disagreement left in the adjudication queue.
    await record(readers[0], 'CT', 'HYPERTROPHY', 1);
    await record(readers[1], 'CT', 'HYPERTROPHY', 0);
    // A disagreement the site's adjudicator decides.
    await record(readers[0], 'MR', 'OSTEOPHYTES', 2);
    await record(readers[1], 'MR', 'OSTEOPHYTES', 0);
    await gqlOk(url(), adjudicator.token, ADJUDICATE, { input: { jointId: joint.id, modality: 'MR', feature: 'OSTEOPHYTES', grade: 1, rationale: 'Re-read' } });
    const instanceId = await addImaging(patients[0], joint);
    return { site, patients, joint, readers, adjudicator, coordinator, coordinatorTokenId: await tokenIdOf(coordinator), readingId, instanceId };
  }

  beforeAll(async () => {
    factory = new Factory(node().services);
    admin = await factory.token(Role.ADMIN);
    adminTokenId = await tokenIdOf(admin);
    statistician = await factory.token(Role.STATISTICIAN);
    engineer = await factory.token(Role.ENGINEER);
    A = await buildSite('SITE-A');
    B = await buildSite('SITE-B');
    const split = await gqlOk(url(), admin, `mutation { createSplitVersion(input: { name: "v1", seed: 42 }) { id } }`);
    splitVersionId = split.createSplitVersion.id;
  });

  describe('authentication', () => {
    it('rejects a request without a token with UNAUTHENTICATED', async () => {
      const response = await gql(url(), null, SITES);
      expect(codeOf(response)).toBe('UNAUTHENTICATED');
      expect(response.data).toBeNull();
    });

    it.each([
      ['an empty Bearer scheme', () => 'Bearer'],
      ['a Basic scheme', () => `Basic ${Buffer.from('admin:admin').toString('base64')}`],
      ['a valid secret without the Bearer scheme', () => admin],
      ['a valid secret followed by junk', () => `Bearer ${admin} extra`],
      ['a secret without the fct_ prefix', () => `Bearer ${admin.slice('fct_'.length)}`],
    ])('rejects a malformed Authorization header (%s) with UNAUTHENTICATED', async (_label, header) => {
      const response = await post(url(), { authorization: header() }, SITES);
      expect(codeOf(response)).toBe('UNAUTHENTICATED');
      expect(response.data).toBeNull();
    });

    it('rejects an unknown fct_ token with UNAUTHENTICATED', async () => {
      const response = await gql(url(), `fct_${randomUUID().replace(/-/g, '')}`, SITES);
      expect(codeOf(response)).toBe('UNAUTHENTICATED');
      expect(codeOf(await gql(url(), `fct_${randomUUID()}`, PATIENT_IDS))).toBe('UNAUTHENTICATED');
    });

    it('accepts a valid token and rejects it with UNAUTHENTICATED once revokeApiToken revoked it', async () => {
      const { id, secret } = await createToken({ role: 'COORDINATOR', siteId: A.site.id });
      expect((await gqlOk(url(), secret, SITES)).sites.totalCount).toBeGreaterThanOrEqual(2);
      expect((await gqlOk(url(), secret, PATIENT_IDS)).patients.totalCount).toBeGreaterThan(0);

      const revoked = await gqlOk(url(), admin, REVOKE_TOKEN, { id });
      expect(revoked.revokeApiToken).toMatchObject({ id });
      expect(revoked.revokeApiToken.revokedAt).not.toBeNull();

      expect(codeOf(await gql(url(), secret, SITES))).toBe('UNAUTHENTICATED');
      expect(codeOf(await gql(url(), secret, PATIENT_IDS))).toBe('UNAUTHENTICATED');
      expect(codeOf(await gql(url(), admin, REVOKE_TOKEN, { id }))).toBe('NOT_FOUND');
    });
  });

  describe('roles', () => {
    const STATISTICIAN_DENIED: Array<[string, string, () => Record<string, unknown>]> = [
      ['patients', `{ patients { totalCount } }`, () => ({})],
      ['patient', `query ($id: ID!) { patient(id: $id) { id } }`, () => ({ id: A.patients[0].id })],
      ['readings', `{ readings { totalCount } }`, () => ({})],
      ['reading', `query ($id: ID!) { reading(id: $id) { id } }`, () => ({ id: A.readingId })],
      ['joints', `{ joints { totalCount } }`, () => ({})],
      ['joint', `query ($id: ID!) { joint(id: $id) { id } }`, () => ({ id: A.joint.id })],
      ['referenceGrades', `{ referenceGrades { totalCount } }`, () => ({})],
      ['studies', `{ studies { totalCount } }`, () => ({})],
      ['instances', `{ instances { totalCount } }`, () => ({})],
      ['jointImages', `{ jointImages { totalCount } }`, () => ({})],
      ['splitAssignments', `query ($v: ID!) { splitAssignments(filter: { splitVersionId: $v }) { totalCount } }`, () => ({ v: splitVersionId })],
    ];

    it.each(STATISTICIAN_DENIED)('rejects the patient-level query %s for a STATISTICIAN with FORBIDDEN', async (_field, query, variables) => {
      const response = await gql(url(), statistician, query, variables());
      expect(codeOf(response)).toBe('FORBIDDEN');
      expect(response.data).toBeNull();
    });

    it('lets a STATISTICIAN read sites and split counts, which are not patient-level', async () => {
      expect((await gqlOk(url(), statistician, SITES)).sites.totalCount).toBeGreaterThanOrEqual(2);
      const counts = await gqlOk(url(), statistician, `query ($id: ID!) { splitVersion(id: $id) { counts { siteId patients } } }`, { id: splitVersionId });
      expect(new Set(counts.splitVersion.counts.map((c: { siteId: string }) => c.siteId))).toEqual(new Set([A.site.id, B.site.id]));
    });

    it.each([
      ['createSite', `mutation { createSite(input: { code: "NOPE", name: "Nope" }) { id } }`, () => ({})],
      ['createApiToken', CREATE_TOKEN, () => ({ input: { name: 'mine', role: 'ADMIN' } })],
      ['revokeApiToken', REVOKE_TOKEN, () => ({ id: B.coordinatorTokenId })],
      ['apiTokens', `{ apiTokens { totalCount } }`, () => ({})],
      ['auditEvents', `{ auditEvents { totalCount } }`, () => ({})],
      ['createSplitVersion', `mutation { createSplitVersion(input: { name: "coordinator", seed: 1 }) { id } }`, () => ({})],
    ])('rejects %s for a COORDINATOR with FORBIDDEN and changes nothing', async (_field, query, variables) => {
      const before = await Promise.all(['site', 'api_token', 'split_version', 'audit_event'].map((t) => count(`SELECT count(*)::int AS n FROM ${t}`)));
      const response = await gql(url(), A.coordinator, query, variables());
      expect(codeOf(response)).toBe('FORBIDDEN');
      expect(response.data).toBeNull();
      const after = await Promise.all(['site', 'api_token', 'split_version', 'audit_event'].map((t) => count(`SELECT count(*)::int AS n FROM ${t}`)));
      expect(after).toEqual(before);
      expect(codeOf(await gql(url(), A.coordinator, SITES))).toBeUndefined();
    });

    it.each([['patients'], ['joints'], ['readings']])('rejects %s for an ENGINEER with FORBIDDEN', async (field) => {
      const response = await gql(url(), engineer, `{ ${field} { totalCount } }`);
      expect(codeOf(response)).toBe('FORBIDDEN');
      expect(response.data).toBeNull();
    });

    it('rejects createPatient for a READER token with FORBIDDEN', async () => {
      const response = await gql(url(), A.readers[0].token, CREATE_PATIENT, { input: { siteId: A.site.id, pseudonym: 'reader-made' } });
      expect(codeOf(response)).toBe('FORBIDDEN');
    });
  });

  describe('site scoping', () => {
    interface RootPath {
      field: string;
      filterType: string;
      table: Table;
      /** The coordinator sees exactly their site's rows (the queue lists a subset: only disagreements). */
      exact: boolean;
      base?: () => Record<string, unknown>;
    }
    const ROOT_PATHS: RootPath[] = [
      { field: 'patients', filterType: 'PatientFilter', table: 'patient', exact: true },
      { field: 'joints', filterType: 'JointFilter', table: 'joint', exact: true },
      { field: 'readings', filterType: 'ReadingFilter', table: 'reading', exact: true },
      { field: 'referenceGrades', filterType: 'ReferenceGradeFilter', table: 'reference_grade', exact: true },
      { field: 'adjudicationQueue', filterType: 'GradeFilter', table: 'reading', exact: false },
      { field: 'adjudications', filterType: 'GradeFilter', table: 'adjudication', exact: true },
      { field: 'studies', filterType: 'ImagingFilter', table: 'study', exact: true },
      { field: 'series', filterType: 'ImagingFilter', table: 'series', exact: true },
      { field: 'instances', filterType: 'ImagingFilter', table: 'instance', exact: true },
      { field: 'jointImages', filterType: 'JointImageFilter', table: 'joint_image', exact: true },
      { field: 'splitAssignments', filterType: 'SplitAssignmentFilter!', table: 'split_assignment', exact: true, base: () => ({ splitVersionId }) },
    ];
    const list = async (token: string, p: RootPath, filter: Record<string, unknown> = {}): Promise<{ totalCount: number; ids: string[] }> => {
      const data = await gqlOk(url(), token, `query ($filter: ${p.filterType}) { ${p.field}(first: 500, filter: $filter) { totalCount nodes { id } } }`, {
        filter: { ...(p.base?.() ?? {}), ...filter },
      });
      return { totalCount: data[p.field].totalCount, ids: data[p.field].nodes.map((n: { id: string }) => n.id) };
    };

    it.each(ROOT_PATHS.map((p) => [p.field, p] as const))(
      'rejects site-B rows of %s for a site-A coordinator, also when site B is asked for',
      async (_field, p) => {
        const [ofA, ofB] = [await idsOf(p.table, A.site.id), await idsOf(p.table, B.site.id)];
        // The data exists at both sites: an ADMIN sees rows of both through this path.
        const everything = await list(admin, p);
        expect(everything.ids.some((id) => ofA.has(id))).toBe(true);
        expect(everything.ids.some((id) => ofB.has(id))).toBe(true);

        const mine = await list(A.coordinator, p);
        expect(mine.ids.length).toBeGreaterThan(0);
        expect(mine.ids.filter((id) => ofB.has(id))).toEqual([]);
        expect(mine.ids.every((id) => ofA.has(id))).toBe(true);
        expect(mine.totalCount).toBe(mine.ids.length);
        if (p.exact) expect(new Set(mine.ids)).toEqual(ofA);

        const askedForB = await list(A.coordinator, p, { siteIds: [B.site.id] });
        expect(askedForB).toEqual({ totalCount: 0, ids: [] });
        const askedForBoth = await list(A.coordinator, p, { siteIds: [A.site.id, B.site.id] });
        expect(askedForBoth.ids.filter((id) => ofB.has(id))).toEqual([]);
        expect(askedForBoth.totalCount).toBe(mine.totalCount);
      },
    );

    it.each([
      ['patient', `query ($id: ID!) { patient(id: $id) { id } }`, (w: SiteWorld) => w.patients[0].id],
      ['joint', `query ($id: ID!) { joint(id: $id) { id } }`, (w: SiteWorld) => w.joint.id],
      ['instance', `query ($id: ID!) { instance(id: $id) { id } }`, (w: SiteWorld) => w.instanceId],
      ['reading', `query ($id: ID!) { reading(id: $id) { id } }`, (w: SiteWorld) => w.readingId],
    ])('rejects %s(id) of a site-B row for a site-A coordinator with NOT_FOUND', async (field, query, idOf) => {
      const own = await gqlOk(url(), A.coordinator, query, { id: idOf(A) });
      expect(own[field].id).toBe(idOf(A));
      const other = await gql(url(), A.coordinator, query, { id: idOf(B) });
      expect(codeOf(other)).toBe('NOT_FOUND');
      expect(other.data).toBeNull();
      expect((await gqlOk(url(), admin, query, { id: idOf(B) }))[field].id).toBe(idOf(B));
    });

    it('rejects site-B patients nested under site(id: B) for a site-A coordinator', async () => {
      const query = `query ($id: ID!) { site(id: $id) { code patients(first: 500) { totalCount nodes { id } } } }`;
      const other = await gqlOk(url(), A.coordinator, query, { id: B.site.id });
      expect(other.site).toEqual({ code: 'SITE-B', patients: { totalCount: 0, nodes: [] } });
      const own = await gqlOk(url(), A.coordinator, query, { id: A.site.id });
      expect(new Set(own.site.patients.nodes.map((p: { id: string }) => p.id))).toEqual(await idsOf('patient', A.site.id));
      expect((await gqlOk(url(), admin, query, { id: B.site.id })).site.patients.totalCount).toBe(B.patients.length);
    });

    it('rejects site-B readings nested under reader(id: B’s reader) for a site-A coordinator', async () => {
      const query = `query ($id: ID!) { reader(id: $id) { id readings { id } } }`;
      const other = await gqlOk(url(), A.coordinator, query, { id: B.readers[0].reader.id });
      expect(other.reader).toEqual({ id: B.readers[0].reader.id, readings: [] });
      expect((await gqlOk(url(), admin, query, { id: B.readers[0].reader.id })).reader.readings.length).toBeGreaterThan(0);
      expect((await gqlOk(url(), A.coordinator, query, { id: A.readers[0].reader.id })).reader.readings.length).toBeGreaterThan(0);
    });

    it('rejects site-B rows anywhere under readers { readings { joint { patient { site } } } } for a site-A coordinator', async () => {
      const data = await gqlOk(url(), A.coordinator, `{ readers(first: 500) { nodes { id readings { id joint { id patient { id site { code } } } } } } }`);
      const readings = data.readers.nodes.flatMap((r: { readings: any[] }) => r.readings);
      expect(new Set(readings.map((r: { id: string }) => r.id))).toEqual(await idsOf('reading', A.site.id));
      expect(new Set(readings.map((r: any) => r.joint?.patient?.site?.code))).toEqual(new Set(['SITE-A']));
      const ofB = data.readers.nodes.filter((r: { id: string }) => [...B.readers, B.adjudicator].some((b) => b.reader.id === r.id));
      expect(ofB).toHaveLength(3);
      expect(ofB.flatMap((r: { readings: unknown[] }) => r.readings)).toEqual([]);
    });

    it('rejects site-B rows nested under jointImages, studies and split assignments for a site-A coordinator', async () => {
      const data = await gqlOk(
        url(),
        A.coordinator,
        `query ($v: ID!) {
          jointImages(first: 500) { nodes { joint { patient { siteId } } instance { series { study { patient { siteId } } } } } }
          studies(first: 500) { nodes { patient { siteId } series { instances { id } } } }
          splitAssignments(first: 500, filter: { splitVersionId: $v }) { nodes { patient { siteId } } }
          splitVersion(id: $v) { counts { siteId patients } }
        }`,
        { v: splitVersionId },
      );
      const siteIds = [
        ...data.jointImages.nodes.flatMap((n: any) => [n.joint.patient.siteId, n.instance.series.study.patient.siteId]),
        ...data.studies.nodes.map((n: any) => n.patient.siteId),
        ...data.splitAssignments.nodes.map((n: any) => n.patient.siteId),
        ...data.splitVersion.counts.map((c: { siteId: string }) => c.siteId),
      ];
      expect(siteIds.length).toBeGreaterThan(0);
      expect(new Set(siteIds)).toEqual(new Set([A.site.id]));
      expect(data.splitVersion.counts.reduce((sum: number, c: { patients: number }) => sum + c.patients, 0)).toBe(A.patients.length);
    });

    it('rejects createPatient for site B by a site-A coordinator with FORBIDDEN and writes nothing', async () => {
      const before = await Promise.all([count('SELECT count(*)::int AS n FROM patient'), count('SELECT count(*)::int AS n FROM joint'), auditCount()]);
      const response = await gql(url(), A.coordinator, CREATE_PATIENT, { input: { siteId: B.site.id, pseudonym: 'smuggled' } });
      expect(codeOf(response)).toBe('FORBIDDEN');
      expect(response.data).toBeNull();
      expect(await Promise.all([count('SELECT count(*)::int AS n FROM patient'), count('SELECT count(*)::int AS n FROM joint'), auditCount()])).toEqual(before);
      expect(await count(`SELECT count(*)::int AS n FROM patient WHERE pseudonym = 'smuggled'`)).toBe(0);
    });

    it('rejects createReader for site B by a site-A coordinator with FORBIDDEN and writes nothing', async () => {
      const before = await Promise.all([count('SELECT count(*)::int AS n FROM reader'), auditCount()]);
      const input = { code: 'SMUGGLED', role: 'READER', yearsOfExperience: 3, siteId: B.site.id };
      const response = await gql(url(), A.coordinator, CREATE_READER, { input });
      expect(codeOf(response)).toBe('FORBIDDEN');
      const central = await gql(url(), A.coordinator, CREATE_READER, { input: { ...input, siteId: null } });
      expect(codeOf(central)).toBe('FORBIDDEN');
      expect(await Promise.all([count('SELECT count(*)::int AS n FROM reader'), auditCount()])).toEqual(before);
    });

    it('rejects setExclusionReasons on a site-B patient by a site-A coordinator with NOT_FOUND and changes nothing', async () => {
      const before = await auditCount();
      const response = await gql(url(), A.coordinator, `mutation ($input: SetExclusionReasonsInput!) { setExclusionReasons(input: $input) { id } }`, {
        input: { patientId: B.patients[1].id, exclusionReasons: [ExclusionReason.FRACTURE] },
      });
      expect(codeOf(response)).toBe('NOT_FOUND');
      const [row] = await node().dataSource.query('SELECT exclusion_reasons::text[] AS reasons FROM patient WHERE id = $1', [B.patients[1].id]);
      expect(row.reasons).toEqual([]);
      expect(await auditCount()).toBe(before);
    });

    it('rejects site-B readings for site-A READER tokens, blinded or not', async () => {
      const ofA = await idsOf('reading', A.site.id);
      const ofB = await idsOf('reading', B.site.id);
      for (const token of [A.readers[0].token, A.adjudicator.token]) {
        const seen = await gqlOk(url(), token, `{ readings(first: 500) { nodes { id } } }`);
        const ids: string[] = seen.readings.nodes.map((r: { id: string }) => r.id);
        expect(ids.length).toBeGreaterThan(0);
        expect(ids.filter((id) => ofB.has(id))).toEqual([]);
        expect(ids.every((id) => ofA.has(id))).toBe(true);
        const asked = await gqlOk(url(), token, `query ($s: [ID!]) { readings(filter: { siteIds: $s }) { totalCount } }`, { s: [B.site.id] });
        expect(asked.readings.totalCount).toBe(0);
      }
      // The unblinded adjudicator sees every reading of site A.
      const adjudicatorView = await gqlOk(url(), A.adjudicator.token, `{ readings(first: 500) { nodes { id } } }`);
      expect(new Set(adjudicatorView.readings.nodes.map((r: { id: string }) => r.id))).toEqual(ofA);
      const queue = await gqlOk(url(), A.adjudicator.token, `{ adjudicationQueue(first: 500) { nodes { jointId readings { id } } } }`);
      expect(queue.adjudicationQueue.nodes.length).toBeGreaterThan(0);
      expect(queue.adjudicationQueue.nodes.every((n: { jointId: string }) => n.jointId === A.joint.id)).toBe(true);
    });

    it('rejects reading(id) of a site-B reading for a site-A reader with NOT_FOUND, not READER_BLINDED', async () => {
      for (const token of [A.readers[0].token, A.adjudicator.token]) {
        const response = await gql(url(), token, `query ($id: ID!) { reading(id: $id) { id } }`, { id: B.readingId });
        expect(codeOf(response)).toBe('NOT_FOUND');
      }
    });

    it('rejects recordReading on a site-B joint by a site-A reader with NOT_FOUND and stores nothing', async () => {
      const before = await Promise.all([count('SELECT count(*)::int AS n FROM reading'), auditCount()]);
      const response = await gql(url(), A.readers[0].token, RECORD, { input: { jointId: B.joint.id, modality: 'XR', feature: 'OSTEOPHYTES', grade: 1 } });
      expect(codeOf(response)).toBe('NOT_FOUND');
      const adjudication = await gql(url(), A.adjudicator.token, ADJUDICATE, {
        input: { jointId: B.joint.id, modality: 'CT', feature: 'HYPERTROPHY', grade: 1, rationale: 'not mine' },
      });
      expect(codeOf(adjudication)).toBe('NOT_FOUND');
      expect(await Promise.all([count('SELECT count(*)::int AS n FROM reading'), auditCount()])).toEqual(before);
      expect(await count('SELECT count(*)::int AS n FROM adjudication WHERE joint_id = $1', [B.joint.id])).toBe(1);
    });
  });

  describe('api tokens', () => {
    it.each([
      ['a READER token without a readerId', () => ({ role: 'READER' })],
      ['a COORDINATOR token without a siteId', () => ({ role: 'COORDINATOR' })],
      ['a STATISTICIAN token with a siteId', () => ({ role: 'STATISTICIAN', siteId: A.site.id })],
      ['a COORDINATOR token for an unknown site', () => ({ role: 'COORDINATOR', siteId: randomUUID() })],
      ['a COORDINATOR token whose siteId is not a uuid', () => ({ role: 'COORDINATOR', siteId: 'SITE-A' })],
      ['a READER token for an unknown reader', () => ({ role: 'READER', readerId: randomUUID() })],
      ['an ADMIN token that names a reader', () => ({ role: 'ADMIN', readerId: A.readers[0].reader.id })],
      ['a READER token scoped to a site other than its reader’s', () => ({ role: 'READER', readerId: A.readers[0].reader.id, siteId: B.site.id })],
    ])('rejects createApiToken for %s with BAD_USER_INPUT and stores no token', async (_label, input) => {
      const before = await Promise.all([count('SELECT count(*)::int AS n FROM api_token'), auditCount()]);
      const response = await gql(url(), admin, CREATE_TOKEN, { input: { name: 'invalid', ...input() } });
      expect(codeOf(response)).toBe('BAD_USER_INPUT');
      // null when the resolver refused; absent when a malformed id was refused before anything ran
      expect(response.data ?? null).toBeNull();
      expect(await Promise.all([count('SELECT count(*)::int AS n FROM api_token'), auditCount()])).toEqual(before);
    });

    it('returns a secret that works as a bearer token with the role and site it was made for', async () => {
      const data = await gqlOk(url(), admin, CREATE_TOKEN, { input: { name: 'coordinator B', role: 'COORDINATOR', siteId: B.site.id } });
      const { secret, token } = data.createApiToken;
      expect(secret).toMatch(/^fct_[A-Za-z0-9_-]{20,}$/);
      expect(token).toMatchObject({ name: 'coordinator B', role: 'COORDINATOR', siteId: B.site.id, readerId: null, revokedAt: null });
      const patients = await gqlOk(url(), secret, PATIENT_IDS);
      expect(new Set(patients.patients.nodes.map((p: { siteId: string }) => p.siteId))).toEqual(new Set([B.site.id]));

      const reader = await gqlOk(url(), admin, CREATE_TOKEN, { input: { name: 'reader A', role: 'READER', readerId: A.readers[1].reader.id } });
      expect(reader.createApiToken.token).toMatchObject({ role: 'READER', readerId: A.readers[1].reader.id, siteId: A.site.id });
      const readings = await gqlOk(url(), reader.createApiToken.secret, `{ readings { nodes { readerId } } }`);
      expect(readings.readings.nodes.length).toBeGreaterThan(0);
    });

    it('never exposes a secret or hash through apiTokens', async () => {
      const { secret } = await createToken({ role: 'ENGINEER' });
      const listed = await gql(url(), admin, `{ apiTokens(first: 500) { nodes { id name role siteId readerId revokedAt createdAt } } }`);
      expect(listed.errors).toBeUndefined();
      const text = JSON.stringify(listed);
      expect(text).not.toContain(secret);
      expect(text).not.toContain(hashToken(secret));
      for (const field of ['secret', 'tokenHash', 'token_hash', 'hash']) {
        expect(codeOf(await gql(url(), admin, `{ apiTokens { nodes { ${field} } } }`))).toBe('GRAPHQL_VALIDATION_FAILED');
      }

      const expected = ['createdAt', 'expiresAt', 'id', 'name', 'readerId', 'revokedAt', 'role', 'siteId'];
      const sdl = buildSchema(readFileSync(path.resolve(__dirname, '../../schema/schema.graphql'), 'utf8'));
      expect(Object.keys((sdl.getType('ApiToken') as GraphQLObjectType).getFields()).sort()).toEqual(expected);
      expect(Object.keys((sdl.getType('CreatedApiToken') as GraphQLObjectType).getFields()).sort()).toEqual(['secret', 'token']);
      const live = await gqlOk(url(), admin, `{ __type(name: "ApiToken") { fields { name } } }`);
      expect(live.__type.fields.map((f: { name: string }) => f.name).sort()).toEqual(expected);
    });
  });

  describe('audit', () => {
    const MUTATIONS = ['createSite', 'createReader', 'createPatient', 'setExclusionReasons', 'createApiToken', 'revokeApiToken'];

    it('writes one audit event per mutation with the actor’s role, token and the entity id', async () => {
      const site = (await gqlOk(url(), admin, `mutation { createSite(input: { code: "SITE-C", name: "Site C" }) { id } }`)).createSite.id;
      const coordinator = await createToken({ role: 'COORDINATOR', siteId: site });
      const reader = (await gqlOk(url(), coordinator.secret, CREATE_READER, { input: { code: 'RC1', role: 'READER', yearsOfExperience: 4, siteId: site } }))
        .createReader.id;
      const patient = (await gqlOk(url(), coordinator.secret, CREATE_PATIENT, { input: { siteId: site, pseudonym: 'PSEUDO-C-1' } })).createPatient.id;
      await gqlOk(url(), coordinator.secret, `mutation ($input: SetExclusionReasonsInput!) { setExclusionReasons(input: $input) { id } }`, {
        input: { patientId: patient, exclusionReasons: ['FRACTURE'] },
      });
      await gqlOk(url(), admin, REVOKE_TOKEN, { id: coordinator.id });

      const events = await auditEvents(MUTATIONS);
      const expected: Array<[string, string, string, string, string | null]> = [
        ['createSite', site, 'ADMIN', adminTokenId, site],
        ['createApiToken', coordinator.id, 'ADMIN', adminTokenId, site],
        ['createReader', reader, 'COORDINATOR', coordinator.id, site],
        ['createPatient', patient, 'COORDINATOR', coordinator.id, site],
        ['setExclusionReasons', patient, 'COORDINATOR', coordinator.id, site],
        ['revokeApiToken', coordinator.id, 'ADMIN', adminTokenId, null],
      ];
      for (const [action, entityId, actorRole, actorTokenId, siteId] of expected) {
        const matching = events.filter((e) => e.action === action && e.entityId === entityId);
        expect(matching).toHaveLength(1);
        expect(matching[0]).toMatchObject({ actorRole, actorTokenId, siteId });
      }
      // Only the mutations asked for, and never the pseudonym (no PHI in the audit log).
      expect(new Set(events.map((e) => e.action))).toEqual(new Set(MUTATIONS));
      expect(JSON.stringify(events)).not.toContain('PSEUDO-C-1');
    });

    it.each([
      ['patients', `{ patients(first: 500) { nodes { id } } }`, () => ({}), 'Patient'],
      ['joints', `{ joints(first: 500) { nodes { id } } }`, () => ({}), 'Joint'],
      ['readings', `{ readings(first: 500) { nodes { id } } }`, () => ({}), 'Reading'],
      ['instances', `{ instances(first: 500) { nodes { id } } }`, () => ({}), 'Instance'],
      ['patient(id)', `query ($id: ID!) { patient(id: $id) { id } }`, () => ({ id: A.patients[0].id }), 'Patient'],
      ['joint(id)', `query ($id: ID!) { joint(id: $id) { id } }`, () => ({ id: A.joint.id }), 'Joint'],
      ['reading(id)', `query ($id: ID!) { reading(id: $id) { id } }`, () => ({ id: A.readingId }), 'Reading'],
      ['instance(id)', `query ($id: ID!) { instance(id: $id) { id } }`, () => ({ id: A.instanceId }), 'Instance'],
    ])('writes a read audit event for the patient-level read %s', async (_label, query, variables, entityType) => {
      const clientRequestId = randomUUID();
      const response = await post(url(), { authorization: `Bearer ${A.coordinator}`, 'x-request-id': clientRequestId }, query, variables());
      expect(response.errors).toBeUndefined();
      const mine = (await auditEvents(['read'])).filter((e) => e.clientRequestId === clientRequestId);
      expect(mine).toHaveLength(1);
      expect(mine[0]).toMatchObject({ action: 'read', entityType, actorRole: 'COORDINATOR', actorTokenId: A.coordinatorTokenId });
      // the server's own request id, recorded beside the client's, never replaced by it
      expect(mine[0].requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(mine[0].requestId).not.toBe(clientRequestId);
    });

    it('rejects failing mutations without writing an audit event', async () => {
      const before = await Promise.all([auditCount(), count('SELECT count(*)::int AS n FROM site'), count('SELECT count(*)::int AS n FROM patient')]);
      const failures: Array<[string, string, string, Record<string, unknown>]> = [
        ['FORBIDDEN', A.coordinator, CREATE_PATIENT, { input: { siteId: B.site.id, pseudonym: 'no-1' } }],
        ['BAD_USER_INPUT', admin, CREATE_PATIENT, { input: { siteId: randomUUID(), pseudonym: 'no-2' } }],
        ['CONFLICT', admin, CREATE_PATIENT, { input: { siteId: A.site.id, pseudonym: A.patients[0].pseudonym } }],
        ['CONFLICT', admin, `mutation { createSite(input: { code: "SITE-A", name: "again" }) { id } }`, {}],
        ['BAD_USER_INPUT', admin, CREATE_TOKEN, { input: { name: 'x', role: 'COORDINATOR' } }],
        ['NOT_FOUND', admin, REVOKE_TOKEN, { id: randomUUID() }],
        ['FORBIDDEN', statistician, `mutation { createSite(input: { code: "SITE-S", name: "S" }) { id } }`, {}],
      ];
      for (const [code, token, query, variables] of failures) {
        expect(codeOf(await gql(url(), token, query, variables))).toBe(code);
      }
      expect(await Promise.all([auditCount(), count('SELECT count(*)::int AS n FROM site'), count('SELECT count(*)::int AS n FROM patient')])).toEqual(before);
    });
  });

  describe('graphql-ws', () => {
    it('rejects an operation without a token with UNAUTHENTICATED', async () => {
      const response = await gqlOverWebSocket(url(), null, SITES);
      expect(codeOf(response)).toBe('UNAUTHENTICATED');
      expect(response.data ?? null).toBeNull();
    });

    it('rejects an unknown token with UNAUTHENTICATED', async () => {
      expect(codeOf(await gqlOverWebSocket(url(), `fct_${randomUUID()}`, PATIENT_IDS))).toBe('UNAUTHENTICATED');
    });

    it('rejects patient-level queries of a STATISTICIAN with FORBIDDEN', async () => {
      expect(codeOf(await gqlOverWebSocket(url(), statistician, PATIENT_IDS))).toBe('FORBIDDEN');
    });

    it('rejects site-B patients for a site-A coordinator, also when site B is asked for', async () => {
      const mine = await gqlOverWebSocket(url(), A.coordinator, PATIENT_IDS);
      expect(mine.errors).toBeUndefined();
      expect(new Set(mine.data?.patients.nodes.map((p: { id: string }) => p.id))).toEqual(await idsOf('patient', A.site.id));
      const askedForB = await gqlOverWebSocket(url(), A.coordinator, PATIENT_IDS, { filter: { siteIds: [B.site.id] } });
      expect(askedForB.data?.patients).toEqual({ totalCount: 0, nodes: [] });
      const single = await gqlOverWebSocket(url(), A.coordinator, `query ($id: ID!) { patient(id: $id) { id } }`, { id: B.patients[0].id });
      expect(codeOf(single)).toBe('NOT_FOUND');
    });

    it('rejects a token revoked while its websocket connection stays open', async () => {
      const { id, secret } = await createToken({ role: 'COORDINATOR', siteId: A.site.id });
      const client = createClient({
        url: `${url().replace(/^http/, 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${secret}` },
        retryAttempts: 0,
        lazy: false,
      });
      const run = (query: string): Promise<GraphQLResponse> =>
        new Promise((resolve, reject) => {
          let result: GraphQLResponse = {};
          client.subscribe(
            { query },
            {
              next: (value) => {
                result = value as GraphQLResponse;
              },
              error: (error) => (Array.isArray(error) ? resolve({ errors: error }) : reject(error)),
              complete: () => resolve(result),
            },
          );
        });
      try {
        expect(codeOf(await run(`{ patients { totalCount } }`))).toBeUndefined();
        await gqlOk(url(), admin, REVOKE_TOKEN, { id });
        expect(codeOf(await run(`{ patients { totalCount } }`))).toBe('UNAUTHENTICATED');
      } finally {
        await client.dispose();
      }
    });
  });
});
