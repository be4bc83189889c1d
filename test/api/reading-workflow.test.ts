import { ReaderRole, Role } from '../../server/domain';
import type { Joint, Site } from '../../server/entities';
import { Factory } from '../helpers/factories';
import { codeOf, gql, gqlOk } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';

const RECORD = `mutation ($input: RecordReadingInput!) { recordReading(input: $input) { id grade notAssessable readerId } }`;
const ADJUDICATE = `mutation ($input: AdjudicateInput!) { adjudicate(input: $input) { id grade adjudicatorId rationale } }`;
const REFERENCE = `{ referenceGrades { nodes { id jointId modality feature grade notAssessable source confirmedAt } } }`;
const QUEUE = `{ adjudicationQueue { totalCount nodes { jointId modality feature readings { grade readerId } } } }`;
const CONFIRM = `mutation ($ids: [ID!]!) { confirmReferenceGrades(input: { ids: $ids }) { id confirmedAt confirmedBy { code } } }`;
const REVISE = `mutation ($input: ReviseReferenceGradeInput!) { reviseReferenceGrade(input: $input) { id grade } }`;

describe('reading workflow', () => {
  const node = useTestNode();
  let factory: Factory;
  let site: Site;
  let joint: Joint;
  let reader1: { reader: { id: string }; token: string };
  let reader2: { reader: { id: string }; token: string };
  let reader3: { reader: { id: string }; token: string };
  let adjudicator: { reader: { id: string }; token: string };
  let senior: { reader: { id: string }; token: string };
  let coordinator: string;

  const cell = (feature: string, extra: Record<string, unknown> = {}) => ({ jointId: joint.id, modality: 'CT', feature, ...extra });
  const record = (token: string, input: Record<string, unknown>) => gql(node().url, token, RECORD, { input });

  beforeAll(async () => {
    factory = new Factory(node().services);
    site = await factory.site();
    const patient = await factory.patient(site);
    [joint] = await factory.joints(patient);
    reader1 = await factory.readerWithToken(site);
    reader2 = await factory.readerWithToken(site);
    reader3 = await factory.readerWithToken(site);
    adjudicator = await factory.readerWithToken(site, ReaderRole.ADJUDICATOR);
    senior = await factory.readerWithToken(site, ReaderRole.SENIOR);
    coordinator = await factory.token(Role.COORDINATOR, { site });
  });

  it('records a reading and rejects a second grade of the same joint-feature by the same reader with CONFLICT', async () => {
    const first = await gqlOk(node().url, reader1.token, RECORD, { input: cell('OSTEOPHYTES', { grade: 2 }) });
    expect(first.recordReading).toMatchObject({ grade: 2, notAssessable: false, readerId: reader1.reader.id });
    expect(codeOf(await record(reader1.token, cell('OSTEOPHYTES', { grade: 1 })))).toBe('CONFLICT');
  });

  it('blinds a reader to the other reader’s grade until they have read the cell themselves', async () => {
    const mine = await gqlOk(node().url, reader1.token, `{ readings(filter: { features: ["OSTEOPHYTES"] }) { nodes { id readerId } } }`);
    const readingId = mine.readings.nodes[0].id;
    const before = await gqlOk(node().url, reader2.token, `{ readings(filter: { features: ["OSTEOPHYTES"] }) { totalCount } }`);
    expect(before.readings.totalCount).toBe(0);
    const direct = await gql(node().url, reader2.token, `query ($id: ID!) { reading(id: $id) { grade } }`, { id: readingId });
    expect(codeOf(direct)).toBe('READER_BLINDED');
    const nested = await gqlOk(node().url, reader2.token, `query ($id: ID!) { joint(id: $id) { readings { grade } } }`, { id: joint.id });
    expect(nested.joint.readings).toEqual([]);

    await gqlOk(node().url, reader2.token, RECORD, { input: cell('OSTEOPHYTES', { grade: 0 }) });
    const after = await gqlOk(node().url, reader2.token, `{ readings(filter: { features: ["OSTEOPHYTES"] }) { nodes { grade readerId } } }`);
    expect(after.readings.nodes.map((r: { grade: number }) => r.grade).sort()).toEqual([0, 2]);
  });

  it('refuses a third independent reading with CONFLICT', async () => {
    expect(codeOf(await record(reader3.token, cell('OSTEOPHYTES', { grade: 1 })))).toBe('CONFLICT');
  });

  it('turns agreement into an AGREEMENT reference grade, including agreement on not assessable', async () => {
    await gqlOk(node().url, reader1.token, RECORD, { input: cell('HYPERTROPHY', { grade: 1 }) });
    await gqlOk(node().url, reader2.token, RECORD, { input: cell('HYPERTROPHY', { grade: 1 }) });
    await gqlOk(node().url, reader1.token, RECORD, { input: cell('EROSION', { notAssessable: true }) });
    const na = await gqlOk(node().url, reader2.token, RECORD, { input: cell('EROSION', { notAssessable: true }) });
    expect(na.recordReading).toMatchObject({ grade: null, notAssessable: true });
    const refs = await gqlOk(node().url, coordinator, REFERENCE);
    const byFeature = Object.fromEntries(refs.referenceGrades.nodes.map((r: { feature: string }) => [r.feature, r]));
    expect(byFeature.HYPERTROPHY).toMatchObject({ grade: 1, source: 'AGREEMENT', confirmedAt: null });
    expect(byFeature.EROSION).toMatchObject({ grade: null, notAssessable: true, source: 'AGREEMENT' });
    expect(byFeature.OSTEOPHYTES).toBeUndefined();
  });

  it('lists the disagreement in the adjudication queue for adjudicators and coordinators, not for blinded readers', async () => {
    const queue = await gqlOk(node().url, adjudicator.token, QUEUE);
    expect(queue.adjudicationQueue.totalCount).toBe(1);
    expect(queue.adjudicationQueue.nodes[0]).toMatchObject({ jointId: joint.id, modality: 'CT', feature: 'OSTEOPHYTES' });
    expect(queue.adjudicationQueue.nodes[0].readings.map((r: { grade: number }) => r.grade).sort()).toEqual([0, 2]);
    expect((await gqlOk(node().url, coordinator, QUEUE)).adjudicationQueue.totalCount).toBe(1);
    expect(codeOf(await gql(node().url, reader1.token, QUEUE))).toBe('FORBIDDEN');
  });

  it('keeps blinded readers away from the reference standard', async () => {
    expect(codeOf(await gql(node().url, reader1.token, REFERENCE))).toBe('FORBIDDEN');
  });

  it('rejects adjudication by a reader of the case, by a plain reader, and of a cell without disagreement', async () => {
    const asOwnReader = await factory.readerWithToken(site, ReaderRole.ADJUDICATOR);
    await gqlOk(node().url, asOwnReader.token, RECORD, { input: cell('SUBCHONDRAL_CYSTS', { grade: 1 }) });
    await gqlOk(node().url, reader1.token, RECORD, { input: cell('SUBCHONDRAL_CYSTS', { grade: 0 }) });
    const own = await gql(node().url, asOwnReader.token, ADJUDICATE, { input: cell('SUBCHONDRAL_CYSTS', { grade: 1, rationale: 'mine' }) });
    expect(codeOf(own)).toBe('FORBIDDEN');
    const plain = await gql(node().url, reader3.token, ADJUDICATE, { input: cell('OSTEOPHYTES', { grade: 1, rationale: 'x' }) });
    expect(codeOf(plain)).toBe('FORBIDDEN');
    const agreed = await gql(node().url, adjudicator.token, ADJUDICATE, { input: cell('HYPERTROPHY', { grade: 1, rationale: 'x' }) });
    expect(codeOf(agreed)).toBe('BAD_USER_INPUT');
    const coordinatorTry = await gql(node().url, coordinator, ADJUDICATE, { input: cell('OSTEOPHYTES', { grade: 1, rationale: 'x' }) });
    expect(codeOf(coordinatorTry)).toBe('FORBIDDEN');
  });

  it('adjudicates a disagreement into an ADJUDICATION reference grade, once', async () => {
    const done = await gqlOk(node().url, adjudicator.token, ADJUDICATE, {
      input: cell('OSTEOPHYTES', { grade: 1, rationale: 'Small osteophyte on re-review' }),
    });
    expect(done.adjudicate).toMatchObject({ grade: 1, adjudicatorId: adjudicator.reader.id });
    const again = await gql(node().url, adjudicator.token, ADJUDICATE, { input: cell('OSTEOPHYTES', { grade: 2, rationale: 'again' }) });
    expect(codeOf(again)).toBe('CONFLICT');
    const refs = await gqlOk(node().url, coordinator, `{ referenceGrades(filter: { features: ["OSTEOPHYTES"] }) { nodes { grade source } } }`);
    expect(refs.referenceGrades.nodes).toEqual([{ grade: 1, source: 'ADJUDICATION' }]);
    const queue = await gqlOk(node().url, adjudicator.token, `{ adjudicationQueue(filter: { features: ["OSTEOPHYTES"] }) { totalCount } }`);
    expect(queue.adjudicationQueue.totalCount).toBe(0);
  });

  it('lets the senior group confirm reference grades, which then cannot change', async () => {
    const refs = await gqlOk(node().url, coordinator, `{ referenceGrades(filter: { features: ["OSTEOPHYTES", "HYPERTROPHY"] }) { nodes { id feature } } }`);
    const ids = refs.referenceGrades.nodes.map((r: { id: string }) => r.id);
    const hypertrophy = refs.referenceGrades.nodes.find((r: { feature: string }) => r.feature === 'HYPERTROPHY').id;
    const revised = await gqlOk(node().url, adjudicator.token, REVISE, { input: { id: hypertrophy, grade: 2 } });
    expect(revised.reviseReferenceGrade.grade).toBe(2);

    expect(codeOf(await gql(node().url, adjudicator.token, CONFIRM, { ids }))).toBe('FORBIDDEN');
    const confirmed = await gqlOk(node().url, senior.token, CONFIRM, { ids });
    expect(confirmed.confirmReferenceGrades).toHaveLength(2);
    expect(confirmed.confirmReferenceGrades[0].confirmedAt).not.toBeNull();

    expect(codeOf(await gql(node().url, senior.token, CONFIRM, { ids }))).toBe('REFERENCE_LOCKED');
    expect(codeOf(await gql(node().url, senior.token, REVISE, { input: { id: hypertrophy, grade: 0 } }))).toBe('REFERENCE_LOCKED');
    const unchanged = await gqlOk(node().url, coordinator, `{ referenceGrades(filter: { features: ["HYPERTROPHY"] }) { nodes { grade } } }`);
    expect(unchanged.referenceGrades.nodes).toEqual([{ grade: 2 }]);
  });

  it('confirms all or none: one unknown id fails the batch with NOT_FOUND and confirms nothing', async () => {
    const refs = await gqlOk(node().url, coordinator, `{ referenceGrades(filter: { confirmed: false }) { nodes { id } } }`);
    const ids = refs.referenceGrades.nodes.map((r: { id: string }) => r.id);
    expect(ids.length).toBeGreaterThan(0);
    const result = await gql(node().url, senior.token, CONFIRM, { ids: [...ids, '00000000-0000-4000-8000-000000000000'] });
    expect(codeOf(result)).toBe('NOT_FOUND');
    const still = await gqlOk(node().url, coordinator, `{ referenceGrades(filter: { confirmed: false }) { totalCount } }`);
    expect(still.referenceGrades.totalCount).toBe(ids.length);
  });

  it.each([
    ['a grade outside the feature’s scale', { feature: 'JOINT_SPACE_NARROWING', grade: 2 }],
    ['a negative grade', { feature: 'OSTEOPHYTES', grade: -1 }],
    ['an unknown feature', { feature: 'SPONDYLOSIS', grade: 1 }],
    ['both a grade and not assessable', { feature: 'JOINT_SPACE_NARROWING', grade: 1, notAssessable: true }],
    ['neither a grade nor not assessable', { feature: 'JOINT_SPACE_NARROWING' }],
  ])('rejects %s with BAD_USER_INPUT and stores nothing', async (_label, input) => {
    const before = await node().dataSource.query('SELECT count(*)::int AS n FROM reading');
    expect(codeOf(await record(reader3.token, { jointId: joint.id, modality: 'MR', ...input }))).toBe('BAD_USER_INPUT');
    expect(await node().dataSource.query('SELECT count(*)::int AS n FROM reading')).toEqual(before);
  });

  it('refuses readings from tokens that are not a reader’s', async () => {
    expect(codeOf(await record(coordinator, cell('JOINT_SPACE_NARROWING', { grade: 1 })))).toBe('FORBIDDEN');
  });

  it('writes an audit event for every mutation, in the same transaction', async () => {
    const rows: Array<{ action: string; n: number }> = await node().dataSource.query(
      `SELECT action, count(*)::int AS n FROM audit_event WHERE action <> 'read' GROUP BY action`,
    );
    const counts = Object.fromEntries(rows.map((r) => [r.action, r.n]));
    const readings = await node().dataSource.query('SELECT count(*)::int AS n FROM reading');
    expect(counts.recordReading).toBe(readings[0].n);
    expect(counts.adjudicate).toBe(1);
    expect(counts.confirmReferenceGrade).toBe(2);
    expect(counts.reviseReferenceGrade).toBe(1);
  });
});
