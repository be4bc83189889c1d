import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildSchema, getNamedType, isObjectType } from 'graphql';
import { Modality, ReaderRole, ReferenceSource, Role } from '../../server/domain';
import { ReferenceGrade, type Joint, type Patient, type Reader, type Site } from '../../server/entities';
import { seededRandom } from '../../server/stats/bootstrap';
import { Factory } from '../helpers/factories';
import { codeOf, gql, gqlOk, type GraphQLResponse } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';

const RECORD = `mutation ($input: RecordReadingInput!) { recordReading(input: $input) { id } }`;
const ADJUDICATE = `mutation ($input: AdjudicateInput!) { adjudicate(input: $input) { id } }`;
const FEATURES = ['JOINT_SPACE_NARROWING', 'OSTEOPHYTES', 'HYPERTROPHY', 'EROSION', 'SUBCHONDRAL_CYSTS'];
const MODALITIES = [Modality.XR, Modality.CT, Modality.MR];

interface ReaderWithToken {
  reader: Reader;
  token: string;
}

interface Cell {
  patientId: string;
  jointId: string;
  modality: Modality;
  feature: string;
}

/** What a case starts from: a cell with readings by readers who are not under test, and maybe its reference. */
type Setup = 'oneReading' | 'disagreement' | 'adjudicated' | 'referenceOnly';

interface Prepared {
  cell: Cell;
  readingIds: string[];
  firstReader: ReaderWithToken;
  referenceId: string | null;
}

/** One way a grade of the cell reaches the caller: an operation, the schema fields it goes through, and its audit action. */
interface ExposurePath {
  name: string;
  covers: string[];
  setup: Setup;
  roles: ReaderRole[];
  action: string;
  operation(p: Prepared, site: Site): { query: string; variables: Record<string, unknown> };
}

const UNBLINDED = [ReaderRole.ADJUDICATOR, ReaderRole.SENIOR];
const CELL_FILTER = `{ patientIds: [$p], modalities: [$m], features: [$f] }`;
const cellVars = (p: Prepared) => ({ p: p.cell.patientId, m: p.cell.modality, f: p.cell.feature });
const read = (name: string, covers: string[], setup: Setup, operation: ExposurePath['operation']): ExposurePath => ({
  name,
  covers,
  setup,
  roles: UNBLINDED,
  action: 'read',
  operation,
});

/**
 * Every path that returns grades of a cell to a reader's token: root lists and single reads, nested fields
 * (DataLoaders) under parents that show no grade themselves, the adjudication queue (also when no grade is selected:
 * it still says the readers disagree), adjudications, reference grades, and the mutations that answer with them.
 */
const PATHS: ExposurePath[] = [
  read('readings', ['Query.readings'], 'oneReading', (p) => ({
    query: `query ($p: ID!, $m: Modality!, $f: String!) { readings(first: 500, filter: ${CELL_FILTER}) { nodes { grade } } }`,
    variables: cellVars(p),
  })),
  read('reading(id)', ['Query.reading'], 'oneReading', (p) => ({
    query: `query ($id: ID!) { reading(id: $id) { grade } }`,
    variables: { id: p.readingIds[0] },
  })),
  read('joint(id) { readings }', ['Query.joint', 'Joint.readings'], 'oneReading', (p) => ({
    query: `query ($id: ID!) { joint(id: $id) { readings { grade } } }`,
    variables: { id: p.cell.jointId },
  })),
  read('joints { readings }', ['Query.joints', 'Joint.readings'], 'oneReading', (p) => ({
    query: `query ($p: ID!) { joints(first: 20, filter: { patientIds: [$p] }) { nodes { readings { grade } } } }`,
    variables: { p: p.cell.patientId },
  })),
  read('patient(id) { joints { readings } }', ['Query.patient', 'Patient.joints', 'Joint.readings'], 'oneReading', (p) => ({
    query: `query ($id: ID!) { patient(id: $id) { joints { readings { grade } } } }`,
    variables: { id: p.cell.patientId },
  })),
  read('patients { joints { readings } }', ['Query.patients', 'Patient.joints', 'Joint.readings'], 'oneReading', () => ({
    query: `{ patients(first: 500) { nodes { joints { readings { grade } } } } }`,
    variables: {},
  })),
  read('site(id) { patients { joints { readings } } }', ['Query.site', 'Site.patients', 'Patient.joints', 'Joint.readings'], 'oneReading', (_p, site) => ({
    query: `query ($id: ID!) { site(id: $id) { patients(first: 500) { nodes { joints { readings { grade } } } } } }`,
    variables: { id: site.id },
  })),
  read('reader(id) { readings }', ['Query.reader', 'Reader.readings'], 'oneReading', (p) => ({
    query: `query ($id: ID!) { reader(id: $id) { readings { grade } } }`,
    variables: { id: p.firstReader.reader.id },
  })),
  read('readers { readings }', ['Query.readers', 'Reader.readings'], 'oneReading', () => ({
    query: `{ readers(first: 500) { nodes { readings { grade } } } }`,
    variables: {},
  })),
  read('adjudicationQueue { readings }', ['Query.adjudicationQueue', 'AdjudicationQueueItem.readings'], 'disagreement', (p) => ({
    query: `query ($p: ID!, $m: Modality!, $f: String!) { adjudicationQueue(first: 500, filter: ${CELL_FILTER}) { nodes { readings { grade } } } }`,
    variables: cellVars(p),
  })),
  read('adjudicationQueue without grades', ['Query.adjudicationQueue'], 'disagreement', (p) => ({
    query: `query ($p: ID!, $m: Modality!, $f: String!) { adjudicationQueue(first: 500, filter: ${CELL_FILTER}) { nodes { jointId } } }`,
    variables: cellVars(p),
  })),
  read('adjudications', ['Query.adjudications'], 'adjudicated', (p) => ({
    query: `query ($p: ID!, $m: Modality!, $f: String!) { adjudications(first: 500, filter: ${CELL_FILTER}) { nodes { grade } } }`,
    variables: cellVars(p),
  })),
  read('referenceGrades', ['Query.referenceGrades'], 'referenceOnly', (p) => ({
    query: `query ($p: ID!, $m: Modality!, $f: String!) { referenceGrades(first: 500, filter: ${CELL_FILTER}) { nodes { grade } } }`,
    variables: cellVars(p),
  })),
  read('joint(id) { referenceGrades }', ['Query.joint', 'Joint.referenceGrades'], 'referenceOnly', (p) => ({
    query: `query ($id: ID!) { joint(id: $id) { referenceGrades { grade } } }`,
    variables: { id: p.cell.jointId },
  })),
  {
    name: 'reviseReferenceGrade',
    covers: ['Mutation.reviseReferenceGrade'],
    setup: 'referenceOnly',
    roles: UNBLINDED,
    action: 'reviseReferenceGrade',
    operation: (p) => ({ query: `mutation ($id: ID!) { reviseReferenceGrade(input: { id: $id, grade: 0 }) { grade } }`, variables: { id: p.referenceId } }),
  },
  {
    name: 'confirmReferenceGrades',
    covers: ['Mutation.confirmReferenceGrades'],
    setup: 'referenceOnly',
    roles: [ReaderRole.SENIOR],
    action: 'confirmReferenceGrade',
    operation: (p) => ({ query: `mutation ($ids: [ID!]!) { confirmReferenceGrades(input: { ids: $ids }) { grade } }`, variables: { ids: [p.referenceId] } }),
  },
];

/** Fields that return grades but show the caller only their own: the reading just recorded, the decision just made. */
const OWN_GRADE_FIELDS = ['Mutation.recordReading', 'Mutation.adjudicate'];
const GRADE_TYPES = new Set(['Reading', 'Adjudication', 'ReferenceGrade', 'AdjudicationQueueItem']);

/** POST /graphql with a request id of our choosing, to find the audit event of exactly this request. */
async function post(url: string, token: string, requestId: string, query: string, variables: Record<string, unknown>): Promise<GraphQLResponse> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'x-request-id': requestId },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as GraphQLResponse;
}

describe('independent readers', () => {
  const node = useTestNode();
  let factory: Factory;
  let site: Site;
  let firstReaders: ReaderWithToken[];
  let adjudicator: ReaderWithToken;
  let coordinator: string;
  let cells: Cell[];
  const random = seededRandom(20260512);

  const url = () => node().url;
  const readingsOf = async (cell: Cell): Promise<number> =>
    (
      await node().dataSource.query('SELECT count(*)::int AS n FROM reading WHERE joint_id = $1 AND modality = $2 AND feature = $3', [
        cell.jointId,
        cell.modality,
        cell.feature,
      ])
    )[0].n;
  const exposureOf = async (readerId: string, cell: Cell): Promise<Array<{ action: string; client_request_id: string; outcome: string | null }>> =>
    node().dataSource.query(
      `SELECT e.action, e.client_request_id, e.details->>'outcome' AS outcome FROM cell_exposure x JOIN audit_event e ON e.id = x.audit_event_id
       WHERE x.reader_id = $1 AND x.joint_id = $2 AND x.modality = $3 AND x.feature = $4`,
      [readerId, cell.jointId, cell.modality, cell.feature],
    );
  const gradeOf = (cell: Cell, grade: number) => ({ jointId: cell.jointId, modality: cell.modality, feature: cell.feature, grade });
  const record = (token: string, cell: Cell, grade: number) => gql(url(), token, RECORD, { input: gradeOf(cell, grade) });

  /** The next unused cell (joint x modality x feature), in a seeded order; `gradedTo3`: one whose scale is 0-3. */
  function nextCell(gradedTo3 = false): Cell {
    const index = gradedTo3 ? cells.findIndex((c) => ['OSTEOPHYTES', 'HYPERTROPHY'].includes(c.feature)) : 0;
    const [cell] = index >= 0 ? cells.splice(index, 1) : [];
    if (!cell) throw new Error('out of cells');
    return cell;
  }

  async function prepare(setup: Setup): Promise<Prepared> {
    const cell = nextCell();
    const [r1, r2] = firstReaders;
    const readingIds: string[] = [];
    let referenceId: string | null = null;
    if (setup !== 'referenceOnly') readingIds.push((await gqlOk(url(), r1.token, RECORD, { input: gradeOf(cell, 1) })).recordReading.id);
    if (setup === 'disagreement' || setup === 'adjudicated')
      readingIds.push((await gqlOk(url(), r2.token, RECORD, { input: gradeOf(cell, 0) })).recordReading.id);
    if (setup === 'adjudicated') await gqlOk(url(), adjudicator.token, ADJUDICATE, { input: { ...gradeOf(cell, 1), rationale: 'Re-read' } });
    if (setup === 'referenceOnly') {
      // A reference grade that exists before anyone read the cell, as one established elsewhere and imported.
      const row = await node()
        .dataSource.getRepository(ReferenceGrade)
        .save({ jointId: cell.jointId, modality: cell.modality, feature: cell.feature, grade: 1, notAssessable: false, source: ReferenceSource.ADJUDICATION });
      referenceId = row.id;
    }
    return { cell, readingIds, firstReader: r1, referenceId };
  }

  beforeAll(async () => {
    factory = new Factory(node().services);
    site = await factory.site('INDEP');
    const patients: Patient[] = [await factory.patient(site), await factory.patient(site)];
    const joints: Array<Joint & { patientId: string }> = [];
    for (const patient of patients) joints.push(...(await factory.joints(patient)));
    cells = joints.flatMap((j) => MODALITIES.flatMap((modality) => FEATURES.map((feature) => ({ patientId: j.patientId, jointId: j.id, modality, feature }))));
    // Fisher-Yates with a seeded generator: the same cells for the same cases on every run.
    for (let i = cells.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [cells[i], cells[j]] = [cells[j], cells[i]];
    }
    firstReaders = [await factory.readerWithToken(site), await factory.readerWithToken(site)];
    adjudicator = await factory.readerWithToken(site, ReaderRole.ADJUDICATOR);
    coordinator = await factory.token(Role.COORDINATOR, { site });
  });

  it('covers every field of the schema that returns grades (the class of exposing paths is complete)', () => {
    const sdl = buildSchema(readFileSync(path.resolve(__dirname, '../../schema/schema.graphql'), 'utf8'));
    const fields: string[] = [];
    for (const type of Object.values(sdl.getTypeMap())) {
      if (!isObjectType(type) || type.name.startsWith('__') || type.name.endsWith('Connection')) continue;
      for (const field of Object.values(type.getFields())) {
        const returned = getNamedType(field.type)
          .name.replace(/Connection$/, '')
          .replace(/^AdjudicationQueue$/, 'AdjudicationQueueItem');
        if (GRADE_TYPES.has(returned)) fields.push(`${type.name}.${field.name}`);
      }
    }
    const covered = new Set([...PATHS.flatMap((p) => p.covers), ...OWN_GRADE_FIELDS]);
    expect(fields.filter((f) => !covered.has(f))).toEqual([]);
  });

  const CASES = PATHS.flatMap((p) => p.roles.map((role) => [role, p.name, p] as const));

  it.each(CASES)(
    'refuses a reading by a reader with role %s who has seen the cell through %s with READER_NOT_INDEPENDENT',
    async (role, _name, exposurePath) => {
      const prepared = await prepare(exposurePath.setup);
      const me = await factory.readerWithToken(site, role);
      const requestId = randomUUID();
      const { query, variables } = exposurePath.operation(prepared, site);
      const response = await post(url(), me.token, requestId, query, variables);
      expect(response.errors).toBeUndefined();

      // Recorded in the same transaction as the audit event of the request that showed the grades.
      const exposure = await exposureOf(me.reader.id, prepared.cell);
      expect(exposure).toHaveLength(1);
      expect(exposure[0]).toMatchObject({ action: exposurePath.action, client_request_id: requestId });

      const before = await readingsOf(prepared.cell);
      const attempt = await record(me.token, prepared.cell, 1);
      expect(codeOf(attempt)).toBe('READER_NOT_INDEPENDENT');
      expect(attempt.errors?.[0].extensions?.firstSeenAt).toEqual(expect.any(String));
      expect(await readingsOf(prepared.cell)).toBe(before);
    },
  );

  it.each(UNBLINDED)('lets a reader with role %s who has not seen the cell record its first and its second reading', async (role) => {
    const me = await factory.readerWithToken(site, role);
    const fresh = nextCell();
    expect(codeOf(await record(me.token, fresh, 1))).toBeUndefined();
    const half = await prepare('oneReading');
    expect(codeOf(await record(me.token, half.cell, 0))).toBeUndefined();
    expect(await readingsOf(half.cell)).toBe(2);
  });

  it('binds a reader only for the cells a read showed them', async () => {
    const seen = await prepare('oneReading');
    const unseen = await prepare('oneReading');
    const me = await factory.readerWithToken(site, ReaderRole.ADJUDICATOR);
    await gqlOk(url(), me.token, `query ($id: ID!) { reading(id: $id) { grade } }`, { id: seen.readingIds[0] });
    expect(codeOf(await record(me.token, seen.cell, 1))).toBe('READER_NOT_INDEPENDENT');
    expect(codeOf(await record(me.token, unseen.cell, 1))).toBeUndefined();
  });

  it('records what a reader saw of other readers’ grades, never their own readings', async () => {
    const me = await factory.readerWithToken(site, ReaderRole.ADJUDICATOR);
    const cell = nextCell();
    await gqlOk(url(), me.token, RECORD, { input: gradeOf(cell, 1) });
    const own = await gqlOk(url(), me.token, `query ($r: ID!) { readings(first: 500, filter: { readerIds: [$r] }) { totalCount } }`, { r: me.reader.id });
    expect(own.readings.totalCount).toBe(1);
    expect(await exposureOf(me.reader.id, cell)).toEqual([]);
    // A plain reader sees the other grade only once they have read the cell; that sight is recorded all the same.
    const plain = await factory.readerWithToken(site);
    await gqlOk(url(), plain.token, RECORD, { input: gradeOf(cell, 0) });
    const after = await gqlOk(url(), plain.token, `query ($id: ID!) { joint(id: $id) { readings { grade } } }`, { id: cell.jointId });
    expect(after.joint.readings.length).toBeGreaterThanOrEqual(2);
    expect(await exposureOf(plain.reader.id, cell)).toHaveLength(1);
  });

  it('shares exposures between the tokens of one reader: seen through one token, refused through the other', async () => {
    const prepared = await prepare('oneReading');
    const me = await factory.readerWithToken(site, ReaderRole.SENIOR);
    const second = await factory.token(Role.READER, { reader: me.reader });
    await gqlOk(url(), me.token, `query ($id: ID!) { joint(id: $id) { readings { grade } } }`, { id: prepared.cell.jointId });
    expect(codeOf(await record(second, prepared.cell, 1))).toBe('READER_NOT_INDEPENDENT');
    expect(await readingsOf(prepared.cell)).toBe(1);
  });

  it('rejects the readings manifest row of a reader who has seen the cell (RULE_VIOLATION) and stores none of the file', async () => {
    const manifestSite = await factory.site('MANI');
    const mc = await factory.token(Role.COORDINATOR, { site: manifestSite });
    const imported = await gqlOk(url(), mc, `mutation ($csv: String!) { importPatientsManifest(csv: $csv) { stored } }`, {
      csv: 'site,patient_id,pseudonym,sex,age,eligible,exclusion_reasons\nMANI,MRN-IND-1,MANI-P1,F,60,yes,\n',
    });
    expect(imported.importPatientsManifest.stored).toBe(true);
    const [r1, r2] = [await factory.readerWithToken(manifestSite), await factory.readerWithToken(manifestSite, ReaderRole.ADJUDICATOR)];
    const readings = (rows: string[]) =>
      gqlOk(url(), mc, `mutation ($s: ID!, $csv: String!) { importReadingsManifest(siteId: $s, csv: $csv) { stored rejected { source code } } }`, {
        s: manifestSite.id,
        csv: ['reader,patient_id,level,side,modality,feature,grade', ...rows].join('\n'),
      });
    const first = await readings([`${r1.reader.code},MRN-IND-1,L4_L5,LEFT,CT,OSTEOPHYTES,2`]);
    expect(first.importReadingsManifest.stored).toBe(true);
    await gqlOk(url(), r2.token, `{ readings(first: 500) { totalCount } }`);
    const second = await readings([`${r2.reader.code},MRN-IND-1,L4_L5,LEFT,CT,HYPERTROPHY,1`, `${r2.reader.code},MRN-IND-1,L4_L5,LEFT,CT,OSTEOPHYTES,2`]);
    expect(second.importReadingsManifest).toEqual({ stored: false, rejected: [{ source: 'line 3', code: 'RULE_VIOLATION' }] });
    const n = await node().dataSource.query(
      `SELECT count(*)::int AS n FROM reading r JOIN joint j ON j.id = r.joint_id JOIN patient p ON p.id = j.patient_id WHERE p.site_id = $1`,
      [manifestSite.id],
    );
    expect(n[0].n).toBe(1);
  });

  it('records no exposure for coordinators, who are no readers', async () => {
    const prepared = await prepare('oneReading');
    const before = (await node().dataSource.query('SELECT count(*)::int AS n FROM cell_exposure'))[0].n;
    await gqlOk(url(), coordinator, `query ($id: ID!) { joint(id: $id) { readings { grade } referenceGrades { grade } } }`, { id: prepared.cell.jointId });
    expect((await node().dataSource.query('SELECT count(*)::int AS n FROM cell_exposure'))[0].n).toBe(before);
  });

  describe('revising and confirming the reference standard', () => {
    const REVISE = `mutation ($id: ID!, $grade: Int, $na: Boolean) {
      reviseReferenceGrade(input: { id: $id, grade: $grade, notAssessable: $na }) {
        id grade notAssessable source revisedAt revisedBy { id } previousGrade previousNotAssessable previousSource confirmedAt
      }
    }`;
    const CONFIRM = `mutation ($ids: [ID!]!) { confirmReferenceGrades(input: { ids: $ids }) { id source confirmedBy { id } } }`;
    const referenceRow = async (id: string) => (await node().dataSource.query('SELECT * FROM reference_grade WHERE id = $1', [id]))[0];
    const referenceOf = async (cell: Cell): Promise<string> =>
      (
        await node().dataSource.query('SELECT id FROM reference_grade WHERE joint_id = $1 AND modality = $2 AND feature = $3', [
          cell.jointId,
          cell.modality,
          cell.feature,
        ])
      )[0].id;

    /** A reference grade of `source` whose cell `me` read as its first or second reader. */
    async function referenceReadBy(me: ReaderWithToken, position: 0 | 1, source: ReferenceSource): Promise<{ cell: Cell; id: string }> {
      const cell = nextCell(true);
      const grades = source === ReferenceSource.AGREEMENT ? [1, 1] : [1, 0];
      const order = position === 0 ? [me, firstReaders[0]] : [firstReaders[0], me];
      for (const [i, reader] of order.entries()) await gqlOk(url(), reader.token, RECORD, { input: gradeOf(cell, grades[i]) });
      if (source === ReferenceSource.ADJUDICATION) await gqlOk(url(), adjudicator.token, ADJUDICATE, { input: { ...gradeOf(cell, 0), rationale: 'Re-read' } });
      return { cell, id: await referenceOf(cell) };
    }

    const READ_BY = UNBLINDED.flatMap((role) =>
      ([0, 1] as const).flatMap((position) =>
        [ReferenceSource.AGREEMENT, ReferenceSource.ADJUDICATION].map((source) => [role, position === 0 ? 'first' : 'second', source, position] as const),
      ),
    );

    it.each(READ_BY)(
      'refuses a revision by a reader with role %s who was the %s reader of an %s reference grade with FORBIDDEN',
      async (role, _p, source, position) => {
        const me = await factory.readerWithToken(site, role);
        const { id } = await referenceReadBy(me, position, source);
        const before = await referenceRow(id);
        const response = await gql(url(), me.token, REVISE, { id, grade: before.grade === 0 ? 1 : 0 });
        expect(codeOf(response)).toBe('FORBIDDEN');
        expect(response.errors?.[0].extensions?.reason).toBe('READ_THE_CELL');
        expect(await referenceRow(id)).toEqual(before);
        const events = await node().dataSource.query(`SELECT count(*)::int AS n FROM audit_event WHERE action = 'reviseReferenceGrade' AND entity_id = $1`, [
          id,
        ]);
        expect(events[0].n).toBe(0);
        if (role === ReaderRole.SENIOR) {
          const confirm = await gql(url(), me.token, CONFIRM, { ids: [id] });
          expect(codeOf(confirm)).toBe('FORBIDDEN');
          expect((await referenceRow(id)).confirmed_at).toBeNull();
        }
      },
    );

    it('records a revision as REVISED with who, when and the value (and source) it replaced', async () => {
      const { id } = await referenceReadBy(firstReaders[1], 0, ReferenceSource.AGREEMENT);
      const reviser = await factory.readerWithToken(site, ReaderRole.ADJUDICATOR);
      const first = (await gqlOk(url(), reviser.token, REVISE, { id, grade: 2 })).reviseReferenceGrade;
      expect(first).toMatchObject({
        grade: 2,
        notAssessable: false,
        source: 'REVISED',
        revisedBy: { id: reviser.reader.id },
        previousGrade: 1,
        previousNotAssessable: false,
        previousSource: 'AGREEMENT',
        confirmedAt: null,
      });
      expect(new Date(first.revisedAt).getTime()).toBeGreaterThan(Date.now() - 60_000);

      const senior = await factory.readerWithToken(site, ReaderRole.SENIOR);
      const second = (await gqlOk(url(), senior.token, REVISE, { id, na: true })).reviseReferenceGrade;
      expect(second).toMatchObject({
        grade: null,
        notAssessable: true,
        source: 'REVISED',
        revisedBy: { id: senior.reader.id },
        previousGrade: 2,
        previousNotAssessable: false,
        previousSource: 'REVISED',
      });
      const listed = await gqlOk(
        url(),
        coordinator,
        `query ($p: ID!) { referenceGrades(first: 500, filter: { patientIds: [$p] }) { nodes { id source previousGrade } } }`,
        {
          p: (await node().dataSource.query('SELECT patient_id FROM joint j JOIN reference_grade r ON r.joint_id = j.id WHERE r.id = $1', [id]))[0].patient_id,
        },
      );
      expect(listed.referenceGrades.nodes.find((n: { id: string }) => n.id === id)).toEqual({ id, source: 'REVISED', previousGrade: 2 });
      const audit = await node().dataSource.query(`SELECT details FROM audit_event WHERE action = 'reviseReferenceGrade' AND entity_id = $1 ORDER BY seq`, [
        id,
      ]);
      expect(audit.map((a: { details: any }) => a.details.before)).toEqual([
        { grade: 1, notAssessable: false, source: 'AGREEMENT' },
        { grade: 2, notAssessable: false, source: 'REVISED' },
      ]);
    });

    it('refuses a revision to the value the reference grade already has with BAD_USER_INPUT', async () => {
      const { id } = await referenceReadBy(firstReaders[1], 1, ReferenceSource.AGREEMENT);
      const reviser = await factory.readerWithToken(site, ReaderRole.ADJUDICATOR);
      const before = await referenceRow(id);
      expect(codeOf(await gql(url(), reviser.token, REVISE, { id, grade: 1 }))).toBe('BAD_USER_INPUT');
      expect(await referenceRow(id)).toEqual(before);
    });

    it('refuses confirmation by whoever decided the current value (adjudicated or revised it), confirming nothing of the batch', async () => {
      const seniorAdjudicator = await factory.readerWithToken(site, ReaderRole.SENIOR);
      const adjudicatedBy = async (senior: ReaderWithToken): Promise<string> => {
        const disputed = nextCell(true);
        await gqlOk(url(), firstReaders[0].token, RECORD, { input: gradeOf(disputed, 2) });
        await gqlOk(url(), firstReaders[1].token, RECORD, { input: gradeOf(disputed, 0) });
        await gqlOk(url(), senior.token, ADJUDICATE, { input: { ...gradeOf(disputed, 1), rationale: 'Re-read' } });
        return referenceOf(disputed);
      };
      const adjudicated = await adjudicatedBy(seniorAdjudicator);
      // Adjudicated by the same senior, then revised by someone else: its current value is no longer theirs.
      const overruled = await adjudicatedBy(seniorAdjudicator);
      await gqlOk(url(), (await factory.readerWithToken(site, ReaderRole.ADJUDICATOR)).token, REVISE, { id: overruled, grade: 3 });
      const { id: revised } = await referenceReadBy(firstReaders[1], 0, ReferenceSource.AGREEMENT);
      const seniorReviser = await factory.readerWithToken(site, ReaderRole.SENIOR);
      await gqlOk(url(), seniorReviser.token, REVISE, { id: revised, grade: 0 });
      const { id: plain } = await referenceReadBy(firstReaders[1], 1, ReferenceSource.AGREEMENT);

      for (const [senior, ids] of [
        [seniorAdjudicator, [overruled, plain, adjudicated]],
        [seniorReviser, [plain, revised]],
      ] as const) {
        const response = await gql(url(), senior.token, CONFIRM, { ids });
        expect(codeOf(response)).toBe('FORBIDDEN');
        expect(response.errors?.[0].extensions?.reason).toBe('DECIDED_THE_CELL');
        expect(await Promise.all(ids.map(async (id) => (await referenceRow(id)).confirmed_at))).toEqual(ids.map(() => null));
      }
      // Each is confirmed by the other; a revised grade confirms like any other, and is then locked.
      expect((await gqlOk(url(), seniorReviser.token, CONFIRM, { ids: [plain, adjudicated] })).confirmReferenceGrades).toHaveLength(2);
      const confirmed = (await gqlOk(url(), seniorAdjudicator.token, CONFIRM, { ids: [revised, overruled] })).confirmReferenceGrades;
      expect(confirmed.map((c: { source: string; confirmedBy: { id: string } }) => [c.source, c.confirmedBy.id])).toEqual([
        ['REVISED', seniorAdjudicator.reader.id],
        ['REVISED', seniorAdjudicator.reader.id],
      ]);
      const other = await factory.readerWithToken(site, ReaderRole.ADJUDICATOR);
      expect(codeOf(await gql(url(), other.token, REVISE, { id: revised, grade: 2 }))).toBe('REFERENCE_LOCKED');
    });

    it('keeps the record of a revision in the database: REVISED without who, when or the previous source is refused', async () => {
      const { id } = await referenceReadBy(firstReaders[1], 1, ReferenceSource.AGREEMENT);
      await expect(node().dataSource.query(`UPDATE reference_grade SET source = 'REVISED' WHERE id = $1`, [id])).rejects.toMatchObject({
        driverError: { code: '23514' },
      });
      await expect(
        node().dataSource.query(`UPDATE reference_grade SET previous_grade = 1, previous_not_assessable = true WHERE id = $1`, [id]),
      ).rejects.toMatchObject({ driverError: { code: '23514' } });
    });
  });
});
