#!/usr/bin/python3
"""Writes test/fixtures/stats/mcnemar/paired-tables.json: paired model/reader grades with the paired 2x2 table of correct calls
and statsmodels' exact McNemar p-value (committed; CI needs no Python).

Needs Debian's python3-numpy and python3-statsmodels (no scikit-learn, no R):
    apt-get install -y python3-statsmodels python3-numpy
    /usr/bin/python3 scripts/make-mcnemar-fixture.py

Each design comes from its own fixed numpy seed, so a rerun writes a byte-identical file (given the same package
versions). A case is correct when its call (grade >= threshold) equals the reference's; the table counts, over the
cases, both raters correct (a), only the model (b), only the reader (c), neither (d), counted by numpy, and the
p-value is statsmodels' mcnemar([[a, b], [c, d]], exact=True) on that table.
"""
import json
import os

import numpy as np
import statsmodels
from statsmodels.stats.contingency_tables import mcnemar

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', 'test', 'fixtures', 'stats', 'mcnemar', 'paired-tables.json')


def rater(rng, truth, accuracy, grades=4):
    """Grades that equal the reference with probability `accuracy`, and another grade otherwise."""
    right = rng.random(len(truth)) < accuracy
    other = (truth + rng.integers(1, grades, len(truth))) % grades
    return np.where(right, truth, other)


def design(name, seed, n, threshold, model_accuracy, reader_accuracy, description, same=False):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, n)
    model = rater(rng, truth, model_accuracy)
    reader = model.copy() if same else rater(rng, truth, reader_accuracy)
    positive = truth >= threshold
    model_right = (model >= threshold) == positive
    reader_right = (reader >= threshold) == positive
    a = int(np.sum(model_right & reader_right))
    b = int(np.sum(model_right & ~reader_right))
    c = int(np.sum(~model_right & reader_right))
    d = int(np.sum(~model_right & ~reader_right))
    assert a + b + c + d == n
    p = float(mcnemar([[a, b], [c, d]], exact=True).pvalue)
    return {
        'name': name,
        'description': f'{description} numpy seed {seed}.',
        'threshold': threshold,
        'truth': truth.tolist(),
        'model': model.tolist(),
        'reader': reader.tolist(),
        'reference': {'bothCorrect': a, 'modelOnly': b, 'readerOnly': c, 'neither': d, 'p': p},
    }


DESIGNS = [
    ('random', 11, 300, 1, 0.8, 0.75, 'Independent errors, model a little better than the reader.'),
    ('asymmetric', 12, 120, 1, 0.95, 0.6, 'A much better model: almost every discordant case favours it.'),
    ('threshold-2', 13, 200, 2, 0.7, 0.7, 'Positive from grade 2; equal raters.'),
    ('large', 14, 6000, 1, 0.82, 0.8, 'Thousands of cases, hundreds of discordant ones (the log-space sum).'),
    ('tiny', 15, 5, 1, 0.6, 0.6, 'Five cases.'),
]


def main():
    cases = [design(*d) for d in DESIGNS]
    cases.append(design('concordant', 16, 40, 1, 0.7, 0.7, 'The reader grades exactly as the model: no discordant case, p = 1.', same=True))
    doc = {'generator': 'scripts/make-mcnemar-fixture.py',
           'versions': {'numpy': np.__version__, 'statsmodels': statsmodels.__version__},
           'cases': cases}
    with open(OUT, 'w') as f:
        json.dump(doc, f, separators=(',', ':'))
        f.write('\n')
    for case in cases:
        print(case['name'], case['reference'])


if __name__ == '__main__':
    main()
