import { ExclusionReason, Role, Split } from '../../server/domain';
import type { Patient, Site } from '../../server/entities';
import { DEFAULT_RATIOS, apportion, shuffleKey } from '../../server/services/split.service';
import { Factory } from '../helpers/factories';
import { codeOf, gql, gqlOk } from '../helpers/graphql-client';
import { useTestNode } from '../helpers/lifecycle';

type Ratios = { train: number; validation: number; test: number };
type Assignment = { patientId: string; split: Split; pseudonym: string; siteId: string };
type Count = { siteId: string; split: Split; patients: number };

const SPLITS: Split[] = [Split.TRAIN, Split.VALIDATION, Split.TEST];
const ratioOf = (ratios: Ratios, split: Split): number => (split === Split.TRAIN ? ratios.train : split === Split.VALIDATION ? ratios.validation : ratios.test);

const CREATE = `mutation ($input: CreateSplitVersionInput!) {
  createSplitVersion(input: $input) { id name seed frozen frozenAt stratification ratios { train validation test } }
}`;
const VERSION = `query ($id: ID!) {
  splitVersion(id: $id) { id name frozen frozenAt ratios { train validation test } counts { siteId split patients } }
}`;
const ASSIGNMENTS = `query ($id: ID!, $first: Int, $after: String) {
  splitAssignments(filter: { splitVersionId: $id }, first: $first, after: $after) {
    totalCount
    pageInfo { endCursor hasNextPage }
    nodes { id splitVersionId patientId split patient { pseudonym siteId } }
  }
}`;
const REASSIGN = `mutation ($input: ReassignPatientSplitInput!) { reassignPatientSplit(input: $input) { patientId split splitVersionId } }`;
const FREEZE = `mutation ($id: ID!) { freezeSplitVersion(id: $id) { id frozen frozenAt } }`;
const DELETE = `mutation ($id: ID!) { deleteSplitVersion(id: $id) }`;

describe('apportion', () => {
  const ratioSets: Ratios[] = [
    DEFAULT_RATIOS,
    { train: 0.6, validation: 0.2, test: 0.2 },
    { train: 0.8, validation: 0.1, test: 0.1 },
    { train: 1 / 3, validation: 1 / 3, test: 1 / 3 },
    { train: 0.5, validation: 0.5, test: 0 },
    { train: 1, validation: 0, test: 0 },
    { train: 0.55, validation: 0.3, test: 0.15 },
  ];

  it.each(ratioSets)('sums to n and stays within one patient of n x ratio for n = 0..200 (%o)', (ratios) => {
    for (let n = 0; n <= 200; n++) {
      const counts = apportion(n, ratios);
      expect(Object.keys(counts).sort()).toEqual([...SPLITS].sort());
      expect(counts.TRAIN + counts.VALIDATION + counts.TEST).toBe(n);
      for (const split of SPLITS) {
        expect(Number.isInteger(counts[split])).toBe(true);
        expect(counts[split]).toBeGreaterThanOrEqual(0);
        expect(Math.abs(counts[split] - n * ratioOf(ratios, split))).toBeLessThan(1 + 1e-9);
      }
    }
  });

  it('gives exact shares when n x ratio is a whole number', () => {
    expect(apportion(100, DEFAULT_RATIOS)).toEqual({ TRAIN: 70, VALIDATION: 15, TEST: 15 });
    expect(apportion(20, DEFAULT_RATIOS)).toEqual({ TRAIN: 14, VALIDATION: 3, TEST: 3 });
    expect(apportion(0, DEFAULT_RATIOS)).toEqual({ TRAIN: 0, VALIDATION: 0, TEST: 0 });
  });

  it('gives the leftover patients to the largest remainders', () => {
    // 7 x 0.7 = 4.9, 7 x 0.15 = 1.05: the leftover goes to TRAIN
    expect(apportion(7, DEFAULT_RATIOS)).toEqual({ TRAIN: 5, VALIDATION: 1, TEST: 1 });
    // 10 x 0.6 = 6, 10 x 0.25 = 2.5, 10 x 0.15 = 1.5
    expect(apportion(10, { train: 0.6, validation: 0.25, test: 0.15 }).TRAIN).toBe(6);
  });

  it('never assigns a patient to a split of ratio 0', () => {
    for (let n = 0; n <= 50; n++) expect(apportion(n, { train: 0.5, validation: 0.5, test: 0 }).TEST).toBe(0);
  });
});

describe('shuffleKey', () => {
  it('is a deterministic sha256 hex digest', () => {
    const key = shuffleKey(42, 'S1', 'P1');
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(shuffleKey(42, 'S1', 'P1')).toBe(key);
    expect(shuffleKey('42', 'S1', 'P1')).toBe(key);
  });

  it('depends on the seed, the site code and the pseudonym', () => {
    const key = shuffleKey(42, 'S1', 'P1');
    expect(shuffleKey(43, 'S1', 'P1')).not.toBe(key);
    expect(shuffleKey(42, 'S2', 'P1')).not.toBe(key);
    expect(shuffleKey(42, 'S1', 'P2')).not.toBe(key);
  });

  it('separates its parts, so shifting characters between them changes the key', () => {
    expect(shuffleKey(1, 'S1', 'P1')).not.toBe(shuffleKey(1, 'S', '1P1'));
    expect(shuffleKey(12, 'S', 'P')).not.toBe(shuffleKey(1, '2S', 'P'));
  });

  it('orders a cohort differently for different seeds', () => {
    const pseudonyms = Array.from({ length: 20 }, (_, i) => `P${i}`);
    const order = (seed: number) => [...pseudonyms].sort((a, b) => (shuffleKey(seed, 'S', a) < shuffleKey(seed, 'S', b) ? -1 : 1));
    expect(order(7)).toEqual(order(7));
    expect(order(7)).not.toEqual(order(8));
  });
});

describe('split versions over GraphQL', () => {
  const node = useTestNode();
  let factory: Factory;
  let statistician: string;
  let admin: string;
  let coordinator: string;
  let sites: Site[];
  const eligibleBySite = new Map<string, Patient[]>();
  const excluded: Patient[] = [];
  const ELIGIBLE = [23, 10, 7];
  const EXCLUDED = [2, 1, 3];

  const create = (input: Record<string, unknown>, token = statistician) => gql(node().url, token, CREATE, { input });
  const createOk = async (input: Record<string, unknown>) => (await gqlOk(node().url, statistician, CREATE, { input })).createSplitVersion;
  const version = async (id: string, token = statistician) => (await gqlOk(node().url, token, VERSION, { id })).splitVersion;

  /** Every assignment of a version, walked page by page with first/after. */
  async function assignments(id: string, token = admin, first = 7): Promise<Assignment[]> {
    const all: Assignment[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const data: Record<string, any> = await gqlOk(node().url, token, ASSIGNMENTS, { id, first, after });
      const page = data.splitAssignments;
      expect(page.nodes.length).toBeLessThanOrEqual(first);
      for (const a of page.nodes) {
        expect(a.splitVersionId).toBe(id);
        all.push({ patientId: a.patientId, split: a.split, pseudonym: a.patient.pseudonym, siteId: a.patient.siteId });
      }
      pages++;
      expect(pages).toBeLessThan(100);
      if (!page.pageInfo.hasNextPage) {
        expect(all).toHaveLength(page.totalCount);
        return all;
      }
      after = page.pageInfo.endCursor;
    }
  }

  const byPseudonym = (list: Assignment[]) => Object.fromEntries(list.map((a) => [a.pseudonym, a.split]));

  beforeAll(async () => {
    factory = new Factory(node().services);
    statistician = await factory.token(Role.STATISTICIAN);
    admin = await factory.token(Role.ADMIN);
    sites = [];
    for (let i = 0; i < ELIGIBLE.length; i++) {
      const site = await factory.site();
      sites.push(site);
      const eligible: Patient[] = [];
      for (let p = 0; p < ELIGIBLE[i]; p++) eligible.push(await factory.patient(site));
      eligibleBySite.set(site.id, eligible);
      for (let p = 0; p < EXCLUDED[i]; p++)
        excluded.push(await factory.patient(site, [p % 2 ? ExclusionReason.FRACTURE : ExclusionReason.PRIOR_LUMBAR_SURGERY]));
    }
    coordinator = await factory.token(Role.COORDINATOR, { site: sites[0] });
  });

  describe('a default split', () => {
    let id: string;
    let list: Assignment[];

    beforeAll(async () => {
      const created = await createOk({ name: 'default-42', seed: 42 });
      id = created.id;
      expect(created).toMatchObject({ name: 'default-42', seed: '42', frozen: false, frozenAt: null, stratification: 'SITE', ratios: DEFAULT_RATIOS });
      list = await assignments(id);
    });

    it('assigns every eligible patient exactly once and no excluded patient', () => {
      const eligibleIds = [...eligibleBySite.values()].flat().map((p) => p.id);
      const assigned = list.map((a) => a.patientId);
      expect(new Set(assigned).size).toBe(assigned.length);
      expect([...assigned].sort()).toEqual([...eligibleIds].sort());
      for (const p of excluded) expect(assigned).not.toContain(p.id);
      expect(list.every((a) => SPLITS.includes(a.split))).toBe(true);
    });

    it('stratifies by site: each split gets ratio x n of every site, within one patient', async () => {
      const v = await version(id);
      expect(v.ratios).toEqual(DEFAULT_RATIOS);
      expect(v.frozen).toBe(false);
      for (const site of sites) {
        const n = eligibleBySite.get(site.id)!.length;
        const counts: Count[] = v.counts.filter((c: Count) => c.siteId === site.id);
        expect(counts.reduce((s, c) => s + c.patients, 0)).toBe(n);
        for (const split of SPLITS) {
          const count = counts.find((c) => c.split === split)?.patients ?? 0;
          expect(Math.abs(count - n * ratioOf(DEFAULT_RATIOS, split))).toBeLessThanOrEqual(1);
          // the counts agree with the assignments themselves
          expect(list.filter((a) => a.siteId === site.id && a.split === split)).toHaveLength(count);
        }
      }
      expect(new Set(v.counts.map((c: Count) => c.siteId))).toEqual(new Set(sites.map((s) => s.id)));
    });

    it('matches the largest-remainder apportionment per site exactly', async () => {
      const v = await version(id);
      for (const site of sites) {
        const expected = apportion(eligibleBySite.get(site.id)!.length, DEFAULT_RATIOS);
        for (const split of SPLITS) {
          const count = v.counts.find((c: Count) => c.siteId === site.id && c.split === split)?.patients ?? 0;
          expect(count).toBe(expected[split]);
        }
      }
    });

    it('gives the same pages whatever the page size', async () => {
      const big = await assignments(id, admin, 500);
      expect(byPseudonym(big)).toEqual(byPseudonym(list));
    });

    it('is reproducible: the same seed gives the same split per patient, another seed a different one', async () => {
      const again = await createOk({ name: 'default-42-again', seed: 42 });
      expect(again.id).not.toBe(id);
      expect(byPseudonym(await assignments(again.id))).toEqual(byPseudonym(list));

      const other = await createOk({ name: 'default-43', seed: 43 });
      const otherList = await assignments(other.id);
      expect(Object.keys(byPseudonym(otherList)).sort()).toEqual(Object.keys(byPseudonym(list)).sort());
      expect(byPseudonym(otherList)).not.toEqual(byPseudonym(list));
      // a different shuffle, but the same per-site counts
      const countsOf = async (vid: string) => ((await version(vid)).counts as Count[]).map((c) => `${c.siteId}/${c.split}/${c.patients}`).sort();
      expect(await countsOf(other.id)).toEqual(await countsOf(id));
    });

    it('refuses a second version with the same name with CONFLICT', async () => {
      const before = await gqlOk(node().url, statistician, `{ splitVersions { totalCount } }`);
      const duplicate = await create({ name: 'default-42', seed: 7 });
      expect(codeOf(duplicate)).toBe('CONFLICT');
      const after = await gqlOk(node().url, statistician, `{ splitVersions { totalCount } }`);
      expect(after.splitVersions.totalCount).toBe(before.splitVersions.totalCount);
    });
  });

  describe('custom ratios', () => {
    it('apportions each site by the given ratios', async () => {
      const ratios = { train: 0.5, validation: 0.25, test: 0.25 };
      const created = await createOk({ name: 'half', seed: 5, ratios });
      expect(created.ratios).toEqual(ratios);
      const v = await version(created.id);
      for (const site of sites) {
        const n = eligibleBySite.get(site.id)!.length;
        for (const split of SPLITS) {
          const count = v.counts.find((c: Count) => c.siteId === site.id && c.split === split)?.patients ?? 0;
          expect(Math.abs(count - n * ratioOf(ratios, split))).toBeLessThanOrEqual(1);
        }
      }
      expect(await assignments(created.id)).toHaveLength(ELIGIBLE.reduce((a, b) => a + b, 0));
    });

    it('puts nobody in a split of ratio 0', async () => {
      const created = await createOk({ name: 'no-test', seed: 6, ratios: { train: 0.8, validation: 0.2, test: 0 } });
      const list = await assignments(created.id);
      expect(list.filter((a) => a.split === Split.TEST)).toEqual([]);
      expect(list).toHaveLength(ELIGIBLE.reduce((a, b) => a + b, 0));
    });

    it.each([
      ['summing to less than 1', { train: 0.5, validation: 0.2, test: 0.2 }],
      ['summing to more than 1', { train: 0.7, validation: 0.2, test: 0.2 }],
      ['all zero', { train: 0, validation: 0, test: 0 }],
    ])('rejects ratios %s with BAD_USER_INPUT and creates nothing', async (_label, ratios) => {
      const before = await gqlOk(node().url, statistician, `{ splitVersions { totalCount } }`);
      const result = await create({ name: `bad-${_label}`, seed: 1, ratios });
      expect(codeOf(result)).toBe('BAD_USER_INPUT');
      expect(result.data).toBeNull();
      const after = await gqlOk(node().url, statistician, `{ splitVersions { totalCount } }`);
      expect(after.splitVersions.totalCount).toBe(before.splitVersions.totalCount);
    });

    it('rejects a ratio outside 0..1 with BAD_USER_INPUT naming it, and creates nothing', async () => {
      const before = await gqlOk(node().url, statistician, `{ splitVersions { totalCount } }`);
      const result = await create({ name: 'too-big', seed: 1, ratios: { train: 1.2, validation: -0.1, test: -0.1 } });
      expect(codeOf(result)).toBe('BAD_USER_INPUT');
      const validation = result.errors?.[0]?.extensions?.validationErrors;
      expect(validation).toEqual(expect.arrayContaining([expect.objectContaining({ property: expect.stringMatching(/^ratios/) })]));
      // the failing nested property is named (the flat `ratios.train` form is checked in errors-and-limits.test.ts)
      expect(JSON.stringify(validation)).toMatch(/train/);
      const after = await gqlOk(node().url, statistician, `{ splitVersions { totalCount } }`);
      expect(after.splitVersions.totalCount).toBe(before.splitVersions.totalCount);
    });

    it('rejects an empty name with BAD_USER_INPUT', async () => {
      const result = await create({ name: '', seed: 1 });
      expect(codeOf(result)).toBe('BAD_USER_INPUT');
    });
  });

  describe('reassigning, deleting and freezing', () => {
    let id: string;
    let before: Assignment[];

    beforeAll(async () => {
      id = (await createOk({ name: 'to-freeze', seed: 2024 })).id;
      before = await assignments(id);
    });

    it('moves a patient to another split before freezing', async () => {
      const moved = before.find((a) => a.split === Split.TRAIN)!;
      const countOf = async () => ((await version(id)).counts as Count[]).filter((c) => c.siteId === moved.siteId).map((c) => [c.split, c.patients]);
      const countsBefore = Object.fromEntries(await countOf());
      const result = await gqlOk(node().url, statistician, REASSIGN, { input: { splitVersionId: id, patientId: moved.patientId, split: 'TEST' } });
      expect(result.reassignPatientSplit).toEqual({ splitVersionId: id, patientId: moved.patientId, split: 'TEST' });

      const after = await assignments(id);
      expect(after.find((a) => a.patientId === moved.patientId)!.split).toBe(Split.TEST);
      expect(after.filter((a) => a.patientId !== moved.patientId)).toEqual(expect.arrayContaining(before.filter((a) => a.patientId !== moved.patientId)));
      expect(after).toHaveLength(before.length);
      const countsAfter = Object.fromEntries(await countOf());
      expect(countsAfter.TRAIN).toBe(countsBefore.TRAIN - 1);
      expect(countsAfter.TEST).toBe((countsBefore.TEST ?? 0) + 1);
      before = after;
    });

    it('refuses to reassign a patient who is not in the split with NOT_FOUND', async () => {
      const result = await gql(node().url, statistician, REASSIGN, { input: { splitVersionId: id, patientId: excluded[0].id, split: 'TEST' } });
      expect(codeOf(result)).toBe('NOT_FOUND');
    });

    it('deletes an unfrozen version and its assignments', async () => {
      const doomed = (await createOk({ name: 'doomed', seed: 99 })).id;
      expect((await assignments(doomed)).length).toBeGreaterThan(0);
      expect((await gqlOk(node().url, statistician, DELETE, { id: doomed })).deleteSplitVersion).toBe(true);
      expect(codeOf(await gql(node().url, statistician, VERSION, { id: doomed }))).toBe('NOT_FOUND');
      const rows = await node().dataSource.query('SELECT count(*)::int AS n FROM split_assignment WHERE split_version_id = $1', [doomed]);
      expect(rows[0].n).toBe(0);
      // the name is free again
      expect((await createOk({ name: 'doomed', seed: 99 })).id).not.toBe(doomed);
    });

    it('freezes a version, after which reassigning, deleting and freezing again fail with SPLIT_FROZEN', async () => {
      const frozen = await gqlOk(node().url, statistician, FREEZE, { id });
      expect(frozen.freezeSplitVersion.frozen).toBe(true);
      expect(frozen.freezeSplitVersion.frozenAt).not.toBeNull();
      const countsBefore = (await version(id)).counts;

      const target = before.find((a) => a.split !== Split.VALIDATION)!;
      const reassign = await gql(node().url, statistician, REASSIGN, { input: { splitVersionId: id, patientId: target.patientId, split: 'VALIDATION' } });
      expect(codeOf(reassign)).toBe('SPLIT_FROZEN');
      expect(codeOf(await gql(node().url, statistician, DELETE, { id }))).toBe('SPLIT_FROZEN');
      expect(codeOf(await gql(node().url, statistician, FREEZE, { id }))).toBe('SPLIT_FROZEN');
      // an ADMIN is refused too
      expect(codeOf(await gql(node().url, admin, DELETE, { id }))).toBe('SPLIT_FROZEN');

      const v = await version(id);
      expect(v.frozen).toBe(true);
      expect(v.frozenAt).toBe(frozen.freezeSplitVersion.frozenAt);
      expect(v.counts).toEqual(countsBefore);
      expect(byPseudonym(await assignments(id))).toEqual(byPseudonym(before));
    });

    it('answers NOT_FOUND for an unknown version', async () => {
      const unknown = '00000000-0000-4000-8000-000000000000';
      expect(codeOf(await gql(node().url, statistician, FREEZE, { id: unknown }))).toBe('NOT_FOUND');
      expect(codeOf(await gql(node().url, statistician, DELETE, { id: unknown }))).toBe('NOT_FOUND');
      expect(codeOf(await gql(node().url, statistician, VERSION, { id: unknown }))).toBe('NOT_FOUND');
    });
  });

  describe('roles', () => {
    let id: string;

    beforeAll(async () => {
      id = (await createOk({ name: 'roles', seed: 3 })).id;
    });

    it('refuses split changes from a COORDINATOR with FORBIDDEN', async () => {
      expect(codeOf(await create({ name: 'by-coordinator', seed: 1 }, coordinator))).toBe('FORBIDDEN');
      expect(codeOf(await gql(node().url, coordinator, FREEZE, { id }))).toBe('FORBIDDEN');
      expect(codeOf(await gql(node().url, coordinator, DELETE, { id }))).toBe('FORBIDDEN');
      const patientId = eligibleBySite.get(sites[0].id)![0].id;
      expect(codeOf(await gql(node().url, coordinator, REASSIGN, { input: { splitVersionId: id, patientId, split: 'TEST' } }))).toBe('FORBIDDEN');
      expect((await version(id)).frozen).toBe(false);
    });

    it('shows a COORDINATOR the counts and assignments of its own site only', async () => {
      const v = await version(id, coordinator);
      expect(v.counts.length).toBeGreaterThan(0);
      expect(v.counts.every((c: Count) => c.siteId === sites[0].id)).toBe(true);
      expect(v.counts.reduce((s: number, c: Count) => s + c.patients, 0)).toBe(ELIGIBLE[0]);
      const own = await assignments(id, coordinator);
      expect(own).toHaveLength(ELIGIBLE[0]);
      expect(own.every((a) => a.siteId === sites[0].id)).toBe(true);
    });

    it('shows a STATISTICIAN the counts of every site but not patient-level assignments', async () => {
      const v = await version(id);
      expect(new Set(v.counts.map((c: Count) => c.siteId)).size).toBe(sites.length);
      expect(codeOf(await gql(node().url, statistician, ASSIGNMENTS, { id }))).toBe('FORBIDDEN');
    });

    it('refuses anonymous callers with UNAUTHENTICATED', async () => {
      expect(codeOf(await gql(node().url, null, VERSION, { id }))).toBe('UNAUTHENTICATED');
      expect(codeOf(await gql(node().url, null, CREATE, { input: { name: 'anon', seed: 1 } }))).toBe('UNAUTHENTICATED');
    });
  });
});
