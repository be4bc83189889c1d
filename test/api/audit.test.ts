import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildSchema, getNamedType, isObjectType } from 'graphql';
import { Modality, ReaderRole, Role } from '../../server/domain';
import { Instance, JointImage, Series, Study, type Joint, type Patient, type Site } from '../../server/entities';
import { systemContext } from '../../server/services';
import { hashToken } from '../../server/services/token.service';
import { Factory } from '../helpers/factories';
import { codeOf, gql, gqlOk, type GraphQLResponse } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';

const RECORD = `mutation ($input: RecordReadingInput!) { recordReading(input: $input) { id } }`;
const ADJUDICATE = `mutation ($input: AdjudicateInput!) { adjudicate(input: $input) { id } }`;

/** Types whose rows are patient-level data: reading any of them is audited. */
const PATIENT_LEVEL = new Set([
  'Patient',
  'Joint',
  'Study',
  'Series',
  'Instance',
  'JointImage',
  'Reading',
  'ReferenceGrade',
  'Adjudication',
  'AdjudicationQueueItem',
  'SplitAssignment',
]);

interface World {
  site: Site;
  patient: Patient;
  joint: Joint;
  readerIds: string[];
  readingId: string;
  instanceId: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
}

interface AuditRow {
  action: string;
  entity_type: string;
  entity_id: string | null;
  actor_role: string;
  actor_token_id: string | null;
  details: { count: number; filter: Record<string, unknown>; outcome: string; retrieve?: boolean };
}

async function post(url: string, token: string, requestId: string, query: string, variables: Record<string, unknown> = {}): Promise<GraphQLResponse> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'x-request-id': requestId },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as GraphQLResponse;
}

let uidCounter = 0;
const uid = (): string => `1.2.826.0.1.3680043.10.4711.${process.pid}.${++uidCounter}`;

describe('audit of reads', () => {
  const node = useTestNode();
  let factory: Factory;
  let admin: string;
  let A: World;
  let B: World;
  let coordinator: string;
  let blindedReader: string;
  let splitVersionId: string;
  const tokens: Partial<Record<Role, string>> = {};

  const url = () => node().url;
  const eventsOf = (requestId: string): Promise<AuditRow[]> =>
    node().dataSource.query(
      `SELECT action, entity_type, entity_id, actor_role, actor_token_id, details FROM audit_event WHERE client_request_id = $1 ORDER BY seq`,
      [requestId],
    );

  async function buildSite(code: string): Promise<World> {
    const site = await factory.site(code);
    const patient = await factory.patient(site);
    const [joint] = await factory.joints(patient);
    const readers = [await factory.readerWithToken(site), await factory.readerWithToken(site)];
    const adjudicator = await factory.readerWithToken(site, ReaderRole.ADJUDICATOR);
    const record = async (i: number, modality: string, feature: string, grade: number): Promise<string> =>
      (await gqlOk(url(), readers[i].token, RECORD, { input: { jointId: joint.id, modality, feature, grade } })).recordReading.id;
    const readingId = await record(0, 'CT', 'OSTEOPHYTES', 1);
    await record(1, 'CT', 'OSTEOPHYTES', 1);
    await record(0, 'CT', 'HYPERTROPHY', 1);
    await record(1, 'CT', 'HYPERTROPHY', 0);
    await record(0, 'MR', 'OSTEOPHYTES', 2);
    await record(1, 'MR', 'OSTEOPHYTES', 0);
    await gqlOk(url(), adjudicator.token, ADJUDICATE, { input: { jointId: joint.id, modality: 'MR', feature: 'OSTEOPHYTES', grade: 1, rationale: 'Re-read' } });
    // Imaging rows as ingest writes them: study, CT series, instance, joint image.
    const ds = node().dataSource;
    const [studyInstanceUid, seriesInstanceUid, sopInstanceUid] = [uid(), uid(), uid()];
    const study = await ds.getRepository(Study).save({ patientId: patient.id, studyInstanceUid, studyDate: '2021-03-04', description: null });
    const series = await ds.getRepository(Series).save({ studyId: study.id, seriesInstanceUid, modality: Modality.CT, seriesNumber: 1, description: null });
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
    return {
      site,
      patient,
      joint,
      readerIds: readers.map((r) => r.reader.id),
      readingId,
      instanceId: instance.id,
      studyInstanceUid,
      seriesInstanceUid,
      sopInstanceUid,
    };
  }

  beforeAll(async () => {
    factory = new Factory(node().services);
    admin = await factory.token(Role.ADMIN);
    A = await buildSite('AUD-A');
    B = await buildSite('AUD-B');
    coordinator = await factory.token(Role.COORDINATOR, { site: A.site });
    blindedReader = (await factory.readerWithToken(A.site)).token;
    for (const role of [Role.STATISTICIAN, Role.ENGINEER, Role.HUB]) tokens[role] = await factory.token(role);
    splitVersionId = (await gqlOk(url(), admin, `mutation { createSplitVersion(input: { name: "audit", seed: 3 }) { id } }`)).createSplitVersion.id;
  });

  describe('nested fields', () => {
    /** Each nested field that returns patient-level rows, reached from a parent read by a site-A coordinator. */
    const NESTED: Array<[string, string, () => Record<string, unknown>, string]> = [
      ['Site.patients', `query ($id: ID!) { site(id: $id) { patients(first: 500) { nodes { id } } } }`, () => ({ id: A.site.id }), 'Patient'],
      ['Reader.readings', `query ($id: ID!) { reader(id: $id) { readings { id } } }`, () => ({ id: A.readerIds[0] }), 'Reading'],
      ['Patient.joints', `query ($id: ID!) { patient(id: $id) { joints { id } } }`, () => ({ id: A.patient.id }), 'Joint'],
      ['Patient.studies', `query ($id: ID!) { patient(id: $id) { studies { id } } }`, () => ({ id: A.patient.id }), 'Study'],
      ['Joint.patient', `query ($id: ID!) { joint(id: $id) { patient { id } } }`, () => ({ id: A.joint.id }), 'Patient'],
      ['Joint.readings', `query ($id: ID!) { joint(id: $id) { readings { id } } }`, () => ({ id: A.joint.id }), 'Reading'],
      ['Joint.referenceGrades', `query ($id: ID!) { joint(id: $id) { referenceGrades { id } } }`, () => ({ id: A.joint.id }), 'ReferenceGrade'],
      ['Joint.images', `query ($id: ID!) { joint(id: $id) { images { id } } }`, () => ({ id: A.joint.id }), 'JointImage'],
      ['Study.patient', `{ studies(first: 500) { nodes { patient { id } } } }`, () => ({}), 'Patient'],
      ['Study.series', `{ studies(first: 500) { nodes { series { id } } } }`, () => ({}), 'Series'],
      ['Series.study', `{ series(first: 500) { nodes { study { id } } } }`, () => ({}), 'Study'],
      ['Series.instances', `{ series(first: 500) { nodes { instances { id } } } }`, () => ({}), 'Instance'],
      ['Instance.series', `query ($id: ID!) { instance(id: $id) { series { id } } }`, () => ({ id: A.instanceId }), 'Series'],
      ['JointImage.joint', `{ jointImages(first: 500) { nodes { joint { id } } } }`, () => ({}), 'Joint'],
      ['JointImage.instance', `{ jointImages(first: 500) { nodes { instance { id } } } }`, () => ({}), 'Instance'],
      ['Reading.joint', `query ($id: ID!) { reading(id: $id) { joint { id } } }`, () => ({ id: A.readingId }), 'Joint'],
      ['Adjudication.joint', `{ adjudications(first: 500) { nodes { joint { id } } } }`, () => ({}), 'Joint'],
      ['ReferenceGrade.joint', `{ referenceGrades(first: 500) { nodes { joint { id } } } }`, () => ({}), 'Joint'],
      [
        'SplitAssignment.patient',
        `query ($v: ID!) { splitAssignments(first: 500, filter: { splitVersionId: $v }) { nodes { patient { id } } } }`,
        () => ({ v: splitVersionId }),
        'Patient',
      ],
      // The queue reads its items' readings itself: one audit row for the queue covers them.
      ['AdjudicationQueueItem.readings', `{ adjudicationQueue(first: 500) { nodes { readings { id } } } }`, () => ({}), 'AdjudicationQueueItem'],
    ];

    it('covers every nested field of the schema that returns patient-level rows', () => {
      const sdl = buildSchema(readFileSync(path.resolve(__dirname, '../../schema/schema.graphql'), 'utf8'));
      const fields: string[] = [];
      for (const type of Object.values(sdl.getTypeMap())) {
        if (!isObjectType(type) || type.name.startsWith('__') || type.name.endsWith('Connection')) continue;
        if (['Query', 'Mutation', 'Subscription'].includes(type.name)) continue;
        for (const field of Object.values(type.getFields())) {
          const returned = getNamedType(field.type)
            .name.replace(/Connection$/, '')
            .replace(/^AdjudicationQueue$/, 'AdjudicationQueueItem');
          if (PATIENT_LEVEL.has(returned)) fields.push(`${type.name}.${field.name}`);
        }
      }
      expect(fields.sort()).toEqual(NESTED.map(([field]) => field).sort());
    });

    it.each(NESTED)('writes a read audit event for the rows of %s, naming its parents', async (_field, query, variables, entityType) => {
      const requestId = randomUUID();
      const response = await post(url(), coordinator, requestId, query, variables());
      expect(response.errors).toBeUndefined();
      const nested = (await eventsOf(requestId)).filter((e) => e.entity_type === entityType);
      expect(nested.length).toBeGreaterThanOrEqual(1);
      const event = nested[nested.length - 1];
      expect(event).toMatchObject({ action: 'read', actor_role: 'COORDINATOR' });
      expect(event.details.count).toBeGreaterThan(0);
      expect(event.details.outcome).toBe('OK');
      // A nested batch names the parent rows it was read for (the queue is a root list, read with its readings).
      if (entityType !== 'AdjudicationQueueItem') expect(JSON.stringify(event.details.filter)).not.toBe('{}');
    });

    it('audits site(id){patients} and reader(id){readings} of another site with a count of 0', async () => {
      for (const [query, id, entityType] of [
        [`query ($id: ID!) { site(id: $id) { patients(first: 500) { nodes { id } } } }`, B.site.id, 'Patient'],
        [`query ($id: ID!) { reader(id: $id) { readings { id } } }`, B.readerIds[0], 'Reading'],
      ] as const) {
        const requestId = randomUUID();
        const response = await post(url(), coordinator, requestId, query, { id });
        expect(response.errors).toBeUndefined();
        const events = await eventsOf(requestId);
        expect(events).toHaveLength(1);
        expect(events[0]).toMatchObject({ action: 'read', entity_type: entityType, details: { count: 0, outcome: 'OK' } });
      }
    });
  });

  describe('refused single-id reads', () => {
    interface Refusal {
      label: string;
      token: () => string;
      id: (field: string) => string;
      code: string;
      fields: string[];
    }
    const ALL = ['patient', 'joint', 'reading', 'instance'];
    const idOf = (w: World, field: string): string => ({ patient: w.patient.id, joint: w.joint.id, reading: w.readingId, instance: w.instanceId })[field]!;
    const REFUSALS: Refusal[] = [
      { label: 'a row of another site', token: () => coordinator, id: (f) => idOf(B, f), code: 'NOT_FOUND', fields: ALL },
      { label: 'an id that does not exist', token: () => coordinator, id: () => randomUUID(), code: 'NOT_FOUND', fields: ALL },
      { label: 'a STATISTICIAN token', token: () => tokens.STATISTICIAN!, id: (f) => idOf(A, f), code: 'FORBIDDEN', fields: ALL },
      { label: 'an ENGINEER token', token: () => tokens.ENGINEER!, id: (f) => idOf(A, f), code: 'FORBIDDEN', fields: ALL },
      { label: 'a HUB token', token: () => tokens.HUB!, id: (f) => idOf(A, f), code: 'FORBIDDEN', fields: ALL },
      { label: 'a reader blinded to it', token: () => blindedReader, id: (f) => idOf(A, f), code: 'READER_BLINDED', fields: ['reading'] },
    ];
    const ENTITY: Record<string, string> = { patient: 'Patient', joint: 'Joint', reading: 'Reading', instance: 'Instance' };
    const CASES = REFUSALS.flatMap((r) => r.fields.map((field) => [field, r.label, r] as const));

    it.each(CASES)('audits %s(id) refused for %s, with the refusal as its outcome', async (field, _label, refusal) => {
      const requestId = randomUUID();
      const id = refusal.id(field);
      const token = refusal.token();
      const response = await post(url(), token, requestId, `query ($id: ID!) { ${field}(id: $id) { id } }`, { id });
      expect(codeOf(response)).toBe(refusal.code);
      expect(response.data).toBeNull();
      const tokenId = (await node().dataSource.query('SELECT id FROM api_token WHERE token_hash = $1', [hashToken(token)]))[0].id;
      expect(await eventsOf(requestId)).toEqual([
        {
          action: 'read',
          entity_type: ENTITY[field],
          entity_id: id,
          actor_role: expect.any(String),
          actor_token_id: tokenId,
          details: { count: 0, filter: { id }, outcome: refusal.code },
        },
      ]);
    });

    it.each(ALL)('refuses %s(id) with a malformed id as BAD_USER_INPUT before anything runs: nothing is read, so nothing is audited', async (field) => {
      const requestId = randomUUID();
      const response = await post(url(), coordinator, requestId, `{ ${field}(id: "not-a-uuid") { id } }`);
      expect(codeOf(response)).toBe('BAD_USER_INPUT');
      expect(await eventsOf(requestId)).toEqual([]);
    });

    it('audits an answered single-id read with outcome OK', async () => {
      const requestId = randomUUID();
      expect((await post(url(), coordinator, requestId, `query ($id: ID!) { patient(id: $id) { id } }`, { id: A.patient.id })).errors).toBeUndefined();
      expect(await eventsOf(requestId)).toEqual([
        expect.objectContaining({ entity_id: A.patient.id, details: { count: 1, filter: { id: A.patient.id }, outcome: 'OK' } }),
      ]);
    });

    it('audits a refused WADO-RS retrieve without the UIDs asked for', async () => {
      const retrieve = (token: string, w: World) =>
        fetch(`${url()}/dicomweb/studies/${w.studyInstanceUid}/series/${w.seriesInstanceUid}/instances/${w.sopInstanceUid}`, {
          headers: { authorization: `Bearer ${token}` },
        });
      const refusals = () =>
        node().dataSource.query(
          `SELECT actor_role, details FROM audit_event WHERE entity_type = 'Instance' AND details->>'retrieve' = 'true' AND details->>'outcome' <> 'OK' ORDER BY seq`,
        );
      const before = (await refusals()).length;
      expect((await retrieve(coordinator, B)).status).toBe(404);
      expect((await retrieve(tokens.STATISTICIAN!, A)).status).toBe(403);
      const after = await refusals();
      expect(after.slice(before)).toEqual([
        { actor_role: 'COORDINATOR', details: { count: 0, filter: {}, outcome: 'NOT_FOUND', retrieve: true } },
        { actor_role: 'STATISTICIAN', details: { count: 0, filter: {}, outcome: 'FORBIDDEN', retrieve: true } },
      ]);
      expect(JSON.stringify(after)).not.toContain(B.sopInstanceUid);
    });

    it('writes nothing for a request without a valid token (there is no actor to name)', async () => {
      const requestId = randomUUID();
      const response = await fetch(`${url()}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': requestId },
        body: JSON.stringify({ query: `query ($id: ID!) { patient(id: $id) { id } }`, variables: { id: A.patient.id } }),
      });
      expect(codeOf((await response.json()) as GraphQLResponse)).toBe('UNAUTHENTICATED');
      expect(await eventsOf(requestId)).toEqual([]);
    });
  });

  describe('auditEvents', () => {
    const PAGE = `query ($after: String) {
      auditEvents(actions: ["orderProbe"], first: 7, after: $after) { totalCount nodes { details } pageInfo { endCursor hasNextPage } }
    }`;
    const probe = async (from: number, n: number): Promise<void> => {
      const ctx = systemContext('audit order test');
      await node().services.db.transaction(ctx, async (tx) => {
        for (let i = from; i < from + n; i++) await node().services.audit.record(tx, { action: 'orderProbe', entityType: 'Probe', details: { i } });
      });
    };

    it('pages newest first by sequence, also among many events of one transaction, with cursors that new events do not shift', async () => {
      const N = 120;
      await probe(0, N);
      const [{ stamps }] = await node().dataSource.query(`SELECT count(DISTINCT created_at)::int AS stamps FROM audit_event WHERE action = 'orderProbe'`);
      expect(stamps).toBe(1);

      const seen: number[] = [];
      let after: string | null = null;
      let pages = 0;
      do {
        const data: Record<string, any> = await gqlOk(url(), admin, PAGE, { after });
        if (pages === 0) expect(data.auditEvents.totalCount).toBe(N);
        seen.push(...data.auditEvents.nodes.map((n: { details: { i: number } }) => n.details.i));
        after = data.auditEvents.pageInfo.hasNextPage ? data.auditEvents.pageInfo.endCursor : null;
        // Events written while a client pages through do not shift or repeat the pages still to come.
        if (++pages === 2) await probe(N, 5);
      } while (after);
      expect(seen).toEqual(Array.from({ length: N }, (_, k) => N - 1 - k));
      expect(pages).toBe(Math.ceil(N / 7));

      const top = await gqlOk(url(), admin, PAGE, { after: null });
      expect(top.auditEvents.totalCount).toBe(N + 5);
      expect(top.auditEvents.nodes.slice(0, 5).map((n: { details: { i: number } }) => n.details.i)).toEqual([124, 123, 122, 121, 120]);
    });

    it.each([
      [
        'an id cursor of another list',
        async () => (await gqlOk(url(), admin, `{ apiTokens(first: 1) { pageInfo { endCursor } } }`)).apiTokens.pageInfo.endCursor,
      ],
      ['a forged cursor', async () => Buffer.from('seq:1; DROP TABLE audit_event').toString('base64url')],
      ['text that is no cursor', async () => 'not-a-cursor'],
    ])('rejects %s with BAD_USER_INPUT', async (_label, cursor) => {
      expect(codeOf(await gql(url(), admin, PAGE, { after: await cursor() }))).toBe('BAD_USER_INPUT');
    });
  });
});
