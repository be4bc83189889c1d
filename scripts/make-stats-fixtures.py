#!/usr/bin/python3
"""Writes the statistics reference fixtures of test/fixtures/stats/ (committed; CI needs neither Python nor R).

Needs Debian's python3-sklearn, python3-statsmodels, python3-scipy, python3-numpy and r-cran-proc:
    apt-get install -y python3-sklearn python3-statsmodels python3-scipy python3-numpy r-cran-proc
    /usr/bin/python3 scripts/make-stats-fixtures.py   # Debian's python, where the apt packages live

One JSON file per case, each from its own fixed numpy seed, so a rerun writes byte-identical files (given the
same package versions). Rows are joints clustered in patients (`patient`). The `reference` block holds the
numbers of the field's standard implementations, never of Facet's own code:
  - confusion counts, accuracy, sensitivity, specificity, precision, NPV, F1: sklearn (checked against the
    plain count formulas), null where the denominator is 0 (sklearn would silently return 0 there);
    Youden = sensitivity + specificity - 1;
  - Wilson 95% intervals: statsmodels proportion_confint(method="wilson"), null where n = 0;
  - AUC and ROC points: sklearn roc_auc_score / roc_curve(drop_intermediate=False), first threshold -> null;
  - DeLong variance / CI and the paired DeLong test: pROC (scripts/stats-reference.R, run through Rscript);
  - clustered AUC variance of Obuchowski (1997): the direct double-sum definition, plain Python loops over
    every positive/negative pair (an independent O(n^2) check, no rank trick);
  - McNemar: statsmodels mcnemar(exact=True); Cohen's kappa, multi-class confusion / F1 / one-vs-rest AUC:
    sklearn.
Values the reference cannot compute (one class, no positives) are null. The script asserts that the
implementations agree with each other where they overlap (sklearn AUC = pROC AUC = Obuchowski theta).

It also writes test/fixtures/stats/reader-average/ (no R needed: `scripts/make-stats-fixtures.py reader-average`
writes only those): several readers grading cells of clustered patients, with each reader's metrics from sklearn
(with `sample_weight` for the bootstrap), averaged over readers, and the patient-cluster bootstrap of those
averages. The bootstrap draws come from a port of Facet's seeded generator (xoshiro128** seeded by splitmix32),
checked against the first draws Facet gives, so both sides resample the same patients; every statistic on the
resamples is sklearn's.
"""
import csv
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import scipy
import sklearn
import statsmodels
from sklearn.metrics import (accuracy_score, cohen_kappa_score, confusion_matrix, f1_score, precision_score,
                             recall_score, roc_auc_score, roc_curve)
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', 'test', 'fixtures', 'stats')
R_SCRIPT = os.path.join(HERE, 'stats-reference.R')
Z975 = 1.959963984540054
LABELS = [0, 1, 2, 3]


# ---------------------------------------------------------------------------------------------- data --

def patients(n_patients, joints):
    return [f'P{i + 1:03d}' for i in range(n_patients) for _ in range(joints)]


def clip01(x):
    return np.clip(x, 0.0, 1.0)


def second_rater(rng, truth, score, decimals=6):
    """scoreB: another rater, correlated with score (half of it) and a little weaker."""
    own = clip01(truth * 0.2 + rng.normal(0.4, 0.2, len(truth)))
    return np.round(clip01(0.5 * score + 0.5 * own), decimals)


def neighbour(rng, g):
    """A grade other than g, one step away (two at most, rarely)."""
    if rng.random() < 0.2:
        return int(rng.choice([k for k in LABELS if k != g]))
    if g == 0:
        return 1
    if g == 3:
        return 2
    return g + (1 if rng.random() < 0.5 else -1)


def probs_row(rng, g):
    """A 4-class probability row leaning towards grade g, rounded to 6 decimals, summing to 1, unique argmax."""
    while True:
        logits = -1.0 * (np.arange(4) - g) ** 2 + rng.normal(0.0, 0.9, 4)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        r = [round(float(v), 6) for v in p[:3]]
        r.append(round(1.0 - sum(r), 6))
        if r[3] >= 0 and r.count(max(r)) == 1:
            return r


def ordinal(rng, n, grade_truth=None):
    """gradeTruth 0..3, probs (4 columns), gradePred = argmax, readerA ~ truth, readerB = readerA ~70%."""
    if grade_truth is None:
        grade_truth = [int(g) for g in rng.choice(4, size=n, p=[0.4, 0.3, 0.2, 0.1])]
    probs = [probs_row(rng, g) for g in grade_truth]
    grade_pred = [int(np.argmax(p)) for p in probs]
    reader_a = [g if rng.random() < 0.75 else neighbour(rng, g) for g in grade_truth]
    reader_b = [a if rng.random() < 0.7 else neighbour(rng, a) for a in reader_a]
    return {'gradeTruth': grade_truth, 'gradePred': grade_pred, 'probs': probs, 'readerA': reader_a,
            'readerB': reader_b}


def binary(patient, truth, score, score_b):
    truth = np.asarray(truth, dtype=int)
    score = np.asarray(score, dtype=float)
    score_b = np.asarray(score_b, dtype=float)
    return {'patient': list(patient), 'truth': [int(t) for t in truth], 'score': [float(s) for s in score],
            'scoreB': [float(s) for s in score_b], 'pred': [int(s >= 0.5) for s in score]}


def case_random(rng):
    n = 60 * 5
    truth = rng.binomial(1, 0.35, n)
    score = np.round(clip01(truth * 0.25 + rng.normal(0.4, 0.2, n)), 6)
    return binary(patients(60, 5), truth, score, second_rater(rng, truth, score)), n


def case_ties(rng):
    n = 40 * 4
    truth = rng.binomial(1, 0.35, n)
    score = np.round(clip01(truth * 0.25 + rng.normal(0.4, 0.2, n)), 1)
    return binary(patients(40, 4), truth, score, second_rater(rng, truth, score, decimals=1)), n


def case_tiny(rng):
    d = binary(['P001', 'P001', 'P002', 'P002'], [1, 0, 1, 0], [0.8, 0.3, 0.4, 0.6], [0.7, 0.7, 0.2, 0.1])
    return d, 4


def case_heavy(rng):
    n_pat, joints = 30, 10
    n = n_pat * joints
    u = np.repeat(rng.normal(0.0, 1.0, n_pat), joints)  # per-patient random effect, shared by truth and scores
    rho = 0.6  # intra-patient correlation of the latent variables
    liability = math.sqrt(rho) * u + math.sqrt(1 - rho) * rng.normal(0.0, 1.0, n)
    truth = (liability > 0.385).astype(int)  # ~35% prevalence
    noise = math.sqrt(rho) * u + math.sqrt(1 - rho) * rng.normal(0.0, 1.0, n)
    score = np.round(clip01(truth * 0.05 + 0.4 + 0.2 * noise), 6)  # the shared effect carries most of the signal
    noise_b = math.sqrt(rho) * u + math.sqrt(1 - rho) * rng.normal(0.0, 1.0, n)
    score_b = np.round(clip01(0.5 * score + 0.5 * clip01(truth * 0.05 + 0.4 + 0.2 * noise_b)), 6)
    return binary(patients(n_pat, joints), truth, score, score_b), n


def case_perfect(rng):
    n = 25 * 4
    truth = rng.binomial(1, 0.35, n)
    score = truth.astype(float)
    score_b = np.round(clip01(truth * 0.25 + rng.normal(0.4, 0.2, n)), 6)
    return binary(patients(25, 4), truth, score, score_b), n


def case_inverted(rng):
    n = 25 * 4
    truth = rng.binomial(1, 0.35, n)
    score = np.round(clip01(1.0 - (truth * 0.5 + rng.normal(0.25, 0.2, n))), 6)
    score_b = np.round(clip01(truth * 0.25 + rng.normal(0.4, 0.2, n)), 6)
    return binary(patients(25, 4), truth, score, score_b), n


def case_one_class(rng):
    n = 30 * 4
    truth = np.zeros(n, dtype=int)
    score = np.round(clip01(rng.normal(0.4, 0.2, n)), 6)
    return binary(patients(30, 4), truth, score, second_rater(rng, truth, score)), n


TINY_ORDINAL = {
    'gradeTruth': [0, 1, 2, 3],
    'gradePred': [0, 2, 2, 3],
    'probs': [[0.7, 0.2, 0.05, 0.05], [0.1, 0.35, 0.45, 0.1], [0.05, 0.15, 0.6, 0.2], [0.0, 0.1, 0.3, 0.6]],
    'readerA': [0, 1, 2, 3],
    'readerB': [0, 2, 1, 3],
}

CASES = [
    ('random', 20240101, case_random,
     '60 patients x 5 joints; truth ~ Bernoulli(0.35); score = clip(0.25*truth + N(0.4, 0.2)) to [0, 1], '
     '6 decimals; scoreB = a second, correlated rater; pred = score >= 0.5.'),
    ('ties', 20240102, case_ties,
     '40 patients x 4 joints as in random, but score and scoreB rounded to 1 decimal (many ties, and scores '
     'of exactly 0.5, which pred counts as positive).'),
    ('tiny', 20240103, case_tiny,
     '4 rows, 2 patients, each with one positive and one negative; scoreB has a tie across the classes. '
     'Ordinal data written by hand, every grade present once.'),
    ('heavy-clustering', 20240104, case_heavy,
     '30 patients x 10 joints; truth and both scores share a per-patient random effect (latent intra-patient '
     'correlation 0.6), so the clustered (Obuchowski) variance exceeds the DeLong one.'),
    ('perfect', 20240105, case_perfect,
     '25 patients x 4 joints; score = truth (AUC 1, DeLong and Obuchowski variance 0); scoreB a noisy rater.'),
    ('inverted', 20240106, case_inverted,
     '25 patients x 4 joints; score = 1 - (0.5*truth + N(0.25, 0.2)), clipped: AUC near 0 (ROC never '
     'flipped); scoreB a normal rater.'),
    ('one-class', 20240107, case_one_class,
     '30 patients x 4 joints, all truth = 0: every value that needs positives is null; the ordinal '
     '(multi-class, kappa) data still has all four grades.'),
]


# ----------------------------------------------------------------------------------------- reference --

def fnum(x):
    """A plain float, or None for None / NaN / inf."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def ratio(num, den):
    return None if den == 0 else num / den


def close(a, b, tol=1e-12):
    return (a is None and b is None) or (a is not None and b is not None and abs(a - b) <= tol)


def wilson(count, n):
    if n == 0:
        return None
    lo, hi = proportion_confint(count, n, alpha=0.05, method='wilson')
    return [float(lo), float(hi)]


def obuchowski(patient, truth, score):
    """Obuchowski (1997) clustered AUC variance, by the direct double sums over every pair."""
    clusters = []
    for p in patient:
        if p not in clusters:
            clusters.append(p)
    pos = [(patient[r], score[r]) for r in range(len(truth)) if truth[r] == 1]
    neg = [(patient[r], score[r]) for r in range(len(truth)) if truth[r] == 0]
    M, N, I = len(pos), len(neg), len(clusters)
    if M == 0 or N == 0 or I < 2:
        return None

    def psi(x, y):
        return 1.0 if x > y else (0.5 if x == y else 0.0)

    v10 = {c: 0.0 for c in clusters}
    v01 = {c: 0.0 for c in clusters}
    m = {c: 0 for c in clusters}
    n = {c: 0 for c in clusters}
    for c, x in pos:
        total = 0.0
        for _, y in neg:
            total += psi(x, y)
        v10[c] += total / N
        m[c] += 1
    for c, y in neg:
        total = 0.0
        for _, x in pos:
            total += psi(x, y)
        v01[c] += total / M
        n[c] += 1
    theta = sum(v10[c] for c in clusters) / M
    # Obuchowski (1997): I10 / I01 are the numbers of clusters with at least one positive / negative case; the
    # cross term uses all I clusters.
    I10 = sum(1 for c in clusters if m[c] > 0)
    I01 = sum(1 for c in clusters if n[c] > 0)
    if I10 < 2 or I01 < 2:
        return None
    s10 = I10 / ((I10 - 1) * M) * sum((v10[c] - m[c] * theta) ** 2 for c in clusters)
    s01 = I01 / ((I01 - 1) * N) * sum((v01[c] - n[c] * theta) ** 2 for c in clusters)
    s11 = I / (I - 1) * sum((v10[c] - m[c] * theta) * (v01[c] - n[c] * theta) for c in clusters)
    variance = s10 / M + s01 / N + 2 * s11 / (M * N)
    sd = math.sqrt(max(variance, 0.0))
    return {'theta': theta, 'variance': variance, 'ci95': [theta - Z975 * sd, theta + Z975 * sd]}


def run_proc(truth, score, score_b):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'data.csv')
        with open(path, 'w', newline='') as f:
            w = csv.writer(f)
            w.writerow(['truth', 'score', 'scoreB'])
            for t, s, b in zip(truth, score, score_b):
                w.writerow([t, repr(s), repr(b)])
        res = subprocess.run(['Rscript', R_SCRIPT, path], capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f'Rscript failed:\n{res.stderr}')
    if res.stderr.strip():
        print(f'  R: {res.stderr.strip()}', file=sys.stderr)
    out = {}
    for line in res.stdout.splitlines():
        key, value = line.split(' ', 1)
        if key.endswith('_version'):
            out[key] = value
        else:
            out[key] = None if value in ('NA', 'NaN', 'Inf', '-Inf') else float(value)
    return out


def reference(d, r_versions):
    truth = np.array(d['truth'])
    pred = np.array(d['pred'])
    score = np.array(d['score'])
    score_b = np.array(d['scoreB'])
    both = len(set(d['truth'])) == 2

    tp = int(np.sum((truth == 1) & (pred == 1)))
    fp = int(np.sum((truth == 0) & (pred == 1)))
    tn = int(np.sum((truth == 0) & (pred == 0)))
    fn = int(np.sum((truth == 1) & (pred == 0)))
    n = tp + fp + tn + fn

    # Plain formulas decide definedness; sklearn gives the value wherever it is defined.
    plain = {
        'accuracy': ratio(tp + tn, n), 'sensitivity': ratio(tp, tp + fn), 'specificity': ratio(tn, tn + fp),
        'precision': ratio(tp, tp + fp), 'npv': ratio(tn, tn + fn), 'f1': ratio(2 * tp, 2 * tp + fp + fn),
    }
    sk = {
        'accuracy': lambda: accuracy_score(truth, pred),
        'sensitivity': lambda: recall_score(truth, pred, pos_label=1, zero_division=0),
        'specificity': lambda: recall_score(truth, pred, pos_label=0, zero_division=0),
        'precision': lambda: precision_score(truth, pred, pos_label=1, zero_division=0),
        'npv': lambda: precision_score(truth, pred, pos_label=0, zero_division=0),
        'f1': lambda: f1_score(truth, pred, pos_label=1, zero_division=0),
    }
    ref = {'confusion': {'tp': tp, 'fp': fp, 'tn': tn, 'fn': fn}}
    for k, v in plain.items():
        if v is None:
            ref[k] = None
        else:
            ref[k] = float(sk[k]())
            assert close(ref[k], v), (k, ref[k], v)
    ref['youden'] = (None if ref['sensitivity'] is None or ref['specificity'] is None
                     else ref['sensitivity'] + ref['specificity'] - 1)
    ref['wilson95'] = {'accuracy': wilson(tp + tn, n), 'sensitivity': wilson(tp, tp + fn),
                       'specificity': wilson(tn, tn + fp), 'precision': wilson(tp, tp + fp),
                       'npv': wilson(tn, tn + fn)}

    if both:
        ref['auc'] = float(roc_auc_score(truth, score))
        fpr, tpr, thr = roc_curve(truth, score, drop_intermediate=False)
        thresholds = [float(t) for t in thr]
        thresholds[0] = None  # inf (sklearn >= 1.3) or max(score) + 1 (older): not a real threshold
        ref['roc'] = {'fpr': [float(v) for v in fpr], 'tpr': [float(v) for v in tpr], 'thresholds': thresholds}
    else:
        ref['auc'] = None
        ref['roc'] = None

    if both:
        r = run_proc(d['truth'], d['score'], d['scoreB'])
        r_versions.add((r['R_version'], r['pROC_version']))
        assert close(r['auc'], ref['auc']) and close(r['delong.auc'], ref['auc']), (r, ref['auc'])
        ref['delong'] = {'variance': r['delong.variance'], 'ci95': [r['delong.lo'], r['delong.hi']]}
        if r['paired.aucA'] is None:
            ref['pairedDelong'] = None
        else:
            assert close(r['paired.aucA'], ref['auc'])
            assert close(r['paired.aucB'], float(roc_auc_score(truth, score_b)))
            ref['pairedDelong'] = {'aucA': r['paired.aucA'], 'aucB': r['paired.aucB'],
                                   'difference': r['paired.aucA'] - r['paired.aucB'],
                                   'z': r['paired.z'], 'p': r['paired.p']}
    else:
        ref['delong'] = None
        ref['pairedDelong'] = None

    ob = obuchowski(d['patient'], d['truth'], d['score'])
    if ob is None:
        ref['obuchowski'] = None
    else:
        assert close(ob['theta'], ref['auc'], 1e-12), (ob['theta'], ref['auc'])
        ref['obuchowski'] = {'variance': ob['variance'], 'ci95': ob['ci95']}

    right_a = pred == truth
    right_b = (score_b >= 0.5).astype(int) == truth
    a = int(np.sum(right_a & right_b))
    b = int(np.sum(right_a & ~right_b))
    c = int(np.sum(~right_a & right_b))
    dd = int(np.sum(~right_a & ~right_b))
    ref['mcnemar'] = {'b': b, 'c': c, 'p': float(mcnemar([[a, b], [c, dd]], exact=True).pvalue)}

    def kappas(x, y):
        return {'unweighted': fnum(cohen_kappa_score(x, y, weights=None)),
                'linear': fnum(cohen_kappa_score(x, y, weights='linear')),
                'quadratic': fnum(cohen_kappa_score(x, y, weights='quadratic'))}

    ref['kappa'] = kappas(d['readerA'], d['readerB'])
    ref['kappaVsTruth'] = kappas(d['gradePred'], d['gradeTruth'])

    gt, gp = d['gradeTruth'], d['gradePred']
    ovr = None
    if set(gt) == set(LABELS):
        ovr = float(roc_auc_score(gt, np.array(d['probs']), multi_class='ovr', average='macro', labels=LABELS))
    ref['multiclass'] = {
        'labels': LABELS,
        'confusion': confusion_matrix(gt, gp, labels=LABELS).tolist(),
        'macroF1': float(f1_score(gt, gp, labels=LABELS, average='macro', zero_division=0)),
        'weightedF1': float(f1_score(gt, gp, labels=LABELS, average='weighted', zero_division=0)),
        'ovrMacroAuc': ovr,
    }
    order = ['confusion', 'accuracy', 'sensitivity', 'specificity', 'precision', 'npv', 'f1', 'youden', 'wilson95',
             'auc', 'roc', 'delong', 'obuchowski', 'pairedDelong', 'mcnemar', 'kappa', 'kappaVsTruth', 'multiclass']
    assert sorted(order) == sorted(ref)
    return {k: ref[k] for k in order}


# ---------------------------------------------------------------------------------- reader average --

M32 = 0xFFFFFFFF


def seeded_random(seed):
    """Facet's server/stats/bootstrap.ts seededRandom: splitmix32 seeding xoshiro128**, uniform in [0, 1)."""
    s = seed & M32

    def next32():
        nonlocal s
        s = (s + 0x9E3779B9) & M32
        z = s
        z = ((z ^ (z >> 16)) * 0x85EBCA6B) & M32
        z = ((z ^ (z >> 13)) * 0xC2B2AE35) & M32
        return (z ^ (z >> 16)) & M32

    def rotl(x, k):
        return ((x << k) | (x >> (32 - k))) & M32

    a, b, c, d = next32(), next32(), next32(), next32()

    def rand():
        nonlocal a, b, c, d
        result = (rotl((b * 5) & M32, 7) * 9) & M32
        t = (b << 9) & M32
        c ^= a
        d ^= b
        b ^= c
        a ^= d
        c ^= t
        d = rotl(d, 11)
        return result / 4294967296

    return rand


def bootstrap_weights(units, replicates, seed):
    """Per replicate, how often the resample drew each unit (Facet's clusterBootstrap draws)."""
    rand = seeded_random(seed)
    for _ in range(replicates):
        w = [0] * units
        for _ in range(units):
            w[math.floor(rand() * units)] += 1
        yield w


def weighted_binary(truth, call, w):
    """sklearn's weighted metrics of one rater; None where the plain weighted denominator is 0."""
    truth, call, w = np.asarray(truth), np.asarray(call), np.asarray(w, dtype=float)
    keep = w > 0
    truth, call, w = truth[keep], call[keep], w[keep]
    pos, neg = w[truth == 1].sum(), w[truth == 0].sum()
    ppos, pneg = w[call == 1].sum(), w[call == 0].sum()
    out = {
        'prevalence': None if w.sum() == 0 else float(np.average(truth, weights=w)),
        'accuracy': None if w.sum() == 0 else float(accuracy_score(truth, call, sample_weight=w)),
        'sensitivity': None if pos == 0 else float(recall_score(truth, call, pos_label=1, sample_weight=w, zero_division=0)),
        'specificity': None if neg == 0 else float(recall_score(truth, call, pos_label=0, sample_weight=w, zero_division=0)),
        'precision': None if ppos == 0 else float(precision_score(truth, call, pos_label=1, sample_weight=w, zero_division=0)),
        'npv': None if pneg == 0 else float(precision_score(truth, call, pos_label=0, sample_weight=w, zero_division=0)),
        'f1': None if pos == 0 else float(f1_score(truth, call, pos_label=1, sample_weight=w, zero_division=0)),
    }
    out['youden'] = None if out['sensitivity'] is None or out['specificity'] is None else out['sensitivity'] + out['specificity'] - 1
    return out


def weighted_auc(truth, score, w):
    truth, score, w = np.asarray(truth), np.asarray(score, dtype=float), np.asarray(w, dtype=float)
    keep = w > 0
    if len(set(truth[keep].tolist())) < 2:
        return None
    return float(roc_auc_score(truth[keep], score[keep], sample_weight=w[keep]))


SCALARS = ['prevalence', 'accuracy', 'sensitivity', 'specificity', 'precision', 'npv', 'f1', 'youden', 'auc']
COMPARED = {'ACCURACY': 'accuracy', 'SENSITIVITY': 'sensitivity', 'SPECIFICITY': 'specificity', 'F1': 'f1', 'AUC': 'auc'}


def reader_scalars(cases, t, weights, unit_of):
    w = [weights[unit_of(c)] if weights is not None else 1 for c in cases]
    truth = [int(c['truth'] >= t) for c in cases]
    out = weighted_binary(truth, [int(c['grade'] >= t) for c in cases], w)
    out['auc'] = weighted_auc(truth, [c['grade'] for c in cases], w)
    model = weighted_binary(truth, [int(int(np.argmax(c['probs'])) >= t) for c in cases], w)
    model['auc'] = weighted_auc(truth, [sum(c['probs'][t:]) for c in cases], w)
    return out, model


def percentile(values, replicates, level=0.95):
    if len(values) < replicates * (1 - 0.05):
        return None, None
    alpha = (1 - level) / 2
    return float(np.percentile(values, 100 * alpha)), float(np.percentile(values, 100 * (1 - alpha)))


def reader_average_reference(case):
    t, k, clustered = case['threshold'], case['grades'], case['clustered']
    readers = case['readers']
    units = {}
    for r in readers:
        for c in r['cases']:
            units.setdefault(c['patient'] if clustered else c['cell'], len(units))

    def unit_of(c):
        return units[c['patient'] if clustered else c['cell']]

    observed = [reader_scalars(r['cases'], t, None, unit_of) for r in readers]
    averaged = {s: [i for i, (o, _) in enumerate(observed) if o[s] is not None] for s in SCALARS}
    paired = {m: [i for i, (o, mo) in enumerate(observed) if o[s] is not None and mo[s] is not None] for m, s in COMPARED.items()}
    values = {s: [] for s in SCALARS}
    differences = {m: [] for m in COMPARED}
    for weights in bootstrap_weights(len(units), case['replicates'], case['seed']):
        resampled = [reader_scalars(r['cases'], t, weights, unit_of) for r in readers]
        for s in SCALARS:
            got = [resampled[i][0][s] for i in averaged[s]]
            if averaged[s] and all(v is not None for v in got):
                values[s].append(sum(got) / len(got))
        for m, s in COMPARED.items():
            got = [(resampled[i][1][s], resampled[i][0][s]) for i in paired[m]]
            if paired[m] and all(a is not None and b is not None for a, b in got):
                differences[m].append(sum(a - b for a, b in got) / len(got))

    metrics = {}
    for s in SCALARS:
        if not averaged[s]:
            metrics[s] = None
            continue
        lower, upper = percentile(values[s], case['replicates'])
        metrics[s] = {'value': sum(observed[i][0][s] for i in averaged[s]) / len(averaged[s]), 'lower': lower, 'upper': upper,
                      'readers': len(averaged[s])}
    compare = {}
    for m, s in COMPARED.items():
        used = paired[m]
        if not used:
            compare[m] = None
            continue
        model = sum(observed[i][1][s] for i in used) / len(used)
        reader = sum(observed[i][0][s] for i in used) / len(used)
        d = differences[m]
        lower, upper = percentile(d, case['replicates'])
        enough = len(d) >= case['replicates'] * 0.95
        below, above = sum(1 for x in d if x <= 0), sum(1 for x in d if x >= 0)
        compare[m] = {'model': model, 'reader': reader, 'difference': model - reader, 'lower': lower, 'upper': upper,
                      'p': min(1.0, 2 * (1 + min(below, above)) / (len(d) + 1)) if enough else None, 'readers': len(used)}

    def mean_defined(xs):
        xs = [x for x in xs if x is not None]
        return sum(xs) / len(xs) if xs else None

    per_reader = []
    for r in readers:
        truth = [c['truth'] for c in r['cases']]
        grade = [c['grade'] for c in r['cases']]
        present = sorted(set(truth) | set(grade))
        ovr = None
        if set(truth) == set(range(k)):
            onehot = np.array([[1.0 if g == j else 0.0 for j in range(k)] for g in grade])
            ovr = float(roc_auc_score(truth, onehot, multi_class='ovr', average='macro', labels=list(range(k))))
        per_reader.append({
            'confusion': confusion_matrix(truth, grade, labels=list(range(k))),
            'macroF1': float(f1_score(truth, grade, labels=present, average='macro', zero_division=0)),
            'weightedF1': float(f1_score(truth, grade, labels=present, average='weighted', zero_division=0)),
            'ovrMacroAuc': ovr,
            'linearKappa': fnum(cohen_kappa_score(truth, grade, weights='linear', labels=list(range(k)))),
            'quadraticKappa': fnum(cohen_kappa_score(truth, grade, weights='quadratic', labels=list(range(k)))),
        })
    multiclass = {'confusion': sum(p['confusion'] for p in per_reader).tolist()}
    for key in ['macroF1', 'weightedF1', 'ovrMacroAuc', 'linearKappa', 'quadraticKappa']:
        multiclass[key] = mean_defined([p[key] for p in per_reader])
    draw = seeded_random(case['seed'])
    return {'metrics': metrics, 'compare': compare, 'multiclass': multiclass, 'firstDraws': [draw() for _ in range(3)]}


def reader_grade(rng, truth, bias):
    g = truth + bias + (0 if rng.random() < 0.65 else int(rng.choice([-1, 1])))
    return int(min(3, max(0, g)))


def reader_study(rng, sites, patients_per_site, joints, readers_per_site, crossed_missing=0.0, negative_site=None):
    """Cells (patient x joint, one 4-grade feature) of sites; each site's cells read by that site's readers."""
    readers = []
    for s in range(sites):
        cells = []
        for p in range(patients_per_site):
            patient = f'S{s + 1}P{p + 1:03d}'
            level = rng.normal(0.0, 1.0)  # the patient's degeneration: joints of one patient resemble each other
            for j in range(joints):
                latent = level + rng.normal(0.0, 0.8)
                truth = 0 if s == negative_site else int(np.digitize(latent, [-0.2, 0.7, 1.5]))
                cells.append({'patient': patient, 'cell': f'{patient}:J{j + 1}', 'truth': truth, 'probs': probs_row(rng, truth)})
        for r in range(readers_per_site):
            bias = [0, 1, -1, 0][r % 4] if rng.random() < 0.5 else 0
            cases = [dict(c, grade=reader_grade(rng, c['truth'], bias)) for c in cells if rng.random() >= crossed_missing]
            readers.append({'code': f'S{s + 1}-R{r + 1}', 'cases': cases})
    return readers


READER_AVERAGE_CASES = [
    ('split-plot', 20240201, lambda rng: reader_study(rng, 2, 20, 5, 2), True,
     'Two sites of 20 patients x 5 joints; each site read by its own two readers (a split-plot design, as sites '
     'read their own patients).'),
    ('crossed', 20240202, lambda rng: reader_study(rng, 1, 30, 4, 3, crossed_missing=0.1), True,
     'One site of 30 patients x 4 joints read by three readers, each missing ~10% of the cells at random.'),
    ('crossed-per-cell', 20240202, lambda rng: reader_study(rng, 1, 30, 4, 3, crossed_missing=0.1), False,
     'The crossed study resampled by cell instead of by patient (clustered: false).'),
    ('negative-site', 20240203, lambda rng: reader_study(rng, 2, 15, 4, 2, negative_site=1), True,
     'Two sites; at the second no cell is positive, so its readers have no sensitivity and the average of that '
     'metric is over the first site\'s readers only.'),
    ('one-reader', 20240204, lambda rng: reader_study(rng, 1, 25, 4, 1), True,
     'One reader: the average is that reader\'s own metrics.'),
]


def reader_average_fixtures():
    out = os.path.join(OUT, 'reader-average')
    os.makedirs(out, exist_ok=True)
    for name, seed, make, clustered, description in READER_AVERAGE_CASES:
        rng = np.random.default_rng(seed)
        case = {'name': name, 'description': f'{description} numpy seed {seed}.', 'threshold': 1, 'grades': 4,
                'clustered': clustered, 'level': 0.95, 'replicates': 500, 'seed': 7, 'readers': make(rng)}
        case['reference'] = reader_average_reference(case)
        with open(os.path.join(out, f'{name}.json'), 'w') as f:
            f.write(dump(case) + '\n')
        m = case['reference']['metrics']
        print(f'reader-average/{name}: readers={len(case["readers"])} auc={m["auc"]} sensitivity={m["sensitivity"]}')


# ------------------------------------------------------------------------------------------- output --

def dump(value, indent=0):
    """JSON with objects indented and arrays of scalars (and the rows of probs) on one line each."""
    pad = '  ' * indent
    if isinstance(value, dict):
        if not value:
            return '{}'
        items = [f'{pad}  {json.dumps(k)}: {dump(v, indent + 1)}' for k, v in value.items()]
        return '{\n' + ',\n'.join(items) + '\n' + pad + '}'
    if isinstance(value, list) and any(isinstance(v, (list, dict)) for v in value):
        items = [f'{pad}  {dump(v, indent + 1)}' for v in value]
        return '[\n' + ',\n'.join(items) + '\n' + pad + ']'
    return json.dumps(value, allow_nan=False)


def main():
    if sys.argv[1:] == ['reader-average']:
        reader_average_fixtures()
        return
    reader_average_fixtures()
    os.makedirs(OUT, exist_ok=True)
    r_versions = set()
    for name, seed, make, description in CASES:
        rng = np.random.default_rng(seed)
        data, n = make(rng)
        data.update(TINY_ORDINAL if name == 'tiny' else ordinal(rng, n))
        for row in data['probs']:
            assert abs(sum(row) - 1) < 1e-9 and min(row) >= 0 and row.count(max(row)) == 1
        assert [int(np.argmax(p)) for p in data['probs']] == data['gradePred']
        assert all(len(v) == n for v in data.values())
        doc = {'name': name, 'description': f'{description} numpy seed {seed}.', 'data': data,
               'reference': reference(data, r_versions)}
        json.loads(dump(doc))  # valid JSON, no NaN
        with open(os.path.join(OUT, f'{name}.json'), 'w') as f:
            f.write(dump(doc) + '\n')
        ref = doc['reference']
        print(f'{name}: n={n} auc={ref["auc"]} delong={ref["delong"]} obuchowski={ref["obuchowski"]}')
    print(f'numpy {np.__version__}, scipy {scipy.__version__}, scikit-learn {sklearn.__version__}, '
          f'statsmodels {statsmodels.__version__}, R/pROC {sorted(r_versions)}')


if __name__ == '__main__':
    main()
