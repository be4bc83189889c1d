import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { addPlacementSums, placementTable, pooledAuc, type PlacementSums, type ScoreHistograms } from '../../server/federation/auc-rounds';
import { parseAucQuery, placementSumsGroups, scoreHistogramGroups, type AucCase } from '../../server/federation/compute-auc';
import { FederationTaskKind } from '../../server/federation/protocol';
import { maskContribution, vectorSha256 } from '../../server/federation/secure-sum';
import { SecureSumLedger, SecureSumRound } from '../../server/federation/secure-sum-round';
import { decodeRow, encodeRow, rowLayout, RowLayoutError, type RowLayout } from '../../server/federation/secure-rows';
import type { AggregateGroup } from '../../server/federation/release-policy';
import { Gen } from './generators';

const SITES = ['NORTH', 'SOUTH', 'WEST'];
const BINS = 10;
const QUERY = parseAucQuery({
  raters: [{ readerSlot: 'FIRST' }],
  scope: { modalities: [], features: [], levels: [], sides: [], splits: [], confirmedOnly: true },
  groupBy: [],
  threshold: 1,
  grids: [{ lower: 0, upper: 1, bins: BINS }],
});

interface Site {
  code: string;
  privateKey: KeyObject;
  agreementKey: KeyObject;
  ledger: SecureSumLedger;
}

function sites(): Site[] {
  return SITES.map((code) => {
    const { privateKey, publicKey } = generateKeyPairSync('x25519');
    return { code, privateKey, agreementKey: publicKey, ledger: new SecureSumLedger(code) };
  });
}

function casesOf(gen: Gen, site: string): AucCase[] {
  const out: AucCase[] = [];
  for (let p = gen.int(8, 25); p > 0; p--) {
    for (let j = gen.int(1, 3); j > 0; j--) {
      const positive = gen.bool(0.4);
      out.push({ key: {}, patient: `${site}-${p}`, positive, scores: [Math.min(1, Math.max(0, (positive ? 0.6 : 0.4) + (gen.random() - 0.5) * 0.8))] });
    }
  }
  return out;
}

/**
 * One attempt of a secure row: each participant that is `sending` begins it in its ledger, masks its vector and sends
 * it; returns what the hub received. Then, if every vector came, the unmask request and the seeds.
 */
function attempt(round: SecureSumRound, everyone: Site[], plain: Map<string, BigUint64Array>, sending: readonly string[], fingerprint: string) {
  const plan = round.plan;
  const participants = everyone.filter((s) => plan.participants.includes(s.code));
  const received = new Map<string, BigUint64Array>();
  for (const s of participants.filter((p) => sending.includes(p.code))) {
    const begun = s.ledger.begin({ roundId: plan.roundId, fingerprint, participants: plan.participants, minSites: 2 });
    if (!begun.ok) throw new Error(begun.code);
    const masked = maskContribution({
      own: s.code,
      ownAgreementKey: s.privateKey,
      roundId: plan.roundId,
      participants: participants.map((p) => ({ code: p.code, agreementKey: p.agreementKey })),
      values: plain.get(s.code) as BigUint64Array,
      selfMaskSeed: begun.seed,
    });
    s.ledger.recordMasked(plan.roundId, vectorSha256(masked));
    expect(round.receiveMasked(s.code, plan.roundId, masked)).toBe('ACCEPTED');
    received.set(s.code, masked);
  }
  const request = round.unmaskRequest();
  if (request) {
    for (const s of participants) {
      const revealed = s.ledger.reveal(request);
      if (!revealed.ok) throw new Error(revealed.code);
      expect(round.receiveSeed(s.code, request.roundId, revealed.seed)).toBe('ACCEPTED');
    }
  }
  return received;
}

const onlyGroup = (groups: AggregateGroup[]) => groups[0];

describe('pooled AUC rows by secure summation', () => {
  test.each([11, 12, 13, 14, 15])('seed %i: the hub receives only masked vectors and decodes exactly the pooled numbers', (seed) => {
    const gen = new Gen(seed);
    const everyone = sites();
    const cases = new Map(SITES.map((s) => [s, casesOf(gen, s)]));

    // Round 1: histograms.
    const histogramLayout = rowLayout(FederationTaskKind.SCORE_HISTOGRAM, { positives: BINS, negatives: BINS });
    const r1 = new Map(SITES.map((s) => [s, onlyGroup(scoreHistogramGroups(cases.get(s) as AucCase[], QUERY))]));
    const plain1 = new Map(SITES.map((s) => [s, encodeRow(histogramLayout, r1.get(s)!.patients, r1.get(s)!.values, SITES.length)]));
    const round1 = new SecureSumRound('auc-r1', SITES, { minSites: 2, length: histogramLayout.length });
    const seen1 = attempt(round1, everyone, plain1, SITES, 'auc-r1');
    expectOnlyMasked(seen1, plain1);
    const pooled1 = decodeRow(histogramLayout, round1.total() as BigUint64Array);
    const sum = (name: string) => SITES.reduce((t, s) => t.map((v, i) => v + (r1.get(s)!.values[name] as number[])[i]), new Array<number>(BINS).fill(0));
    expect(pooled1.values).toEqual({ positives: sum('positives'), negatives: sum('negatives') });
    expect(pooled1.patients).toBe(SITES.reduce((t, s) => t + r1.get(s)!.patients, 0));

    // Round 2: placement sums against the pooled table.
    const histograms = pooled1.values as unknown as ScoreHistograms;
    const table = placementTable(histograms)!;
    const second = { ...QUERY, tables: [{ key: {}, tables: [{ ...table }] }] };
    const sumsLayout = rowLayout(FederationTaskKind.PLACEMENT_SUMS, { sums: 6 });
    const r2 = new Map(SITES.map((s) => [s, onlyGroup(placementSumsGroups(cases.get(s) as AucCase[], second))]));
    const plain2 = new Map(SITES.map((s) => [s, encodeRow(sumsLayout, r2.get(s)!.patients, r2.get(s)!.values, SITES.length)]));
    const round2 = new SecureSumRound('auc-r2', SITES, { minSites: 2, length: sumsLayout.length });
    expectOnlyMasked(attempt(round2, everyone, plain2, SITES, 'auc-r2'), plain2);
    const decoded = (decodeRow(sumsLayout, round2.total() as BigUint64Array).values.sums as number[]).slice();
    const plainSums = addPlacementSums(SITES.map((s) => sumsOf(r2.get(s)!.values.sums as number[])));
    const secure = pooledAuc(histograms, table, sumsOf(decoded));
    const reference = pooledAuc(histograms, table, plainSums);
    for (const f of ['value', 'lower', 'upper'] as const) {
      expect(Math.abs((secure.clustered[f] as number) - (reference.clustered[f] as number))).toBeLessThanOrEqual(1e-9);
      expect(secure.delong[f]).toBe(reference.delong[f]);
    }
  });

  test('a site that drops out of a round restarts it with the others, and the total is theirs exactly', () => {
    const gen = new Gen(99);
    const everyone = sites();
    const layout = rowLayout(FederationTaskKind.SCORE_HISTOGRAM, { positives: BINS, negatives: BINS });
    const groups = new Map(SITES.map((s) => [s, onlyGroup(scoreHistogramGroups(casesOf(gen, s), QUERY))]));
    const plain = new Map(SITES.map((s) => [s, encodeRow(layout, groups.get(s)!.patients, groups.get(s)!.values, SITES.length)]));
    const round = new SecureSumRound('auc-dropout', SITES, { minSites: 2, length: layout.length });
    attempt(round, everyone, plain, ['NORTH', 'SOUTH'], 'auc-dropout');
    expect(round.total()).toBeNull();
    const outcome = round.expire();
    expect(outcome).toMatchObject({ outcome: 'RESTARTED', dropped: ['WEST'], plan: { roundId: 'auc-dropout#2', participants: ['NORTH', 'SOUTH'] } });
    attempt(round, everyone, plain, ['NORTH', 'SOUTH'], 'auc-dropout');
    const total = decodeRow(layout, round.total() as BigUint64Array);
    const two = ['NORTH', 'SOUTH'];
    expect(total.patients).toBe(two.reduce((t, s) => t + groups.get(s)!.patients, 0));
    expect(total.values.positives).toEqual(
      (groups.get('NORTH')!.values.positives as number[]).map((v, i) => v + (groups.get('SOUTH')!.values.positives as number[])[i]),
    );
  });

  test('layouts and encodings refuse what does not fit', () => {
    expect(() => rowLayout(FederationTaskKind.SCORE_HISTOGRAM, { positives: BINS })).toThrow(RowLayoutError);
    expect(() => rowLayout(FederationTaskKind.INFERENCE, {})).toThrow(RowLayoutError);
    const layout = rowLayout(FederationTaskKind.BINARY_COUNTS, { clusters: 6, x: 6, n: 6, xx: 6, xn: 6, nn: 6 });
    expect(layout.length).toBe(1 + 4 + 36);
    expect(() => encodeRow(layout, 3, { tp: [1], fp: 0, tn: 0, fn: 0 }, 3)).toThrow(RowLayoutError);
    expect(() => decodeRow(layout, new BigUint64Array(3))).toThrow(RowLayoutError);
    const zeros: RowLayout = rowLayout(FederationTaskKind.BOOTSTRAP_SUMS, { tp: 2, fp: 2, tn: 2, fn: 2 });
    expect(Array.from(encodeRow(zeros, 7, null, 3))).toEqual(new Array(9).fill(0n));
  });
});

function sumsOf(v: readonly number[]): PlacementSums {
  return { clusters: v[0], withPositives: v[1], withNegatives: v[2], s10: v[3], s01: v[4], s11: v[5] };
}

/** What the hub received from each site differs from that site's plain vector everywhere it could be told apart. */
function expectOnlyMasked(received: Map<string, BigUint64Array>, plain: Map<string, BigUint64Array>) {
  for (const [site, masked] of received) {
    const own = plain.get(site) as BigUint64Array;
    const equal = masked.filter((v, i) => v === own[i]).length;
    // A masked value equals the plain one with probability 2^-64 per position.
    expect(equal).toBe(0);
    for (const other of plain.values()) expect(Array.from(masked)).not.toEqual(Array.from(other));
  }
}
