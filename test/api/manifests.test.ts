import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ReaderRole, Role } from '../../server/domain';
import type { Site } from '../../server/entities';
import { Factory } from '../helpers/factories';
import { gqlOk } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';
import { stow } from '../helpers/stow';

const FIXTURES = path.resolve(__dirname, '../fixtures/dicom');
const MANIFEST = `mutation ($csv: String!) { importPatientsManifest(csv: $csv) { stored rows created updated rejected { source code reason } } }`;
const JOINT_IMAGES = `mutation ($site: ID!, $csv: String!) { importJointImagesManifest(siteId: $site, csv: $csv) { stored rows created updated rejected { source code reason } } }`;
const READINGS = `mutation ($site: ID!, $csv: String!) { importReadingsManifest(siteId: $site, csv: $csv) { stored rows created updated rejected { source code reason } } }`;
const PATIENTS_HEADER = 'site,patient_id,pseudonym,sex,age,eligible,exclusion_reasons';
// The fixtures' Patient ID and SOP Instance UIDs (test/fixtures/dicom/IDENTIFIERS.json).
const MRN = 'MRN-7734021';
const CT_UID = '1.2.826.0.1.3680043.9.7134.1.20240117.1.2.3.1';
const MR_UID = '1.2.826.0.1.3680043.9.7134.1.20240117.1.2.3.4';

describe('cohort manifests', () => {
  const node = useTestNode();
  let factory: Factory;
  let east: Site;
  let coordinator: string;
  let other: string;
  const count = async (sql: string) => (await node().dataSource.query(sql))[0].n as number;
  const patients = (csv: string, token = coordinator) => gqlOk(node().url, token, MANIFEST, { csv }).then((d) => d.importPatientsManifest);

  beforeAll(async () => {
    factory = new Factory(node().services);
    east = await factory.site('EAST');
    const west = await factory.site('WEST');
    coordinator = await factory.token(Role.COORDINATOR, { site: east });
    other = await factory.token(Role.COORDINATOR, { site: west });
  });

  describe('patients', () => {
    it('creates patients with their ten joints, keyed by a hash of patient_id that is never stored', async () => {
      const result = await patients(`${PATIENTS_HEADER}\nEAST,${MRN},EAST-P001,F,76,yes,\nEAST,MRN-2,,M,55,no,PRIOR_LUMBAR_SURGERY;FRACTURE\n`);
      expect(result).toEqual({ stored: true, rows: 2, created: 2, updated: 0, rejected: [] });
      const rows = await node().dataSource.query(
        `SELECT pseudonym, sex, age_at_first_imaging, exclusion_reasons::text[] AS reasons, patient_key FROM patient ORDER BY age_at_first_imaging DESC`,
      );
      expect(rows[0]).toMatchObject({ pseudonym: 'EAST-P001', sex: 'FEMALE', age_at_first_imaging: 76, reasons: [] });
      expect(rows[1]).toMatchObject({ sex: 'MALE', age_at_first_imaging: 55, reasons: ['PRIOR_LUMBAR_SURGERY', 'FRACTURE'] });
      expect(rows[1].pseudonym).toMatch(/^EAST-[0-9A-F]{10}$/);
      expect(JSON.stringify(rows)).not.toContain(MRN);
      expect(rows.every((r: { patient_key: string }) => /^[0-9a-f]{64}$/.test(r.patient_key))).toBe(true);
      expect(await count('SELECT count(*)::int AS n FROM joint')).toBe(20);
    });

    it('updates on re-upload instead of duplicating', async () => {
      const result = await patients(`${PATIENTS_HEADER}\nEAST,${MRN},EAST-P001,F,77,yes,\n`);
      expect(result).toMatchObject({ stored: true, created: 0, updated: 1 });
      expect(await count('SELECT count(*)::int AS n FROM patient')).toBe(2);
    });

    it('rejects every bad row with its line and reason, and stores none of the file', async () => {
      const csv = [
        PATIENTS_HEADER,
        'EAST,MRN-10,,F,50,yes,', // line 2: fine on its own
        'NOWHERE,MRN-11,,F,50,yes,', // 3
        'WEST,MRN-12,,F,50,yes,', // 4: another site
        'EAST,,,F,50,yes,', // 5: empty id
        'EAST,MRN-13,,X,50,yes,', // 6: sex
        'EAST,MRN-14,,F,200,yes,', // 7: age
        'EAST,MRN-15,,F,50,no,', // 8: excluded without reason
        'EAST,MRN-16,,F,50,no,LUMBAGO', // 9: unknown reason
        'EAST,MRN-10,,F,50,yes,', // 10: duplicate
      ].join('\n');
      const result = await patients(csv);
      expect(result.stored).toBe(false);
      expect(result.rejected.map((r: { source: string; code: string }) => `${r.source} ${r.code}`)).toEqual([
        'line 3 UNKNOWN_SITE',
        'line 4 SITE_OUT_OF_SCOPE',
        'line 5 INVALID_VALUE',
        'line 6 INVALID_VALUE',
        'line 7 INVALID_VALUE',
        'line 8 INVALID_VALUE',
        'line 9 INVALID_VALUE',
        'line 10 DUPLICATE_ROW',
      ]);
      expect(await count('SELECT count(*)::int AS n FROM patient')).toBe(2);
    });

    it('rejects a pseudonym equal to the hospital ID (it is written into every object) and odd sex values', async () => {
      const result = await patients(`${PATIENTS_HEADER}\nEAST,MRN-30,mrn-30,F,40,yes,\nEAST,MRN-31,,constructor,40,yes,\n`);
      expect(result.rejected.map((r: any) => `${r.source} ${r.code}`)).toEqual(['line 2 INVALID_VALUE', 'line 3 INVALID_VALUE']);
    });

    it('rejects a file without the required columns or that is not CSV', async () => {
      expect((await patients('site,name\nEAST,x\n')).rejected[0]).toMatchObject({ source: 'line 1', code: 'MALFORMED_CSV' });
      expect((await patients('site,patient_id\n"EAST,MRN\n')).rejected[0]).toMatchObject({ code: 'MALFORMED_CSV' });
    });

    it('rejects a pseudonym that belongs to another patient (CONFLICT) and rolls the file back', async () => {
      const result = await patients(`${PATIENTS_HEADER}\nEAST,MRN-20,,F,40,yes,\nEAST,MRN-21,EAST-P001,F,40,yes,\n`);
      expect(result.stored).toBe(false);
      expect(result.rejected).toEqual([expect.objectContaining({ source: 'line 3', code: 'CONFLICT' })]);
      expect(await count('SELECT count(*)::int AS n FROM patient')).toBe(2);
    });
  });

  describe('joint images', () => {
    beforeAll(async () => {
      const files = await Promise.all(
        ['identified-explicit-le.dcm', 'identified-mr.dcm'].map(async (f) => ({ bytes: await readFile(path.join(FIXTURES, f)) })),
      );
      expect((await stow(node().url, coordinator, files)).status).toBe(202);
    });

    it('links joints to frames of stored instances with their regions, and updates on re-upload', async () => {
      const csv = `patient_id,level,side,sop_instance_uid,frame,x,y,width,height\n${MRN},L4_L5,LEFT,${CT_UID},0,4,4,32,32\n${MRN},L4/L5,RIGHT,${MR_UID},0,0,0,64,64\n`;
      const first = await gqlOk(node().url, coordinator, JOINT_IMAGES, { site: east.id, csv });
      expect(first.importJointImagesManifest).toEqual({ stored: true, rows: 2, created: 2, updated: 0, rejected: [] });
      const again = await gqlOk(node().url, coordinator, JOINT_IMAGES, { site: east.id, csv: csv.replace(',4,4,32,32', ',8,8,16,16') });
      expect(again.importJointImagesManifest).toMatchObject({ stored: true, created: 0, updated: 2 });
      const images = await gqlOk(
        node().url,
        coordinator,
        `{ jointImages(filter: { levels: [L4_L5] }) { nodes { roiX roiWidth joint { side } instance { series { modality } } } } }`,
      );
      expect(images.jointImages.nodes).toHaveLength(2);
      expect(images.jointImages.nodes.find((n: any) => n.joint.side === 'LEFT')).toMatchObject({
        roiX: 8,
        roiWidth: 16,
        instance: { series: { modality: 'CT' } },
      });
    });

    it('rejects unknown patients and instances, regions outside the image, bad values and duplicates', async () => {
      const csv = [
        'patient_id,level,side,sop_instance_uid,frame,x,y,width,height',
        `MRN-NOBODY,L4_L5,LEFT,${CT_UID},0,0,0,8,8`,
        `${MRN},L4_L5,LEFT,1.2.3.4.5.6,0,0,0,8,8`,
        `${MRN},L4_L5,LEFT,${CT_UID},0,60,0,8,8`,
        `${MRN},L4_L5,LEFT,${CT_UID},1,0,0,8,8`,
        `${MRN},L6_S2,LEFT,${CT_UID},0,0,0,8,8`,
        `${MRN},L1_L2,LEFT,${CT_UID},0,0,0,0,8`,
        `${MRN},L1_L2,LEFT,${CT_UID},0,0,0,8,8`,
        `${MRN},L1_L2,LEFT,${CT_UID},0,0,0,8,8`,
      ].join('\n');
      const result = await gqlOk(node().url, coordinator, JOINT_IMAGES, { site: east.id, csv });
      expect(result.importJointImagesManifest.rejected.map((r: any) => `${r.source} ${r.code}`)).toEqual([
        'line 2 UNKNOWN_PATIENT',
        'line 3 UNKNOWN_INSTANCE',
        'line 4 INVALID_VALUE',
        'line 5 INVALID_VALUE',
        'line 6 INVALID_VALUE',
        'line 7 INVALID_VALUE',
        'line 9 DUPLICATE_ROW',
      ]);
      expect(await count('SELECT count(*)::int AS n FROM joint_image')).toBe(2);
    });

    it('refuses another site’s coordinator (FORBIDDEN)', async () => {
      const response = await fetch(`${node().url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${other}` },
        body: JSON.stringify({ query: JOINT_IMAGES, variables: { site: east.id, csv: 'patient_id,level,side,sop_instance_uid,frame,x,y,width,height\n' } }),
      });
      expect(((await response.json()) as any).errors[0].extensions.code).toBe('FORBIDDEN');
    });
  });

  describe('readings', () => {
    let r1: string;
    let r2: string;

    beforeAll(async () => {
      r1 = (await factory.reader(east, ReaderRole.READER)).code;
      r2 = (await factory.reader(east, ReaderRole.READER)).code;
    });

    it('records readings under the reading rules: agreement becomes the reference grade, NA stays not assessable', async () => {
      const csv = [
        'reader,patient_id,level,side,modality,feature,grade',
        `${r1},${MRN},L4_L5,LEFT,CT,OSTEOPHYTES,2`,
        `${r2},${MRN},L4_L5,LEFT,CT,OSTEOPHYTES,2`,
        `${r1},${MRN},L4_L5,LEFT,CT,EROSION,NA`,
        `${r2},${MRN},L4_L5,LEFT,CT,EROSION,1`,
      ].join('\n');
      const result = await gqlOk(node().url, coordinator, READINGS, { site: east.id, csv });
      expect(result.importReadingsManifest).toEqual({ stored: true, rows: 4, created: 4, updated: 0, rejected: [] });
      expect(await count(`SELECT count(*)::int AS n FROM reading WHERE not_assessable`)).toBe(1);
      expect(await count(`SELECT count(*)::int AS n FROM reference_grade WHERE source = 'AGREEMENT' AND grade = 2`)).toBe(1);
      const queue = await gqlOk(node().url, coordinator, `{ adjudicationQueue { totalCount } }`);
      expect(queue.adjudicationQueue.totalCount).toBe(1);
    });

    it('rejects rows that break a rule or a scale, and stores none of the file', async () => {
      const before = await count('SELECT count(*)::int AS n FROM reading');
      const csv = [
        'reader,patient_id,level,side,modality,feature,grade',
        `${r1},${MRN},L1_L2,LEFT,CT,OSTEOPHYTES,1`, // 2: fine
        `NOBODY,${MRN},L1_L2,LEFT,CT,OSTEOPHYTES,1`, // 3
        `${r1},${MRN},L1_L2,LEFT,PET,OSTEOPHYTES,1`, // 4
        `${r1},${MRN},L1_L2,LEFT,CT,OSTEOPHYTES,many`, // 5
        `${r1},${MRN},L1_L2,LEFT,CT,OSTEOPHYTES,1`, // 6: duplicate of 2
      ].join('\n');
      const result = await gqlOk(node().url, coordinator, READINGS, { site: east.id, csv });
      expect(result.importReadingsManifest.rejected.map((r: any) => `${r.source} ${r.code}`)).toEqual([
        'line 3 UNKNOWN_READER',
        'line 4 INVALID_VALUE',
        'line 5 INVALID_VALUE',
        'line 6 DUPLICATE_ROW',
      ]);
      const scale = await gqlOk(node().url, coordinator, READINGS, {
        site: east.id,
        csv: `reader,patient_id,level,side,modality,feature,grade\n${r1},${MRN},L1_L2,LEFT,CT,OSTEOPHYTES,1\n${r1},${MRN},L1_L2,LEFT,CT,JOINT_SPACE_NARROWING,3\n`,
      });
      expect(scale.importReadingsManifest.rejected).toEqual([expect.objectContaining({ source: 'line 3', code: 'INVALID_VALUE' })]);
      const again = await gqlOk(node().url, coordinator, READINGS, {
        site: east.id,
        csv: `reader,patient_id,level,side,modality,feature,grade\n${r1},${MRN},L4_L5,LEFT,CT,OSTEOPHYTES,1\n`,
      });
      expect(again.importReadingsManifest.rejected).toEqual([expect.objectContaining({ source: 'line 2', code: 'RULE_VIOLATION' })]);
      expect(await count('SELECT count(*)::int AS n FROM reading')).toBe(before);
    });
  });
});
