#!/usr/bin/env python3
"""Trains Facet's reference model (model-registry/reference) on phantom joints written by make-dataset.ts.

A small CNN: a shared convolutional trunk and one linear head per Weishaupt feature, cross-entropy per head
(summed). Epochs are picked on the validation set (best mean AUC, early stop); the held-out test set, drawn with
its own seed, is used once, for evaluation.json. Exports ONNX (opset 13, dynamic batch axis) with the manifest's
input and output names.

    python3 model-registry/train/train.py --train .facet-train/train --val .facet-train/val --test .facet-train/test

Deterministic on one machine: seeds for torch and numpy, deterministic algorithms, a fixed thread count.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
from torch import nn

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
REFERENCE = os.path.join(REPO, 'model-registry', 'reference')


def load_set(folder):
    with open(os.path.join(folder, 'labels.json')) as f:
        labels = json.load(f)
    shape = [labels['count']] + labels['inputShape']
    images = np.fromfile(os.path.join(folder, 'images.f32'), dtype='<f4').reshape(shape)
    return {
        'images': torch.from_numpy(images.astype(np.float32)),
        'grades': torch.tensor(labels['grades'], dtype=torch.long),
        'modality': np.array(labels['modality']),
        'meta': {k: labels[k] for k in ('seed', 'slicesPerModality', 'count')},
        'features': labels['features'],
        'gradeCounts': labels['gradeCounts'],
    }


class FacetNet(nn.Module):
    """Conv trunk (64x64 -> 8x8), average and max pooling, a shared layer, then one head per feature."""

    def __init__(self, grade_counts, width=16):
        super().__init__()

        def block(i, o):
            return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

        w = width
        self.trunk = nn.Sequential(
            *block(1, w), nn.MaxPool2d(2),
            *block(w, 2 * w), *block(2 * w, 2 * w), nn.MaxPool2d(2),
            *block(2 * w, 4 * w), *block(4 * w, 4 * w), nn.MaxPool2d(2),
            *block(4 * w, 6 * w),
        )
        self.shared = nn.Sequential(nn.Dropout(0.2), nn.Linear(12 * w, 96), nn.ReLU(inplace=True))
        self.heads = nn.ModuleList([nn.Linear(96, k) for k in grade_counts])

    def forward(self, x):
        f = self.trunk(x)
        f = torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1)
        f = self.shared(f)
        return tuple(head(f) for head in self.heads)


def auc(scores, positive):
    """Mann-Whitney AUC, ties counted one half; None when a class is empty."""
    positive = np.asarray(positive, dtype=bool)
    m, n = positive.sum(), (~positive).sum()
    if m == 0 or n == 0:
        return None
    order = np.argsort(scores, kind='mergesort')
    s = np.asarray(scores)[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[positive].sum() - m * (m + 1) / 2) / (m * n))


def predict(model, images, batch=256):
    model.eval()
    outs = None
    with torch.no_grad():
        for start in range(0, len(images), batch):
            probs = [torch.softmax(o, dim=1) for o in model(images[start:start + batch])]
            outs = probs if outs is None else [torch.cat([a, b]) for a, b in zip(outs, probs)]
    return [o.numpy() for o in outs]


def metrics(probs, grades, features, mask=None):
    """Per feature: AUC of grade >= 1 vs 0 (score 1 - P(grade 0)), macro one-vs-rest AUC, accuracy, prevalence."""
    out = {}
    for f, (code, p) in enumerate(zip(features, probs)):
        y = grades[:, f].numpy()
        if mask is not None:
            p, y = p[mask], y[mask]
        k = p.shape[1]
        ovr = [auc(p[:, g], y == g) for g in range(k)]
        ovr = [a for a in ovr if a is not None]
        out[code] = {
            'n': int(len(y)),
            'aucGradeAtLeast1': round(auc(1 - p[:, 0], y >= 1), 4),
            'aucOneVsRestMacro': round(float(np.mean(ovr)), 4),
            'accuracy': round(float((p.argmax(1) == y).mean()), 4),
            'majorityClassAccuracy': round(float(np.bincount(y, minlength=k).max() / len(y)), 4),
        }
    return out


def summary(per_feature):
    return ', '.join('%s %.3f' % (code[:4], m['aucOneVsRestMacro']) for code, m in per_feature.items())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--train', required=True)
    parser.add_argument('--val', required=True)
    parser.add_argument('--test', required=True)
    parser.add_argument('--out', default=REFERENCE)
    parser.add_argument('--seed', type=int, default=7134)
    parser.add_argument('--epochs', type=int, default=14)
    parser.add_argument('--patience', type=int, default=4)
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--lr', type=float, default=2e-3)
    parser.add_argument('--width', type=int, default=16)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--max-minutes', type=float, default=10.0, help='stop starting epochs after this long')
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)

    with open(os.path.join(args.out, 'manifest.json')) as f:
        manifest = json.load(f)
    train, val, test = load_set(args.train), load_set(args.val), load_set(args.test)
    features = train['features']
    by_feature = {o['feature']: o for o in manifest['outputs']}
    assert [by_feature[c]['grades'] for c in features] == train['gradeCounts'], 'the manifest and the data set disagree on grades'
    assert list(train['images'].shape[1:]) == manifest['input']['shape'][1:], 'the data set was made for another input shape'

    model = FacetNet(train['gradeCounts'], args.width)
    print('%d parameters; %d training, %d validation, %d test joints' % (sum(p.numel() for p in model.parameters()), len(train['images']), len(val['images']), len(test['images'])))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps = args.epochs * ((len(train['images']) + args.batch - 1) // args.batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=steps, pct_start=0.15)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(args.seed)

    started = time.time()
    best = {'score': -1.0, 'epoch': 0, 'state': None}
    history = []
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(train['images']), generator=generator)
        total = 0.0
        for start in range(0, len(order), args.batch):
            idx = order[start:start + args.batch]
            x = train['images'][idx]
            # Mirror images: a left joint is a mirrored right one.
            flip = torch.rand(len(idx), generator=generator) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            y = train['grades'][idx]
            outputs = model(x)
            loss = sum(loss_fn(o, y[:, f]) for f, o in enumerate(outputs))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss) * len(idx)
        val_metrics = metrics(predict(model, val['images']), val['grades'], features)
        score = float(np.mean([m['aucOneVsRestMacro'] for m in val_metrics.values()]))
        elapsed = time.time() - started
        history.append({'epoch': epoch, 'trainLoss': round(total / len(order), 4), 'valMeanAuc': round(score, 4), 'seconds': round(elapsed, 1)})
        print(f'epoch {epoch}: loss {total / len(order):.4f}, validation mean AUC {score:.4f} '
              f'({summary(val_metrics)}), {elapsed:.0f} s', flush=True)
        if score > best['score']:
            best = {'score': score, 'epoch': epoch, 'state': {k: v.clone() for k, v in model.state_dict().items()}}
        elif epoch - best['epoch'] >= args.patience:
            break
        if elapsed * (epoch + 1) / epoch > args.max_minutes * 60:  # the next epoch would end past the budget
            break
    training_seconds = time.time() - started
    model.load_state_dict(best['state'])
    model.eval()

    probs = predict(model, test['images'])
    evaluation = {
        'model': {'name': manifest['name'], 'version': manifest['version']},
        'metrics': {
            'aucGradeAtLeast1': 'AUC of grade >= 1 vs grade 0, scored by 1 - P(grade 0) (Mann-Whitney, ties one half)',
            'aucOneVsRestMacro': 'mean over grades of the one-vs-rest AUC of P(grade); equals aucGradeAtLeast1 for two-grade features',
            'accuracy': 'share of joints whose most probable grade is the true grade',
            'majorityClassAccuracy': 'accuracy of always answering the most frequent grade (chance level)',
        },
        'data': {
            'generator': 'model-registry/train/make-dataset.ts (server/demo/phantoms.ts), through readPart10, decodeFrame and preprocess',
            'train': train['meta'], 'validation': val['meta'], 'test': test['meta'],
        },
        'training': {
            'seed': args.seed, 'epochsRun': len(history), 'bestEpoch': best['epoch'], 'seconds': round(training_seconds),
            'threads': args.threads, 'torch': torch.__version__, 'parameters': sum(p.numel() for p in model.parameters()),
            'history': history,
        },
        'test': {'pooled': metrics(probs, test['grades'], features)},
    }
    for modality in sorted(set(test['modality'])):
        evaluation['test'][modality] = metrics(probs, test['grades'], features, test['modality'] == modality)

    names = [by_feature[c]['name'] for c in features]
    onnx_path = os.path.join(args.out, 'model.onnx')
    torch.onnx.export(
        model, torch.zeros([1] + manifest['input']['shape'][1:]), onnx_path,
        input_names=[manifest['input']['name']], output_names=names,
        dynamic_axes={manifest['input']['name']: {0: 'batch'}, **{n: {0: 'batch'} for n in names}},
        opset_version=13, do_constant_folding=True,
    )
    with open(os.path.join(args.out, 'evaluation.json'), 'w') as f:
        json.dump(evaluation, f, indent=2)
        f.write('\n')
    print('best epoch %d, %.0f s; %d bytes in %s' % (best['epoch'], training_seconds, os.path.getsize(onnx_path), onnx_path))
    for scope in ['pooled'] + sorted(set(test['modality'])):
        print(scope, {c: m['aucGradeAtLeast1'] for c, m in evaluation['test'][scope].items()})


if __name__ == '__main__':
    main()
