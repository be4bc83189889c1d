import { agreementOf, agreementValues, AgreementRoundError, type AgreementValues, type PairedGrades } from '../../server/federation/agreement-rounds';
import { contingency, kappa, percentAgreement } from '../../server/stats/agreement';
import { mcnemarExact, pairedTable } from '../../server/stats/mcnemar';
import { Gen } from './generators';

const add = (list: readonly AgreementValues[]): AgreementValues => ({
  table: list[0].table.map((_, i) => list.reduce((s, v) => s + v.table[i], 0)),
  discordant: list[0].discordant.map((_, i) => list.reduce((s, v) => s + v.discordant[i], 0)),
});

describe('kappa, agreement and McNemar from summed site tables equal the union’s', () => {
  test.each(Array.from({ length: 30 }, (_, i) => 700 + i))('seed %i', (seed) => {
    const gen = new Gen(seed);
    const k = gen.int(2, 5);
    const threshold = gen.int(1, k - 1);
    const sites: PairedGrades[][] = Array.from({ length: 3 }, () =>
      Array.from({ length: gen.int(0, 60) }, () => {
        const truth = gen.int(0, k - 1);
        const near = () => Math.min(k - 1, Math.max(0, truth + gen.pick([-1, 0, 0, 0, 1])));
        return { truth, first: near(), second: gen.bool(0.8) ? near() : gen.int(0, k - 1) };
      }),
    );
    const pooled = agreementOf(add(sites.map((cases) => agreementValues(cases, k, threshold))), k);
    const union = sites.flat();
    const table = contingency(
      union.map((c) => c.first),
      union.map((c) => c.second),
      k,
    );
    for (const w of ['unweighted', 'linear', 'quadratic'] as const) expect(pooled.kappa[w]).toEqual(kappa(table, w));
    expect(pooled.percentAgreement).toEqual(percentAgreement(table));
    const paired = pairedTable(
      union.map((c) => ({ modelRight: c.first >= threshold === c.truth >= threshold, readerRight: c.second >= threshold === c.truth >= threshold })),
    );
    expect(pooled.paired).toEqual(paired);
    expect(pooled.mcnemarP).toBe(mcnemarExact(paired.modelOnly, paired.readerOnly));
  });

  test('grades off the scale and tables of another size are refused', () => {
    expect(() => agreementValues([{ first: 3, second: 0, truth: 0 }], 3, 1)).toThrow(AgreementRoundError);
    expect(() => agreementValues([{ first: 0.5, second: 0, truth: 0 }], 3, 1)).toThrow(AgreementRoundError);
    expect(() => agreementOf({ table: [1, 2, 3, 4], discordant: [0, 0, 0, 0] }, 3)).toThrow(AgreementRoundError);
    expect(() => agreementOf({ table: [1, 2, 3, 4], discordant: [0, 0] }, 2)).toThrow(AgreementRoundError);
    expect(agreementOf({ table: [0, 0, 0, 0], discordant: [0, 0, 0, 0] }, 2).kappa.unweighted.reason).toBe('NO_CASES');
  });
});
