import { Role } from '../../../server/domain';
import { canonicalSha256 } from '../../../server/federation/canonical-json';
import { FederationTaskKind } from '../../../server/federation/protocol';
import { DEFAULT_RELEASE_POLICY } from '../../../server/federation/release-policy';
import { systemContext } from '../../../server/services';
import { seededRandom } from '../../../server/stats/bootstrap';
import { Factory } from '../../helpers/factories';
import { codeOf, gql, gqlOk } from '../../helpers/graphql-client';
import { useTestNode } from '../../helpers/lifecycle';

const POLICY_FIELDS = `taskKinds minGroupPatients maxScoreBins manualApproval budget { releases periodDays } sha256`;
const SET = `mutation ($p: ReleasePolicyInput!) { setReleasePolicy(policy: $p) { ${POLICY_FIELDS} } }`;
const GET = `{ releasePolicy { ${POLICY_FIELDS} } }`;

describe('the node’s release policy and federation inbox over GraphQL', () => {
  const node = useTestNode();
  let admin: string;
  let coordinator: string;
  let statistician: string;

  beforeAll(async () => {
    const factory = new Factory(node().services);
    const site = await factory.site('NORTH');
    admin = await factory.token(Role.ADMIN);
    coordinator = await factory.token(Role.COORDINATOR, { site });
    statistician = await factory.token(Role.STATISTICIAN);
  });

  it('answers the default policy with its sha256 until an ADMIN sets one', async () => {
    const { releasePolicy } = await gqlOk(node().url, admin, GET);
    expect(releasePolicy).toEqual({ ...DEFAULT_RELEASE_POLICY, sha256: canonicalSha256(DEFAULT_RELEASE_POLICY as never) });
  });

  it('lets only an ADMIN read or set it', async () => {
    for (const token of [coordinator, statistician]) {
      expect(codeOf(await gql(node().url, token, GET))).toBe('FORBIDDEN');
      expect(codeOf(await gql(node().url, token, SET, { p: { manualApproval: true } }))).toBe('FORBIDDEN');
    }
    expect(codeOf(await gql(node().url, null, GET))).toBe('UNAUTHENTICATED');
  });

  it('sets generated policies, each audited with its sha256, and reads back exactly what it set (left-out fields: defaults)', async () => {
    const random = seededRandom(5);
    const kinds = [FederationTaskKind.STUDY_FLOW, FederationTaskKind.BINARY_COUNTS, FederationTaskKind.CONFUSION_MATRIX];
    for (let i = 0; i < 12; i++) {
      const input: Record<string, unknown> = {};
      if (random() < 0.7) input.taskKinds = kinds.filter(() => random() < 0.6);
      if (random() < 0.7) input.minGroupPatients = 3 + Math.floor(random() * 20);
      if (random() < 0.5) input.maxScoreBins = 2 + Math.floor(random() * 500);
      if (random() < 0.5) input.manualApproval = random() < 0.5;
      if (random() < 0.6) input.budget = random() < 0.3 ? null : { releases: 1 + Math.floor(random() * 100), periodDays: 1 + Math.floor(random() * 60) };
      const expected = { ...DEFAULT_RELEASE_POLICY, ...input };
      const { setReleasePolicy } = await gqlOk(node().url, admin, SET, { p: input });
      expect(setReleasePolicy).toEqual({ ...expected, sha256: canonicalSha256(expected as never) });
      expect((await gqlOk(node().url, admin, GET)).releasePolicy).toEqual(setReleasePolicy);
      const [audit] = await node().dataSource.query(`SELECT details FROM audit_event WHERE action = 'federation.policy.set' ORDER BY seq DESC LIMIT 1`);
      expect(audit.details).toEqual({ policySha256: setReleasePolicy.sha256 });
    }
  });

  it.each([
    [{ minGroupPatients: 2 }, 'minGroupPatients'],
    [{ taskKinds: ['RUN_SQL'] }, 'taskKinds'],
    [{ maxScoreBins: 1 }, 'maxScoreBins'],
    [{ budget: { releases: 0, periodDays: 30 } }, null],
    [{ minGroupPatients: null }, 'minGroupPatients'],
  ])('refuses %p with BAD_USER_INPUT and keeps the policy it had', async (input, field) => {
    const before = (await gqlOk(node().url, admin, GET)).releasePolicy;
    const refused = await gql(node().url, admin, SET, { p: input });
    expect(codeOf(refused)).toBe('BAD_USER_INPUT');
    if (field) expect(refused.errors?.[0]?.extensions?.field).toBe(field);
    expect((await gqlOk(node().url, admin, GET)).releasePolicy).toEqual(before);
  });

  it('fails a task that names splits on a node without a frozen split version (NO_FROZEN_SPLIT)', async () => {
    const scope = { modalities: [], features: [], levels: [], sides: [], splits: ['TEST'], confirmedOnly: true };
    await expect(node().services.federationCompute.computeAggregate(systemContext('test'), FederationTaskKind.STUDY_FLOW, { scope })).rejects.toMatchObject({
      code: 'NO_FROZEN_SPLIT',
    });
  });

  it('shows coordinators and admins the inbox, and no one else', async () => {
    expect((await gqlOk(node().url, coordinator, `{ federationInbox { taskId } }`)).federationInbox).toEqual([]);
    expect((await gqlOk(node().url, admin, `{ federationInbox(state: HELD) { taskId } }`)).federationInbox).toEqual([]);
    expect(codeOf(await gql(node().url, statistician, `{ federationInbox { taskId } }`))).toBe('FORBIDDEN');
    const missing = await gql(node().url, coordinator, `mutation { approveFederationRelease(taskId: "task-that-never-came") { state } }`);
    expect(codeOf(missing)).toBe('NOT_FOUND');
    const tooLong = await gql(node().url, admin, `mutation ($r: String!) { refuseFederationRelease(taskId: "t", reason: $r) { state } }`, {
      r: 'x'.repeat(2001),
    });
    expect(codeOf(tooLong)).toBe('BAD_USER_INPUT');
  });
});
