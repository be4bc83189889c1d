import { randomInt } from 'node:crypto';
import { Modality, Role } from '../../server/domain';
import { Instance, JointImage, Series, Study, type Site } from '../../server/entities';
import { Factory } from '../helpers/factories';
import { gqlOk } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';

const NESTED = `{
  patients(first: 20) {
    nodes {
      pseudonym
      site { code }
      joints {
        level side
        readings { grade reader { code site { code } } joint { patient { pseudonym } } }
        referenceGrades { grade confirmedBy { code } }
        images { roiX instance { sopInstanceUid series { modality study { patient { pseudonym } } } } }
      }
      studies { series { instances { rows } } }
    }
  }
}`;

describe('nested queries', () => {
  const node = useTestNode();
  let factory: Factory;
  let site: Site;
  let admin: string;
  let readers: Array<{ token: string }>;

  /** A patient with a CT instance showing two joints that both readers grade, so every nested list has rows. */
  async function gradedPatient(): Promise<void> {
    const patient = await factory.patient(site);
    const joints = await factory.joints(patient);
    const uid = () => `2.25.${randomInt(1e9)}${randomInt(1e9)}`;
    const study = await node().dataSource.getRepository(Study).save({ patientId: patient.id, studyInstanceUid: uid(), studyDate: null, description: null });
    const series = await node()
      .dataSource.getRepository(Series)
      .save({ studyId: study.id, seriesInstanceUid: uid(), modality: Modality.CT, seriesNumber: 1, description: null });
    const instance = await node()
      .dataSource.getRepository(Instance)
      .save({
        seriesId: series.id,
        sopInstanceUid: uid(),
        sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
        instanceNumber: 1,
        rows: 512,
        columns: 512,
        numberOfFrames: 1,
        bitsAllocated: 16,
        samplesPerPixel: 1,
        photometricInterpretation: 'MONOCHROME2',
        transferSyntaxUid: '1.2.840.10008.1.2.1',
        sha256: 'a'.repeat(64),
        sizeBytes: 524_288,
      });
    for (const joint of joints.slice(0, 2)) {
      await node()
        .dataSource.getRepository(JointImage)
        .save({ jointId: joint.id, instanceId: instance.id, frame: 0, roiX: 10, roiY: 10, roiWidth: 64, roiHeight: 64 });
    }
    for (const joint of joints.slice(0, 2)) {
      for (const [i, reader] of readers.entries()) {
        await gqlOk(node().url, reader.token, `mutation ($input: RecordReadingInput!) { recordReading(input: $input) { id } }`, {
          input: { jointId: joint.id, modality: 'CT', feature: 'OSTEOPHYTES', grade: i },
        });
      }
    }
  }

  async function statementsFor(query: string): Promise<{ statements: number; auditInserts: number; audited: string[]; data: Record<string, any> }> {
    const [before, auditsBefore] = [node().queries.count, node().queries.auditInserts];
    const [{ seq }] = await node().dataSource.query('SELECT coalesce(max(seq), 0) AS seq FROM audit_event');
    const data = await gqlOk(node().url, admin, query);
    const statements = node().queries.count - before;
    const auditInserts = node().queries.auditInserts - auditsBefore;
    const rows: Array<{ entity_type: string }> = await node().dataSource.query(
      `SELECT entity_type FROM audit_event WHERE seq > $1 AND action = 'read' ORDER BY entity_type`,
      [seq],
    );
    return { statements, auditInserts, audited: rows.map((r) => r.entity_type), data };
  }

  beforeAll(async () => {
    factory = new Factory(node().services);
    site = await factory.site();
    admin = await factory.token(Role.ADMIN);
    readers = [await factory.readerWithToken(site), await factory.readerWithToken(site)];
  });

  it('batch every nested field: the number of SQL statements does not grow with the number of patients', async () => {
    await gradedPatient();
    await gradedPatient();
    await gqlOk(node().url, admin, '{ viewer { role } }'); // the token's lookup, cached from here on
    const small = await statementsFor(NESTED);
    expect(small.data.patients.nodes).toHaveLength(2);
    const firstJoint = small.data.patients.nodes[0].joints[0];
    expect(firstJoint.readings).toHaveLength(2);
    expect(firstJoint.images[0].instance.series.study.patient.pseudonym).toBe(small.data.patients.nodes[0].pseudonym);
    expect(small.data.patients.nodes[0].studies[0].series[0].instances).toEqual([{ rows: 512 }]);

    for (let i = 0; i < 6; i++) await gradedPatient();
    const large = await statementsFor(NESTED);
    expect(large.data.patients.nodes).toHaveLength(8);
    expect(large.statements).toBe(small.statements);
    // One statement per nested list or parent lookup, plus the page and its count: far below one per row.
    expect(large.statements - large.auditInserts).toBeLessThan(25);
    // One audit row per batch of patient-level rows, at every depth (all written by one INSERT before the answer):
    // the patients page, then Patient.joints,
    // Joint.readings, Reading.joint, Joint.patient, Joint.referenceGrades, Joint.images, JointImage.instance,
    // Instance.series, Series.study, Patient.studies, Study.series, Series.instances (Study.patient comes from the
    // request's loader cache: those patients were read and audited already).
    const expected = [
      'Patient',
      'Joint',
      'Reading',
      'Joint',
      'Patient',
      'ReferenceGrade',
      'JointImage',
      'Instance',
      'Series',
      'Study',
      'Study',
      'Series',
      'Instance',
    ];
    expect(large.audited).toEqual([...expected].sort());
    expect(large.auditInserts).toBe(1);
    expect(small.audited).toEqual(large.audited);
  });
});
