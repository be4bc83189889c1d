import { Role } from '../../server/domain';
import { contingency, kappa } from '../../server/stats/agreement';
import { seededRandom } from '../../server/stats/bootstrap';
import { Factory } from '../helpers/factories';
import { gqlOk } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';

const AGREEMENT = `query ($bySite: Boolean!) { agreement(bySite: $bySite) {
  feature modality site suppressed suppression
  readers { cases unweighted { value reason } linear { value reason } quadratic { value reason } percentAgreement { value } }
  adjudicationRate { value }
  readerVsReference { readerId readerCode slot suppressed suppression cases quadratic { value } } } }`;

/** Six ids in ascending order: a permutation decides which reader gets which, and so which sorts first. */
const IDS = Array.from({ length: 6 }, (_, i) => `00000000-0000-4000-8000-00000000000${i + 1}`);

interface Study {
  sites: string[];
  /** Per site: patients, each with grades of its cells by the FIRST and the SECOND reader, and a reference. */
  cells: Array<{ site: number; patient: number; level: string; side: string; first: number; second: number; reference: number }>;
}

/**
 * A generated three-site study of one 4-grade feature: each site's FIRST reader grades with one bias and its
 * SECOND with another (and the biases differ between sites), so the reader-1 and reader-2 marginals differ
 * and a table that mixes orientations moves.
 */
function generateStudy(seed: number): Study {
  const random = seededRandom(seed);
  const pick = (n: number) => Math.floor(random() * n);
  const sites = ['NORTH', 'SOUTH', 'EAST'];
  const cells: Study['cells'] = [];
  sites.forEach((_, site) => {
    const bias = [pick(3) - 1, pick(3) - 1];
    const patients = 4 + pick(5);
    for (let patient = 0; patient < patients; patient++) {
      for (const level of ['L3_L4', 'L4_L5', 'L5_S1']) {
        for (const side of ['LEFT', 'RIGHT']) {
          const truth = pick(4);
          const read = (b: number) => Math.min(3, Math.max(0, truth + b + (random() < 0.3 ? pick(3) - 1 : 0)));
          cells.push({ site, patient, level, side, first: read(bias[0]), second: read(bias[1]), reference: truth });
        }
      }
    }
  });
  return { sites, cells };
}

describe('agreement orientation', () => {
  const node = useTestNode();
  let statistician: string;

  beforeAll(async () => {
    statistician = await new Factory(node().services).token(Role.STATISTICIAN);
  });

  /** Loads the study with reader ids assigned by `permutation` (reader k of the 6 gets IDS[permutation[k]]). */
  async function load(study: Study, permutation: number[]): Promise<Array<{ id: string; site: number; slot: 'FIRST' | 'SECOND' }>> {
    const ds = node().dataSource;
    await ds.query(`DELETE FROM reference_grade; DELETE FROM reading; DELETE FROM reader; DELETE FROM joint; DELETE FROM patient; DELETE FROM site`);
    const siteIds: string[] = [];
    for (const code of study.sites) siteIds.push((await ds.query(`INSERT INTO site (code, name) VALUES ($1, $1) RETURNING id`, [code]))[0].id);
    const readers = study.sites.flatMap((_, site) =>
      (['FIRST', 'SECOND'] as const).map((slot, k) => ({ id: IDS[permutation[site * 2 + k]], site, slot, code: `${study.sites[site]}-R${k + 1}` })),
    );
    for (const r of readers) {
      await ds.query(`INSERT INTO reader (id, code, role, years_of_experience, site_id, slot) VALUES ($1, $2, 'READER', 5, $3, $4)`, [
        r.id,
        r.code,
        siteIds[r.site],
        r.slot,
      ]);
    }
    // Patients, joints, readings and reference grades in one statement each.
    const pseudonym = (c: { site: number; patient: number }) => `S${c.site}P${c.patient}`;
    const firstCells = study.cells.filter((c, i) => study.cells.findIndex((d) => pseudonym(d) === pseudonym(c)) === i);
    const patientRows: Array<{ id: string; pseudonym: string }> = await ds.query(
      `INSERT INTO patient (site_id, pseudonym, date_shift_days) SELECT s, p, -400 FROM unnest($1::uuid[], $2::text[]) AS v(s, p) RETURNING id, pseudonym`,
      [firstCells.map((c) => siteIds[c.site]), firstCells.map(pseudonym)],
    );
    const patientOf = new Map(patientRows.map((r) => [r.pseudonym, r.id]));
    const jointIds: string[] = (
      await ds.query(
        `INSERT INTO joint (patient_id, level, side) SELECT p, l::level, s::side FROM unnest($1::uuid[], $2::text[], $3::text[]) WITH ORDINALITY AS v(p, l, s, n) ORDER BY n RETURNING id`,
        [study.cells.map((c) => patientOf.get(pseudonym(c))), study.cells.map((c) => c.level), study.cells.map((c) => c.side)],
      )
    ).map((r: { id: string }) => r.id);
    const readerOf = (site: number, slot: 'FIRST' | 'SECOND') => (readers.find((r) => r.site === site && r.slot === slot) as { id: string }).id;
    await ds.query(
      `INSERT INTO reading (joint_id, modality, feature, grade, reader_id) SELECT j, 'CT', 'OSTEOPHYTES', g, r FROM unnest($1::uuid[], $2::smallint[], $3::uuid[]) AS v(j, g, r)`,
      [
        [...jointIds, ...jointIds],
        [...study.cells.map((c) => c.first), ...study.cells.map((c) => c.second)],
        [...study.cells.map((c) => readerOf(c.site, 'FIRST')), ...study.cells.map((c) => readerOf(c.site, 'SECOND'))],
      ],
    );
    await ds.query(
      `INSERT INTO reference_grade (joint_id, modality, feature, grade, source, confirmed_at) SELECT j, 'CT', 'OSTEOPHYTES', g, 'AGREEMENT', now() FROM unnest($1::uuid[], $2::smallint[]) AS v(j, g)`,
      [jointIds, study.cells.map((c) => c.reference)],
    );
    return readers;
  }

  /** The answer with reader ids replaced by codes: what must not change when only the ids do. */
  const withoutIds = (groups: Array<{ readerVsReference: Array<{ readerId: string }> }>) =>
    groups.map((g) => ({ ...g, readerVsReference: g.readerVsReference.map(({ readerId: _id, ...rest }) => rest) }));

  it('gives the same pooled and per-site kappas however reader ids are assigned (a generator of studies, each under several permutations)', async () => {
    let movedUnderOldRule = 0;
    for (let seed = 1; seed <= 6; seed++) {
      const study = generateStudy(seed);
      const random = seededRandom(1000 + seed);
      const permutations = [
        [0, 1, 2, 3, 4, 5],
        [5, 4, 3, 2, 1, 0],
      ];
      while (permutations.length < 4) {
        const p = [0, 1, 2, 3, 4, 5];
        for (let i = p.length - 1; i > 0; i--) {
          const j = Math.floor(random() * (i + 1));
          [p[i], p[j]] = [p[j], p[i]];
        }
        permutations.push(p);
      }
      const answers: unknown[] = [];
      const oldRule = new Set<number>();
      for (const permutation of permutations) {
        const readers = await load(study, permutation);
        const pooled = await gqlOk(node().url, statistician, AGREEMENT, { bySite: false });
        const perSite = await gqlOk(node().url, statistician, AGREEMENT, { bySite: true });
        answers.push({ pooled: withoutIds(pooled.agreement), perSite: withoutIds(perSite.agreement) });

        // Pooled rows FIRST, columns SECOND, as documented: the answer is this table's kappa.
        const first = study.cells.map((c) => c.first);
        const second = study.cells.map((c) => c.second);
        expect(pooled.agreement[0].readers.quadratic.value).toBeCloseTo(kappa(contingency(first, second, 4), 'quadratic').value as number, 12);
        expect(pooled.agreement[0].readers.cases).toBe(study.cells.length);

        // The rule it replaces: each cell's pair in reader-id order.
        const byId = study.cells.map((c) => {
          const [a, b] = readers.filter((r) => r.site === c.site);
          return a.id < b.id ? [c.first, c.second] : [c.second, c.first];
        });
        oldRule.add(
          kappa(
            contingency(
              byId.map((p) => p[0]),
              byId.map((p) => p[1]),
              4,
            ),
            'unweighted',
          ).value as number,
        );
      }
      for (const answer of answers.slice(1)) expect(answer).toEqual(answers[0]);
      if (oldRule.size > 1) movedUnderOldRule++;
    }
    // The generator makes studies where ordering by id did move the pooled kappa: the test can tell the two rules apart.
    expect(movedUnderOldRule).toBeGreaterThan(0);
  });

  it('names each reader’s slot next to their agreement with the reference', async () => {
    await load(generateStudy(9), [0, 1, 2, 3, 4, 5]);
    const data = await gqlOk(node().url, statistician, AGREEMENT, { bySite: true });
    const north = data.agreement.find((g: { site: string }) => g.site === 'NORTH');
    expect(north.readerVsReference.map((r: { readerCode: string; slot: string }) => `${r.readerCode}:${r.slot}`)).toEqual([
      'NORTH-R1:FIRST',
      'NORTH-R2:SECOND',
    ]);
  });

  it('keeps the slot of an entry disclosure control withholds, and withholds the same rows whatever the reader ids', async () => {
    // Sites of 4 to 8 patients and a minimum of 5: some studies have a site whose rows a statistician does not get.
    let withheld = 0;
    let released = 0;
    for (let seed = 1; seed <= 6; seed++) {
      const study = generateStudy(seed);
      const answers: unknown[] = [];
      for (const permutation of [
        [0, 1, 2, 3, 4, 5],
        [5, 4, 3, 2, 1, 0],
      ]) {
        await load(study, permutation);
        const data = await gqlOk(node().url, statistician, AGREEMENT, { bySite: true });
        const patientsAt = (site: string) => new Set(study.cells.filter((c) => study.sites[c.site] === site).map((c) => c.patient)).size;
        for (const group of data.agreement) {
          // A site under 5 patients is withheld, and so is every other site: "this site" and "this site and the
          // small one" would differ by the small one's patients.
          const suppression =
            patientsAt(group.site) < 5 ? 'FEWER_THAN_MIN_PATIENTS' : study.sites.some((s) => patientsAt(s) < 5) ? 'COMPLEMENT_TOO_SMALL' : null;
          expect(group.suppression).toBe(suppression);
          expect(group.readerVsReference.map((r: any) => [r.readerCode, r.slot, r.suppression])).toEqual([
            [`${group.site}-R1`, 'FIRST', suppression],
            [`${group.site}-R2`, 'SECOND', suppression],
          ]);
          if (suppression) {
            withheld++;
            expect(group).toMatchObject({ readers: null, adjudicationRate: null });
            for (const r of group.readerVsReference) expect(r).toMatchObject({ cases: null, quadratic: null });
          } else released++;
        }
        answers.push(withoutIds(data.agreement));
      }
      expect(answers[1]).toEqual(answers[0]);
    }
    expect(withheld).toBeGreaterThan(0);
    expect(released).toBeGreaterThan(0);
  });
});
