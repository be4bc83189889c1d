import { federatedAnswerRows, placementSumsQueryOf, type AnswerPart, type FederatedAnswerRow } from '../../../server/federation/answer-rows';
import type { JsonValue } from '../../../server/federation/canonical-json';
import { FederationTaskKind } from '../../../server/federation/protocol';
import { systemContext } from '../../../server/services';
import { WEISHAUPT_FEATURES } from '../../../server/domain';
import { gql, gqlOk } from '../../helpers/graphql-client';
import { filePassed } from '../../helpers/lifecycle';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runCli, SITE_CODES, startFederationCluster, until, withServices, type FederationCluster } from '../../helpers/federation-cluster';

/**
 * The federated statistics end to end: a hub and three node processes, each holding one site of a study whose union
 * is also one node's database. Every number the hub pools (AUC in two rounds with DeLong, Obuchowski and the paired
 * difference; binary counts with the Poisson cluster bootstrap; agreement tables with kappa and McNemar) equals the
 * single-node answer on the union: the node's own `metrics` and `compare` where they compute the same statistic, and
 * otherwise the union node's own aggregate of the same task pooled alone. Exact at the declared grid; counts exactly,
 * the rest within 1e-9. groupBy [] and [FEATURE] at the hub give the site rows of [SITE] and [SITE, FEATURE] too.
 */
let cluster: FederationCluster;
beforeAll(async () => {
  cluster = await startFederationCluster();
  // Every node answers the statistics kinds (not in the default policy).
  for (const code of SITE_CODES) await setPolicy(code, { taskKinds: ALL_KINDS });
});
afterAll(async () => {
  await cluster?.close(filePassed());
});

const WEISHAUPT_CODES = WEISHAUPT_FEATURES.map((f) => f.code).sort();
const ALL_KINDS = ['STUDY_FLOW', 'BINARY_COUNTS', 'SCORE_HISTOGRAM', 'PLACEMENT_SUMS', 'BOOTSTRAP_SUMS', 'AGREEMENT_TABLE'];
const MIN = 5;
const SCOPE = { modalities: [], features: [], levels: [], sides: [], splits: [], confirmedOnly: true };
const EST = 'value lower upper method reason';
const ROW = 'pooled node site feature suppressed suppression patients sites withheld';
const FIELDS = `id kind status revision minGroupPatients missing { site code reason } sites { site state reason }
  rounds { id kind status sites { site state reason } }
  contributions { site kind aggregateSha256 manifest }
  answer { rowsSha256
    metrics { ${ROW} confusion { tp fp tn fn } sensitivity { ${EST} } specificity { ${EST} } accuracy { ${EST} } f1 { ${EST} } youden { ${EST} }
      bootstrap { prevalence { ${EST} } accuracy { ${EST} } sensitivity { ${EST} } specificity { ${EST} } precision { ${EST} } npv { ${EST} } f1 { ${EST} } youden { ${EST} } } }
    auc { ${ROW} exactness grids { lower upper bins } raters { modelSha256 readerSlot auc { ${EST} } clustered { ${EST} } }
      difference { delong { ${EST} p } clustered { ${EST} p } } }
    agreement { ${ROW} table kappa { unweighted { value reason } linear { value reason } quadratic { value reason } } percentAgreement { value reason }
      mcnemar { bothCorrect modelOnly readerOnly neither p } } }`;

function setPolicy(code: string, policy: Record<string, unknown>) {
  const node = cluster.nodes.get(code)!;
  return gqlOk(node.process!.url, node.tokens.admin, `mutation ($p: ReleasePolicyInput!) { setReleasePolicy(policy: $p) { sha256 } }`, { p: policy });
}
const start = async (input: Record<string, unknown>) =>
  (await gqlOk(cluster.hub.url, cluster.hub.token, `mutation ($input: FederatedQueryInput!) { startFederatedQuery(input: $input) { id } }`, { input }))
    .startFederatedQuery.id as string;
const read = async (id: string) =>
  (await gqlOk(cluster.hub.url, cluster.hub.token, `query ($id: ID!) { federatedQuery(id: $id) { ${FIELDS} } }`, { id })).federatedQuery;
async function answered(id: string): Promise<Record<string, any>> {
  let last: Record<string, any> = {};
  await until(`query ${id} settled`, async () => (last = await read(id)).status !== 'RUNNING', 180_000);
  return last;
}

const close = (what: string, a: number | null | undefined, b: number | null | undefined) => {
  if (a === null || a === undefined || b === null || b === undefined) expect([what, a ?? null]).toEqual([what, b ?? null]);
  else expect([what, Math.abs(a - b) < 1e-9]).toEqual([what, true]);
};
const closeEstimate = (what: string, a: Record<string, any>, b: Record<string, any>) => {
  for (const f of ['value', 'lower', 'upper'] as const) close(`${what}.${f}`, a[f], b[f]);
};

/** The task queries of the hub's answers as the union node computes them: its own aggregate, pooled alone. */
async function unionRows(
  kind: string,
  parts: Array<{ kind: FederationTaskKind; hubKind: string; query: Record<string, JsonValue> }>,
): Promise<FederatedAnswerRow[]> {
  return withServices(cluster.unionDatabase.url, async (services) => {
    const ctx = systemContext('union reference');
    const done: AnswerPart[] = [];
    for (const part of parts) {
      // Round 2's tables come from the union's round 1, as the hub's come from the pooled round 1.
      const query = part.kind === FederationTaskKind.PLACEMENT_SUMS ? placementSumsQueryOf(done[0], MIN) : part.query;
      const computed = await services.federationCompute.computeAggregate(ctx, part.kind, query);
      done.push({
        kind: part.hubKind,
        query,
        sites: ['UNION'],
        results: [{ site: 'UNION', state: 'SUCCEEDED', payload: { aggregate: computed.aggregate as never } }],
      });
    }
    const rows = federatedAnswerRows(kind, done, { minGroupPatients: MIN });
    if (!rows.ok) throw new Error(rows.problem);
    return rows.rows;
  });
}

/** The node's own statistics on the union (its GraphQL services, as a STATISTICIAN-free system context). */
function unionStatistics<T>(fn: (services: Parameters<Parameters<typeof withServices>[1]>[0], ctx: ReturnType<typeof systemContext>) => Promise<T>) {
  return withServices(cluster.unionDatabase.url, (services) => fn(services, systemContext('union statistics')));
}

/**
 * The node's row for a hub row: a site row from the node's answer grouped with SITE, a pooled row from the one grouped
 * without it (a node's pooled row is one row over everything; the hub's pooled rows are per key without SITE).
 */
function nodeRowOf<G extends { pooled: boolean; key: { site?: string | null; feature?: string | null } }>(
  bySite: readonly G[],
  pooled: readonly G[],
  row: Record<string, any>,
): G | undefined {
  if (!row.pooled) return bySite.find((g) => g.key.site === row.site && (g.key.feature ?? null) === row.feature);
  return pooled.find((g) => (g.key.feature ?? null) === row.feature && (row.feature !== null || g.pooled));
}

const NODE_SCOPE = { splitVersionId: null, splits: null, modalities: null, features: null, levels: null, sides: null };

const keyOf = (row: Record<string, any>) => `${row.pooled ? 'pooled' : row.site} ${row.feature ?? '-'}`;
const unionKeyOf = (row: Record<string, any>) => `${row.pooled ? 'pooled' : row.key.SITE} ${row.key.FEATURE ?? '-'}`;

describe('federated statistics equal the single-node answer on the union', () => {
  it('AUC in two chained rounds: model and reader, DeLong, Obuchowski and the paired difference, at the declared grids', async () => {
    const raters = [{ modelSha256: cluster.modelSha256 }, { readerSlot: 'FIRST' }];
    const grids = [
      { lower: 0, upper: 1, bins: 50 },
      { lower: -0.5, upper: 3.5, bins: 4 },
    ];
    const ids = await Promise.all([[], ['FEATURE']].map((groupBy) => start({ kind: 'AUC', raters, grids, groupBy, threshold: 1, deadlineSeconds: 300 })));
    for (const [i, groupBy] of [[], ['FEATURE']].entries()) {
      const answer = await answered(ids[i]);
      expect(answer.status).toBe('COMPLETE');
      expect(answer.rounds).toEqual([expect.objectContaining({ kind: 'PLACEMENT_SUMS', status: 'COMPLETE' })]);
      expect(answer.rounds[0].sites.map((s: { site: string }) => s.site)).toEqual([...SITE_CODES].sort());
      expect(new Set(answer.contributions.map((c: { kind: string }) => c.kind))).toEqual(new Set(['AUC', 'PLACEMENT_SUMS']));
      const rows = answer.answer.auc as Array<Record<string, any>>;
      const features = groupBy.length ? 5 : 1;
      expect(rows.length).toBe(3 * features + features);
      const query = { raters, scope: SCOPE, groupBy: ['SITE', ...groupBy], threshold: 1, grids } as unknown as Record<string, JsonValue>;
      const union = await unionRows('AUC', [
        { kind: FederationTaskKind.SCORE_HISTOGRAM, hubKind: 'AUC', query },
        { kind: FederationTaskKind.PLACEMENT_SUMS, hubKind: 'PLACEMENT_SUMS', query },
      ]);
      const byKey = new Map(union.map((r) => [unionKeyOf(r), r as unknown as Record<string, any>]));
      // The reader's AUC on a whole-grade grid loses nothing: it is the node's own metrics AUC (Obuchowski by default).
      const readerMetrics = (by: string[]) =>
        unionStatistics(async (services, ctx) =>
          services.metrics.metrics(ctx, {
            rater: { readerSlot: 'FIRST' as never },
            scope: NODE_SCOPE,
            groupBy: by as never,
            threshold: 1,
            clustered: true,
            confirmedOnly: true,
            bootstrapReplicates: 200,
          }),
        );
      const [readerBySite, readerPooled] = [(await readerMetrics(['SITE', ...groupBy])).groups, (await readerMetrics(groupBy)).groups];
      for (const row of rows) {
        expect(row.exactness).toBe('exact at the declared score resolution');
        expect(row.grids).toEqual(grids);
        expect([keyOf(row), row.suppressed]).toEqual([keyOf(row), false]);
        const u = byKey.get(keyOf(row))!;
        expect(u).toBeDefined();
        expect(row.patients).toBe(u.patients);
        for (const [r, rater] of row.raters.entries()) {
          closeEstimate(`${keyOf(row)} rater ${r} delong`, rater.auc, u.aucs[r].delong);
          closeEstimate(`${keyOf(row)} rater ${r} clustered`, rater.clustered, u.aucs[r].clustered);
          expect([rater.auc.method, rater.clustered.method]).toEqual([u.aucs[r].delong.method, u.aucs[r].clustered.method]);
        }
        for (const test of ['delong', 'clustered'] as const) {
          closeEstimate(`${keyOf(row)} difference ${test}`, row.difference[test], u.difference[test]);
          close(`${keyOf(row)} difference ${test} p`, row.difference[test].p, u.difference[test].p);
        }
        const node = nodeRowOf(readerBySite, readerPooled, row);
        expect(node).toBeDefined();
        closeEstimate(`${keyOf(row)} reader vs node metrics`, row.raters[1].clustered, node!.auc!);
      }
    }
  });

  it('BINARY_COUNTS with a Poisson cluster bootstrap: counts, clustered Wilson and bootstrap replicates identical to the union', async () => {
    const bootstrap = { seed: 'federated-stats-1', replicates: 200 };
    for (const groupBy of [[], ['FEATURE']]) {
      const id = await start({ kind: 'BINARY_COUNTS', rater: { modelSha256: cluster.modelSha256 }, groupBy, threshold: 1, bootstrap, deadlineSeconds: 300 });
      const answer = await answered(id);
      expect(answer.status).toBe('COMPLETE');
      expect(answer.rounds).toEqual([expect.objectContaining({ kind: 'BOOTSTRAP_SUMS', status: 'COMPLETE' })]);
      const query = { rater: { modelSha256: cluster.modelSha256 }, scope: SCOPE, groupBy: ['SITE', ...groupBy], threshold: 1 } as Record<string, JsonValue>;
      const union = await unionRows('BINARY_COUNTS', [
        { kind: FederationTaskKind.BINARY_COUNTS, hubKind: 'BINARY_COUNTS', query },
        { kind: FederationTaskKind.BOOTSTRAP_SUMS, hubKind: 'BOOTSTRAP_SUMS', query: { ...query, ...bootstrap } },
      ]);
      const byKey = new Map(union.map((r) => [unionKeyOf(r), r as unknown as Record<string, any>]));
      // The node's own metrics on the union: the same counts and design-effect Wilson intervals.
      const nodeMetrics = (by: string[]) =>
        unionStatistics(async (services, ctx) => {
          const [{ id: modelVersionId }] = await services.db.query(ctx, `SELECT id FROM model_version WHERE sha256 = $1`, [cluster.modelSha256]);
          return services.metrics.metrics(ctx, {
            rater: { modelVersionId },
            scope: NODE_SCOPE,
            groupBy: by as never,
            threshold: 1,
            clustered: true,
            confirmedOnly: true,
            bootstrapReplicates: 200,
          });
        });
      const [metricsBySite, metricsPooled] = [(await nodeMetrics(['SITE', ...groupBy])).groups, (await nodeMetrics(groupBy)).groups];
      for (const row of answer.answer.metrics as Array<Record<string, any>>) {
        const u = byKey.get(keyOf(row))!;
        expect(row.confusion).toEqual({ tp: u.values.tp, fp: u.values.fp, tn: u.values.tn, fn: u.values.fn });
        for (const name of ['sensitivity', 'specificity', 'accuracy'] as const) closeEstimate(`${keyOf(row)} ${name}`, row[name], u.metrics[name].clustered);
        const node = nodeRowOf(metricsBySite, metricsPooled, row)!;
        expect(row.confusion).toEqual(node.confusion);
        for (const name of ['sensitivity', 'specificity', 'accuracy'] as const) closeEstimate(`${keyOf(row)} ${name} vs node`, row[name], node[name]!);
        // Identical replicates give identical percentile intervals, to the last bit.
        expect([keyOf(row), row.bootstrap]).toEqual([keyOf(row), expect.objectContaining(u.bootstrap)]);
        expect(row.f1).toEqual(u.bootstrap.f1);
        expect(row.f1.method).toBe('poisson-cluster-bootstrap-percentile(B=200)');
      }
      // The replicate sums themselves: the three sites' add up to the union's, replicate by replicate.
      const bootstrapTask = answer.rounds[0].id;
      const results = await withServices(cluster.hub.database.url, (services) =>
        services.db.query(systemContext('hub'), `SELECT envelope FROM federation_result WHERE task_id = $1`, [bootstrapTask]),
      );
      const summed = new Map<string, number[]>();
      for (const { envelope } of results as Array<{ envelope: { payload: { aggregate: { groups: Array<Record<string, any>> } } } }>) {
        for (const g of envelope.payload.aggregate.groups) {
          const key = `${g.key.FEATURE ?? '-'}`;
          summed.set(
            key,
            (summed.get(key) ?? new Array(200).fill(0)).map((v, r) => v + g.values.tp[r]),
          );
        }
      }
      const unionSums = await withServices(cluster.unionDatabase.url, (services) =>
        services.federationCompute.computeAggregate(systemContext('union'), FederationTaskKind.BOOTSTRAP_SUMS, {
          ...query,
          groupBy: groupBy as never,
          ...bootstrap,
        }),
      );
      for (const g of unionSums.aggregate.groups) expect([g.key, summed.get(`${g.key.FEATURE ?? '-'}`)]).toEqual([g.key, g.values.tp]);
    }
  });

  it('AGREEMENT: k x k tables, kappa and exact McNemar equal the union; McNemar equal to the node’s own compare', async () => {
    const raters = [{ modelSha256: cluster.modelSha256 }, { readerSlot: 'FIRST' }];
    const id = await start({ kind: 'AGREEMENT', raters, groupBy: ['FEATURE'], threshold: 1, deadlineSeconds: 300 });
    const answer = await answered(id);
    expect(answer.status).toBe('COMPLETE');
    const query = { raters, scope: SCOPE, groupBy: ['FEATURE', 'SITE'], threshold: 1 } as unknown as Record<string, JsonValue>;
    const union = await unionRows('AGREEMENT', [{ kind: FederationTaskKind.AGREEMENT_TABLE, hubKind: 'AGREEMENT', query }]);
    const byKey = new Map(union.map((r) => [unionKeyOf(r), r as unknown as Record<string, any>]));
    const rows = answer.answer.agreement as Array<Record<string, any>>;
    expect(rows.length).toBe(3 * 5 + 5);
    // The node's own compare of the model with the FIRST slot on the union: its paired table of correct calls and exact McNemar p.
    const compare = (by: string[]) =>
      unionStatistics(async (services, ctx) => {
        const [{ id: modelVersionId }] = await services.db.query(ctx, `SELECT id FROM model_version WHERE sha256 = $1`, [cluster.modelSha256]);
        return services.metrics.compare(ctx, {
          modelVersionId,
          readerSlot: 'FIRST' as never,
          scope: NODE_SCOPE,
          groupBy: by as never,
          threshold: 1,
          clustered: true,
          confirmedOnly: true,
          bootstrapReplicates: 200,
        });
      });
    const [compareBySite, comparePooled] = [(await compare(['SITE', 'FEATURE'])).comparisons, (await compare(['FEATURE'])).comparisons];
    for (const row of rows) {
      const u = byKey.get(keyOf(row))!;
      expect(row.table.flat()).toEqual(u.values.table);
      for (const w of ['unweighted', 'linear', 'quadratic'] as const) close(`${keyOf(row)} kappa ${w}`, row.kappa[w].value, u.agreement.kappa[w].value);
      close(`${keyOf(row)} agreement`, row.percentAgreement.value, u.agreement.percentAgreement.value);
      expect(row.mcnemar).toEqual({ ...u.agreement.paired, p: u.agreement.mcnemarP });
      const node = nodeRowOf(compareBySite, comparePooled, row);
      expect([keyOf(row), node?.mcnemar]).toEqual([keyOf(row), expect.objectContaining(row.mcnemar)]);
    }
  });

  it('metrics and studyFlow asked at the hub answer in the node’s shape, equal to the union’s own, reused, and verifiable', async () => {
    const GROUP = `pooled site feature suppressed suppression cases patients confusion { tp fp tn fn }
      prevalence { ${EST} } accuracy { ${EST} } sensitivity { ${EST} } specificity { ${EST} } precision { ${EST} } npv { ${EST} }
      f1 { ${EST} } youden { ${EST} } auc { ${EST} } roc { fpr } multiclass { macroF1 { value } }`;
    const METRICS = `query ($input: MetricsInput!, $f: HubRunInput) { metrics(input: $input, federation: $f) {
      threshold level clustered disclosure { applied minGroupPatients }
      federation { status queryIds sites { site status reason } grids { lower upper bins } exactness minGroupPatients }
      groups { ${GROUP} } } }`;
    for (const groupBy of [['SITE', 'FEATURE'], ['FEATURE'], ['SITE'], []]) {
      const input = { rater: { readerSlot: 'FIRST' }, groupBy, threshold: 1, bootstrapReplicates: 200 };
      const answer = (await gqlOk(cluster.hub.url, cluster.hub.token, METRICS, { input, f: { waitSeconds: 240 } })).metrics;
      expect(answer.federation).toMatchObject({ status: 'COMPLETE', exactness: 'exact at the declared score resolution', minGroupPatients: MIN });
      expect(answer.federation.sites).toEqual([...SITE_CODES].sort().map((site) => ({ site, status: 'ANSWERED', reason: null })));
      expect(answer.federation.grids).toEqual([{ lower: -0.5, upper: 3.5, bins: 4 }]);
      const node = await unionStatistics((services, ctx) =>
        services.metrics.metrics(ctx, {
          rater: { readerSlot: 'FIRST' as never },
          scope: NODE_SCOPE,
          groupBy: groupBy as never,
          threshold: 1,
          clustered: true,
          confirmedOnly: true,
          bootstrapReplicates: 200,
        }),
      );
      const groups = answer.groups as Array<Record<string, any>>;
      // The same groups as the node's, with the same counts and intervals.
      const id = (pooled: boolean, site: string | null | undefined, feature: string | null | undefined) => `${pooled} ${site ?? '-'} ${feature ?? '-'}`;
      expect(groups.map((g) => id(g.pooled, g.site, g.feature)).sort()).toEqual(node.groups.map((g) => id(g.pooled, g.key.site, g.key.feature)).sort());
      expect(groups.at(-1)!.pooled).toBe(true);
      for (const g of groups) {
        const n = node.groups.find((x) => id(x.pooled, x.key.site, x.key.feature) === id(g.pooled, g.site, g.feature))!;
        const what = `${JSON.stringify(groupBy)} ${g.site} ${g.feature}`;
        expect([what, g.confusion, g.patients, g.cases]).toEqual([what, n.confusion, n.clusters, n.cases]);
        for (const name of ['prevalence', 'accuracy', 'sensitivity', 'specificity', 'precision', 'npv', 'auc'] as const) {
          closeEstimate(`${what} ${name}`, g[name], n[name]!);
          expect(g[name].method).toBe(n[name]!.method);
        }
        close(`${what} f1`, g.f1.value, n.f1!.value);
        expect(g.f1.method).toBe('poisson-cluster-bootstrap-percentile(B=200)');
        expect([g.roc, g.multiclass]).toEqual([null, null]);
      }
      // Asked again, the same federated queries answer (the sites see one question).
      const again = (await gqlOk(cluster.hub.url, cluster.hub.token, METRICS, { input, f: { waitSeconds: 5 } })).metrics;
      expect(again.federation.queryIds).toEqual(answer.federation.queryIds);
    }

    // The AUC query behind the last answer, exported with both rounds, verifies; a changed round-2 number does not.
    const ids = (
      await gqlOk(cluster.hub.url, cluster.hub.token, METRICS, {
        input: { rater: { readerSlot: 'FIRST' }, groupBy: [], threshold: 1, bootstrapReplicates: 200 },
        f: { waitSeconds: 5 },
      })
    ).metrics.federation.queryIds as string[];
    const work = await mkdtemp(path.join(os.tmpdir(), 'facet-verify-'));
    try {
      for (const id of ids) {
        const exported = (await gqlOk(cluster.hub.url, cluster.hub.token, `query ($id: ID!) { federatedAnswer(id: $id) { export } }`, { id })).federatedAnswer
          .export;
        const file = path.join(work, `${id}.json`);
        await writeFile(file, JSON.stringify(exported));
        const verified = await runCli(['verify', file, '--sites', cluster.hub.sitesDir, '--hub-key', cluster.hub.signingKey], {});
        expect([id, verified.code, verified.out]).toEqual([id, 0, expect.stringContaining('verified')]);
        if (exported.payload.kind !== 'AUC') continue;
        expect(exported.payload.rounds).toEqual([expect.objectContaining({ kind: 'PLACEMENT_SUMS' })]);
        const tampered = structuredClone(exported);
        tampered.payload.rounds[0].results[0].payload.aggregate.groups[0].values.sums[0] += 1;
        await writeFile(file, JSON.stringify(tampered));
        const refused = await runCli(['verify', file, '--sites', cluster.hub.sitesDir, '--hub-key', cluster.hub.signingKey], {});
        expect(refused.code).toBe(1);
        expect(refused.out).toMatch(/MISMATCH RESULT \w+ \(round 2, PLACEMENT_SUMS\): BAD_SIGNATURE/);
      }
    } finally {
      await rm(work, { recursive: true, force: true });
    }

    // `facet report metrics` against the hub: the same groups, with the sites' status.
    const reported = await runCli(
      ['report', 'metrics', '--url', cluster.hub.url, '--token', cluster.hub.token, '--reader-slot', 'FIRST', '--group-by', 'FEATURE', '--format', 'json'],
      {},
    );
    expect([reported.code, reported.err]).toEqual([0, '']);
    const report = JSON.parse(reported.out);
    expect(report.metrics.federation.sites.map((s: { status: string }) => s.status)).toEqual(['ANSWERED', 'ANSWERED', 'ANSWERED']);
    expect(report.metrics.groups.map((g: { feature: string | null }) => g.feature)).toEqual([...WEISHAUPT_CODES, null]);
    expect(report.studyFlow.at(-1).site).toBeNull();

    // Asked anew with no time to wait, the answer says RUNNING with its queries and has no groups yet.
    const fresh = (
      await gqlOk(cluster.hub.url, cluster.hub.token, METRICS, {
        input: { rater: { readerSlot: 'SECOND' }, groupBy: [], threshold: 2, bootstrapReplicates: 200 },
        f: { waitSeconds: 0, maxAgeSeconds: 0 },
      })
    ).metrics;
    expect(fresh.federation.status).toBe('RUNNING');
    expect(fresh.federation.queryIds).toHaveLength(2);
    expect(fresh.groups).toEqual([]);

    // What a hub cannot answer is refused with its code, never answered from the hub's empty database.
    const refusal = async (url: string, token: string, query: string, variables: Record<string, unknown>) =>
      (await gql(url, token, query, variables)).errors?.[0]?.extensions?.code;
    const hubInput = (rater: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
      input: { rater, groupBy: [], ...extra },
      f: { waitSeconds: 0 },
    });
    expect(await refusal(cluster.hub.url, cluster.hub.token, METRICS, hubInput({ modelVersionId: '00000000-0000-4000-8000-000000000000' }))).toBe(
      'BAD_USER_INPUT',
    );
    expect(await refusal(cluster.hub.url, cluster.hub.token, METRICS, hubInput({ readerRole: 'READER' }))).toBe('BAD_USER_INPUT');
    expect(await refusal(cluster.hub.url, cluster.hub.token, METRICS, hubInput({ readerSlot: 'FIRST' }, { level: 0.9 }))).toBe('BAD_USER_INPUT');
    expect(
      await refusal(
        cluster.hub.url,
        cluster.hub.token,
        METRICS,
        hubInput({ readerSlot: 'FIRST' }, { scope: { siteIds: ['00000000-0000-4000-8000-000000000000'] } }),
      ),
    ).toBe('BAD_USER_INPUT');
    const COMPARE = `query ($input: CompareInput!) { compare(input: $input) { comparisons { pooled } } }`;
    expect(await refusal(cluster.hub.url, cluster.hub.token, COMPARE, { input: { modelVersionId: '00000000-0000-4000-8000-000000000000' } })).toBe(
      'HUB_HOLDS_NO_PATIENT_DATA',
    );
    expect(await refusal(cluster.hub.url, cluster.hub.token, `{ agreement { feature } }`, {})).toBe('HUB_HOLDS_NO_PATIENT_DATA');
    // And at a node, a model by sha256 is the hub's way of naming it.
    const north = cluster.nodes.get('NORTH')!;
    expect(await refusal(north.process!.url, north.tokens.statistician, METRICS, { input: { rater: { modelSha256: cluster.modelSha256 } }, f: null })).toBe(
      'BAD_USER_INPUT',
    );

    const FLOW = `query ($f: HubRunInput) { studyFlow(federation: $f) { site enrolled excluded eligible joints assessable notAssessable analysed suppressed
      federation { status sites { site status } } } }`;
    const flow = (await gqlOk(cluster.hub.url, cluster.hub.token, FLOW, { f: { waitSeconds: 120 } })).studyFlow as Array<Record<string, any>>;
    expect(flow.map((r) => r.site ?? '-').sort()).toEqual(cluster.union.studyFlow.map((r) => r.site ?? '-').sort());
    for (const row of flow) {
      const u = cluster.union.studyFlow.find((x) => x.site === row.site)!;
      for (const field of ['enrolled', 'excluded', 'eligible', 'joints', 'assessable', 'notAssessable', 'analysed'])
        expect([row.site, field, row[field]]).toEqual([u.site, field, u[field]]);
      expect(row.federation.status).toBe('COMPLETE');
    }
  });

  it('the nodes’ disclosure fires through the hub: small groups suppressed, a differencing query refused', async () => {
    // Each site's patients per split in the union (the node's own frozen split version).
    const perSplit = await unionStatistics(async (services, ctx) => {
      const [version] = await services.db.query(ctx, `SELECT id FROM split_version WHERE frozen_at IS NOT NULL ORDER BY frozen_at DESC LIMIT 1`);
      const result = await services.metrics.metrics(ctx, {
        rater: { readerSlot: 'FIRST' as never },
        scope: { ...NODE_SCOPE, splitVersionId: version.id, splits: ['TRAIN', 'VALIDATION', 'TEST'] as never },
        groupBy: ['SITE', 'SPLIT'] as never,
        threshold: 1,
        clustered: true,
        confirmedOnly: true,
        bootstrapReplicates: 200,
      });
      return result.groups.filter((g) => !g.pooled).map((g) => ({ site: g.key.site as string, split: g.key.split as string, patients: g.clusters as number }));
    });
    const patients = (site: string, splits: string[]) =>
      perSplit.filter((g) => g.site === site && splits.includes(g.split)).reduce((s, g) => s + g.patients, 0);
    const everything = (site: string) => patients(site, ['TRAIN', 'VALIDATION', 'TEST']);
    const threshold = 3;
    for (const code of SITE_CODES) await setPolicy(code, { taskKinds: ALL_KINDS, minGroupPatients: threshold });
    const ask = async (splits: string[], groupBy: string[]) =>
      answered(await start({ kind: 'BINARY_COUNTS', rater: { readerSlot: 'FIRST' }, scope: { splits }, groupBy, threshold: 1, deadlineSeconds: 120 }));

    // Grouped by split, the small splits' groups are withheld by each site and flagged, never numbered.
    const small = ['VALIDATION', 'TEST'];
    // The study has such groups: the check below is not vacuous.
    expect(perSplit.some((g) => small.includes(g.split) && g.patients > 0 && g.patients < threshold)).toBe(true);
    const bySplit = await ask(small, ['SPLIT']);
    for (const code of SITE_CODES) {
      const groups = perSplit.filter((g) => g.site === code && small.includes(g.split));
      const site = bySplit.sites.find((s: { site: string }) => s.site === code);
      if (groups.every((g) => g.patients < threshold)) {
        expect([code, site.state, site.reason]).toEqual([code, 'REFUSED', 'ALL_GROUPS_SUPPRESSED']);
        continue;
      }
      for (const g of groups) {
        const row = bySplit.answer.metrics.find((r: Record<string, any>) => !r.pooled && r.site === code && r.split === g.split);
        if (g.patients < threshold)
          expect([code, g.split, row]).toEqual([code, g.split, expect.objectContaining({ suppressed: true, suppression: 'SMALL_GROUP', confusion: null })]);
      }
    }

    // A population that differs from one already released by fewer than the minimum is refused as a whole.
    const fewer = ['TRAIN', 'VALIDATION'];
    const differencing = await ask(fewer, []);
    for (const code of SITE_CODES) {
      const size = patients(code, fewer);
      const site = differencing.sites.find((s: { site: string }) => s.site === code);
      const difference = everything(code) - size;
      if (size >= threshold && difference > 0 && difference < threshold) {
        expect([code, site.state, site.reason]).toEqual([code, 'REFUSED', 'DIFFERENCING']);
        expect(differencing.missing).toContainEqual({ site: code, code: 'SITE_REFUSED', reason: 'DIFFERENCING' });
      } else expect(site.state).toMatch(/^(SUCCEEDED|REFUSED)$/);
    }
    expect(differencing.sites.some((s: { reason: string }) => s.reason === 'DIFFERENCING')).toBe(true);
  });
});
