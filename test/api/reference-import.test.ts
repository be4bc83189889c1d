import { createHash } from 'node:crypto';
import { ReaderRole, Role } from '../../server/domain';
import type { Joint, Patient, Site } from '../../server/entities';
import { seededRandom } from '../../server/stats/bootstrap';
import { Factory } from '../helpers/factories';
import { codeOf, gql, gqlOk } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';

const IMPORT = `mutation ($csv: String!) { importReferenceStandard(csv: $csv) {
  stored rows created updated rejected { source code reason } import { id sha256 rows created replaced sources importedBy importedAt } } }`;
const CONFIRM = `mutation ($id: ID!) { confirmReferenceImport(id: $id) { id grades confirmedGrades confirmations { site { code } confirmedBy { code } confirmedAt grades } } }`;
const PROVENANCE = `query ($id: ID!) { referenceImport(id: $id) { id sha256 rows created replaced sources importedBy importedAt grades confirmedGrades
  confirmations { site { code } confirmedBy { code slot } confirmedAt grades } } }`;
const RECORD = `mutation ($input: RecordReadingInput!) { recordReading(input: $input) { id } }`;
const HEADER = 'site,patient,level,side,modality,feature,grade,source';

describe('reference-standard import', () => {
  const node = useTestNode();
  let factory: Factory;
  let east: Site;
  let west: Site;
  let admin: string;
  let coordinator: string;
  let statistician: string;
  let eastSenior: { reader: { id: string }; token: string };
  let westSenior: { reader: { id: string }; token: string };
  let readers: Array<{ reader: { id: string }; token: string }>;
  let adjudicator: { reader: { id: string }; token: string };
  const patients: Record<string, Patient> = {};
  const joints: Record<string, Joint[]> = {};

  const upload = async (csv: string, token = coordinator) => (await gqlOk(node().url, token, IMPORT, { csv })).importReferenceStandard;
  const count = async (sql: string) => (await node().dataSource.query(sql))[0].n as number;
  const jointOf = (pseudonym: string, level: string, side: string) => joints[pseudonym].find((j) => j.level === level && j.side === side) as Joint;

  beforeAll(async () => {
    factory = new Factory(node().services);
    east = await factory.site('EAST');
    west = await factory.site('WEST');
    admin = await factory.token(Role.ADMIN);
    coordinator = await factory.token(Role.COORDINATOR, { site: east });
    statistician = await factory.token(Role.STATISTICIAN);
    for (const [site, pseudonym] of [
      [east, 'EAST-P001'],
      [east, 'EAST-P002'],
      [east, 'EAST-P003'],
      [west, 'WEST-P001'],
    ] as const) {
      patients[pseudonym] = await factory.patient(site, [], pseudonym);
      joints[pseudonym] = await factory.joints(patients[pseudonym]);
    }
    readers = [await factory.readerWithToken(east), await factory.readerWithToken(east)];
    adjudicator = await factory.readerWithToken(east, ReaderRole.ADJUDICATOR);
    eastSenior = await factory.readerWithToken(east, ReaderRole.SENIOR);
    westSenior = await factory.readerWithToken(west, ReaderRole.SENIOR);
  });

  it('lands a consensus panel’s grades unconfirmed, keyed by pseudonym, with the provenance of the file', async () => {
    const csv = [
      HEADER,
      'EAST,EAST-P001,L4_L5,LEFT,CT,OSTEOPHYTES,2,CONSENSUS_PANEL',
      'EAST,EAST-P001,L4/L5,RIGHT,CT,osteophytes,0,consensus_panel',
      'EAST,EAST-P001,L5_S1,LEFT,MR,SUBCHONDRAL_CYSTS,NA,EXTERNAL_READ',
      '',
    ].join('\n');
    const result = await upload(csv);
    expect(result).toMatchObject({ stored: true, rows: 3, created: 3, updated: 0, rejected: [] });
    expect(result.import).toMatchObject({
      sha256: createHash('sha256').update(csv).digest('hex'),
      rows: 3,
      created: 3,
      replaced: 0,
      sources: ['CONSENSUS_PANEL', 'EXTERNAL_READ'],
    });
    expect(result.import.importedBy).toMatch(/^token/);
    const grades = await gqlOk(
      node().url,
      coordinator,
      `{ referenceGrades(filter: { patientIds: ["${patients['EAST-P001'].id}"] }) { nodes { feature grade notAssessable source confirmedAt importId import { id sha256 } } } }`,
    );
    expect(grades.referenceGrades.nodes.map((g: any) => `${g.feature}:${g.grade}:${g.notAssessable}:${g.source}`).sort()).toEqual([
      'OSTEOPHYTES:0:false:CONSENSUS_PANEL',
      'OSTEOPHYTES:2:false:CONSENSUS_PANEL',
      'SUBCHONDRAL_CYSTS:null:true:EXTERNAL_READ',
    ]);
    for (const g of grades.referenceGrades.nodes) expect(g).toMatchObject({ confirmedAt: null, importId: result.import.id, import: { id: result.import.id } });
    // Confirmation is the senior group's: until then, metrics (confirmed grades only) do not count these.
    const provenance = await gqlOk(node().url, statistician, PROVENANCE, { id: result.import.id });
    expect(provenance.referenceImport).toMatchObject({ grades: 3, confirmedGrades: 0, confirmations: [] });
  });

  it('answers the same file again with the import it became, and stores nothing new', async () => {
    const csv = `${HEADER}\nEAST,EAST-P001,L4_L5,LEFT,CT,OSTEOPHYTES,2,CONSENSUS_PANEL\nEAST,EAST-P001,L4/L5,RIGHT,CT,osteophytes,0,consensus_panel\nEAST,EAST-P001,L5_S1,LEFT,MR,SUBCHONDRAL_CYSTS,NA,EXTERNAL_READ\n`;
    const again = await upload(csv);
    expect(again).toMatchObject({ stored: true, created: 0, updated: 0, rejected: [] });
    expect(await count(`SELECT count(*)::int AS n FROM reference_import`)).toBe(1);
    expect(again.import.id).toBe((await node().dataSource.query(`SELECT id FROM reference_import`))[0].id);
  });

  it('replaces the readers’ unconfirmed agreement, but never a confirmed grade or another file’s, and then stores nothing', async () => {
    // Readers 1 and 2 agree on EAST-P002 L1_L2 LEFT: the workflow's AGREEMENT grade; the panel says otherwise.
    const agreed = { jointId: jointOf('EAST-P002', 'L1_L2', 'LEFT').id, modality: 'CT', feature: 'EROSION', grade: 1 };
    for (const r of readers) await gqlOk(node().url, r.token, RECORD, { input: agreed });
    const confirmedCell = { jointId: jointOf('EAST-P002', 'L2_L3', 'LEFT').id, modality: 'CT', feature: 'EROSION', grade: 0 };
    for (const r of readers) await gqlOk(node().url, r.token, RECORD, { input: confirmedCell });
    const [confirmed] = await node().dataSource.query(`SELECT id FROM reference_grade WHERE joint_id = $1`, [confirmedCell.jointId]);
    await gqlOk(node().url, eastSenior.token, `mutation ($ids: [ID!]!) { confirmReferenceGrades(input: { ids: $ids }) { id } }`, { ids: [confirmed.id] });

    const conflicting = await upload(
      [
        HEADER,
        'EAST,EAST-P002,L1_L2,LEFT,CT,EROSION,2,CONSENSUS_PANEL',
        'EAST,EAST-P002,L2_L3,LEFT,CT,EROSION,2,CONSENSUS_PANEL', // confirmed and locked
        'EAST,EAST-P001,L4_L5,LEFT,CT,OSTEOPHYTES,2,CONSENSUS_PANEL', // the first file's
        'EAST,EAST-P003,L1_L2,LEFT,CT,EROSION,1,CONSENSUS_PANEL',
      ].join('\n'),
    );
    expect(conflicting.stored).toBe(false);
    expect(conflicting.rejected.map((r: any) => `${r.source} ${r.code}`)).toEqual(['line 3 CONFLICT', 'line 4 CONFLICT']);
    expect(conflicting.rejected[0].reason).toMatch(/AGREEMENT, grade 0\) is confirmed and locked/);
    expect(conflicting.rejected[1].reason).toMatch(/came from reference import/);
    expect(await count(`SELECT count(*)::int AS n FROM reference_import`)).toBe(1);
    expect(await count(`SELECT count(*)::int AS n FROM reference_grade WHERE joint_id = '${jointOf('EAST-P003', 'L1_L2', 'LEFT').id}'`)).toBe(0);

    const replacing = await upload(`${HEADER}\nEAST,EAST-P002,L1_L2,LEFT,CT,EROSION,2,CONSENSUS_PANEL\nEAST,EAST-P003,L1_L2,LEFT,CT,EROSION,1,EXTERNAL_READ\n`);
    expect(replacing).toMatchObject({ stored: true, created: 1, updated: 1, import: { created: 1, replaced: 1 } });
    const [row] = await node().dataSource.query(`SELECT grade, source::text, import_id FROM reference_grade WHERE joint_id = $1`, [agreed.jointId]);
    expect(row).toEqual({ grade: 2, source: 'CONSENSUS_PANEL', import_id: replacing.import.id });
    // The audit keeps what the file replaced.
    const [audit] = await node().dataSource.query(`SELECT details FROM audit_event WHERE action = 'importReferenceStandard' AND entity_id = $1`, [
      replacing.import.id,
    ]);
    expect(audit.details.replaced).toEqual([expect.objectContaining({ source: 'AGREEMENT', grade: 1, notAssessable: false })]);
  });

  it('leaves an imported cell alone afterwards: agreeing readers add no reference, disagreeing ones need no adjudication', async () => {
    const panel = { jointId: jointOf('EAST-P001', 'L4_L5', 'LEFT').id, modality: 'CT', feature: 'OSTEOPHYTES' };
    await gqlOk(node().url, readers[0].token, RECORD, { input: { ...panel, grade: 1 } });
    await gqlOk(node().url, readers[1].token, RECORD, { input: { ...panel, grade: 1 } });
    const [kept] = await node().dataSource.query(`SELECT grade, source::text FROM reference_grade WHERE joint_id = $1 AND feature = 'OSTEOPHYTES'`, [
      panel.jointId,
    ]);
    expect(kept).toEqual({ grade: 2, source: 'CONSENSUS_PANEL' });

    const disputed = { jointId: jointOf('EAST-P001', 'L4_L5', 'RIGHT').id, modality: 'CT', feature: 'OSTEOPHYTES' };
    await gqlOk(node().url, readers[0].token, RECORD, { input: { ...disputed, grade: 3 } });
    await gqlOk(node().url, readers[1].token, RECORD, { input: { ...disputed, grade: 1 } });
    const queue = await gqlOk(node().url, adjudicator.token, `{ adjudicationQueue { nodes { jointId feature } } }`);
    expect(queue.adjudicationQueue.nodes).toEqual([]);
    const adjudicate = await gql(node().url, adjudicator.token, `mutation ($input: AdjudicateInput!) { adjudicate(input: $input) { id } }`, {
      input: { ...disputed, grade: 2, rationale: 'looks moderate' },
    });
    expect(codeOf(adjudicate)).toBe('CONFLICT');
  });

  it('is confirmed in bulk by each site’s senior, with their own token, and then locked', async () => {
    const both = await upload(
      `${HEADER}\nEAST,EAST-P003,L5_S1,LEFT,CT,OSTEOPHYTES,3,CONSENSUS_PANEL\nEAST,EAST-P003,L5_S1,RIGHT,CT,OSTEOPHYTES,1,CONSENSUS_PANEL\nWEST,WEST-P001,L5_S1,LEFT,CT,OSTEOPHYTES,0,CONSENSUS_PANEL\n`,
      admin,
    );
    expect(both).toMatchObject({ stored: true, created: 3 });
    const id = both.import.id;
    expect(codeOf(await gql(node().url, coordinator, CONFIRM, { id }))).toBe('FORBIDDEN');
    expect(codeOf(await gql(node().url, readers[0].token, CONFIRM, { id }))).toBe('FORBIDDEN');
    expect(codeOf(await gql(node().url, adjudicator.token, CONFIRM, { id }))).toBe('FORBIDDEN');
    expect(codeOf(await gql(node().url, eastSenior.token, CONFIRM, { id: '00000000-0000-4000-8000-000000000000' }))).toBe('NOT_FOUND');

    const east1 = await gqlOk(node().url, eastSenior.token, CONFIRM, { id });
    // The senior sees their own site: two grades, both now confirmed by them.
    expect(east1.confirmReferenceImport).toMatchObject({
      grades: 2,
      confirmedGrades: 2,
      confirmations: [{ site: { code: 'EAST' }, confirmedBy: { code: expect.any(String) }, grades: 2 }],
    });
    const halfway = await gqlOk(node().url, statistician, PROVENANCE, { id });
    expect(halfway.referenceImport).toMatchObject({ grades: 3, confirmedGrades: 2 });
    await gqlOk(node().url, westSenior.token, CONFIRM, { id });
    const done = await gqlOk(node().url, statistician, PROVENANCE, { id });
    expect(done.referenceImport).toMatchObject({ grades: 3, confirmedGrades: 3 });
    expect(done.referenceImport.confirmations.map((c: any) => `${c.site.code}:${c.grades}`)).toEqual(['EAST:2', 'WEST:1']);
    // The whole trail: file, importer, time, confirmer and time, on each grade.
    const trail = await gqlOk(
      node().url,
      eastSenior.token,
      `{ referenceGrades(filter: { patientIds: ["${patients['EAST-P003'].id}"], features: ["OSTEOPHYTES"] }) { nodes { source confirmedAt confirmedBy { id } import { sha256 importedBy importedAt } } } }`,
    );
    for (const g of trail.referenceGrades.nodes) {
      expect(g).toMatchObject({ source: 'CONSENSUS_PANEL', confirmedBy: { id: eastSenior.reader.id }, import: { sha256: both.import.sha256 } });
      expect(g.confirmedAt).not.toBeNull();
    }
    // A second call confirms nothing new; confirmed grades are locked.
    const again = await gqlOk(node().url, eastSenior.token, CONFIRM, { id });
    expect(again.confirmReferenceImport.confirmations).toEqual(east1.confirmReferenceImport.confirmations);
    const [locked] = await node().dataSource.query(`SELECT id FROM reference_grade WHERE import_id = $1 LIMIT 1`, [id]);
    const revise = await gql(node().url, eastSenior.token, `mutation ($id: ID!) { reviseReferenceGrade(input: { id: $id, grade: 1 }) { id } }`, {
      id: locked.id,
    });
    expect(codeOf(revise)).toBe('REFERENCE_LOCKED');
    expect(codeOf(await gql(node().url, await factory.token(Role.HUB), PROVENANCE, { id }))).toBe('FORBIDDEN');
  });

  it('is counted by metrics once confirmed: a reader against the consensus panel', async () => {
    const [reader] = readers;
    // Reader 1 read EAST-P003 L5_S1 LEFT (panel 3) as 2 and RIGHT (panel 1) as 0.
    for (const [side, grade] of [
      ['LEFT', 2],
      ['RIGHT', 0],
    ] as const) {
      await gqlOk(node().url, reader.token, RECORD, {
        input: { jointId: jointOf('EAST-P003', 'L5_S1', side).id, modality: 'CT', feature: 'OSTEOPHYTES', grade },
      });
    }
    const metrics = async (token: string) =>
      (
        await gqlOk(
          node().url,
          token,
          `query ($input: MetricsInput!) { metrics(input: $input) { groups { pooled suppressed suppression cases confusion { tp fp tn fn } } } }`,
          { input: { rater: { readerId: reader.reader.id }, scope: { features: ['OSTEOPHYTES'] } } },
        )
      ).metrics.groups[0];
    // Confirmed reference grades only: the two EAST-P003 cells (EAST-P001's panel grades are not confirmed). The
    // site's coordinator gets the numbers; a statistician, under disclosure control, not for one patient.
    expect(await metrics(coordinator)).toMatchObject({ suppressed: false, cases: 2, confusion: { tp: 1, fn: 1, tn: 0, fp: 0 } });
    expect(await metrics(statistician)).toMatchObject({ suppressed: true, suppression: 'FEWER_THAN_MIN_PATIENTS', cases: null, confusion: null });
  });

  it('rejects every bad row with its line and reason, and stores nothing of the file (a generator of files)', async () => {
    const random = seededRandom(20260101);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
    const good = () => {
      const level = pick(['L1_L2', 'L2_L3', 'L3_L4']);
      return {
        site: 'EAST',
        patient: pick(['EAST-P001', 'EAST-P002', 'EAST-P003']),
        level,
        side: pick(['LEFT', 'RIGHT']),
        modality: 'XR',
        feature: 'EROSION',
        grade: pick(['0', '1', '2', 'NA', 'na']),
        source: pick(['CONSENSUS_PANEL', 'EXTERNAL_READ']),
      };
    };
    type Row = ReturnType<typeof good>;
    // Each class of bad row, made from a good one.
    const BAD: Array<[string, (r: Row) => Row]> = [
      ['UNKNOWN_PATIENT', (r) => ({ ...r, patient: pick(['EAST-P999', 'MRN-7734021', 'WEST-P001', '']) })],
      ['GRADE_OUT_OF_SCALE', (r) => ({ ...r, grade: pick(['3', '4', '17']) })],
      ['INVALID_VALUE', (r) => ({ ...r, grade: pick(['N/A', 'not assessable', '-1', '1.5', '', 'two']) })],
      ['UNKNOWN_SOURCE', (r) => ({ ...r, source: pick(['AGREEMENT', 'ADJUDICATION', 'panel', '']) })],
      ['UNKNOWN_SITE', (r) => ({ ...r, site: pick(['NOWHERE', 'east', '']) })],
      ['SITE_OUT_OF_SCOPE', (r) => ({ ...r, site: 'WEST', patient: 'WEST-P001' })],
      ['INVALID_VALUE', (r) => ({ ...r, level: pick(['L6_S2', 'L4', '']) })],
      ['INVALID_VALUE', (r) => ({ ...r, side: pick(['MIDDLE', '']) })],
      ['INVALID_VALUE', (r) => ({ ...r, modality: pick(['US', 'PET', '']) })],
      ['INVALID_VALUE', (r) => ({ ...r, feature: pick(['LUMBAGO', '']) })],
    ];
    const before = await count(`SELECT count(*)::int AS n FROM reference_grade`);
    for (let file = 0; file < 25; file++) {
      const rows: Array<{ row: Row; code: string | null }> = [];
      const cells = new Set<string>();
      for (let i = 0; i < 3 + Math.floor(random() * 8); i++) {
        let row = good();
        // Good rows name distinct cells no reference holds yet (L1_L2-L3_L4 XR EROSION), so only the bad ones fail.
        while (cells.has(`${row.patient}:${row.level}:${row.side}`)) row = good();
        cells.add(`${row.patient}:${row.level}:${row.side}`);
        if (random() < 0.4) {
          const [code, make] = pick(BAD);
          rows.push({ row: make(row), code });
        } else rows.push({ row, code: null });
      }
      if (random() < 0.5) {
        const twice = pick(rows.filter((r) => r.code === null));
        if (twice) rows.push({ row: { ...twice.row, grade: twice.row.grade === '0' ? '1' : '0' }, code: 'DUPLICATE_ROW' });
      }
      if (!rows.some((r) => r.code)) rows.push({ row: { ...good(), grade: '9' }, code: 'GRADE_OUT_OF_SCALE' });
      const csv = [
        HEADER,
        ...rows.map(({ row }) => [row.site, row.patient, row.level, row.side, row.modality, row.feature, row.grade, row.source].join(',')),
      ].join('\n');
      const result = await upload(csv);
      expect(result.stored).toBe(false);
      expect(result.import).toBeNull();
      expect(result.rejected.map((r: any) => `${r.source} ${r.code}`)).toEqual(rows.flatMap((r, i) => (r.code ? [`line ${i + 2} ${r.code}`] : [])));
      for (const r of result.rejected) expect(r.reason.length).toBeGreaterThan(10);
    }
    expect(await count(`SELECT count(*)::int AS n FROM reference_grade`)).toBe(before);
    expect(await count(`SELECT count(*)::int AS n FROM reference_import`)).toBe(3);
  });

  it('rejects a file without its columns, and anyone but a coordinator or admin', async () => {
    expect((await upload('site,patient,level,side,modality,feature,grade\nEAST,EAST-P001,L1_L2,LEFT,CT,EROSION,1\n')).rejected[0]).toMatchObject({
      source: 'line 1',
      code: 'MALFORMED_CSV',
    });
    const bad = await gql(node().url, statistician, IMPORT, { csv: `${HEADER}\n` });
    expect(codeOf(bad)).toBe('FORBIDDEN');
    expect(codeOf(await gql(node().url, eastSenior.token, IMPORT, { csv: `${HEADER}\n` }))).toBe('FORBIDDEN');
  });
});
