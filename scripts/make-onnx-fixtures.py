#!/usr/bin/python3
"""Writes the tiny ONNX test models of test/fixtures/onnx/ (committed; CI needs no Python).

Needs Debian's python3-onnx and python3-numpy:  /usr/bin/python3 scripts/make-onnx-fixtures.py

tiny-multitask.onnx: input "image" [N, 1, 16, 16] float32, flattened, one linear head per Weishaupt feature
(logits): jsn [N,2], osteophytes [N,4], hypertrophy [N,4], erosion [N,3], cysts [N,2]. Weights are seeded.
tiny-multitask.manifest.json describes it. wrong-heads.onnx has only two heads (a manifest mismatch).
"""
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'onnx')
HEADS = [('jsn', 'JOINT_SPACE_NARROWING', 2), ('osteophytes', 'OSTEOPHYTES', 4), ('hypertrophy', 'HYPERTROPHY', 4), ('erosion', 'EROSION', 3), ('cysts', 'SUBCHONDRAL_CYSTS', 2)]
SIZE = 16


def model(heads, seed=7):
    rng = np.random.default_rng(seed)
    nodes = [helper.make_node('Flatten', ['image'], ['flat'], axis=1)]
    inits = []
    outputs = []
    for name, _, k in heads:
        w = numpy_helper.from_array((rng.standard_normal((SIZE * SIZE, k)) * 0.05).astype(np.float32), f'{name}_w')
        b = numpy_helper.from_array((rng.standard_normal(k) * 0.1).astype(np.float32), f'{name}_b')
        inits += [w, b]
        nodes += [helper.make_node('MatMul', ['flat', f'{name}_w'], [f'{name}_mm']), helper.make_node('Add', [f'{name}_mm', f'{name}_b'], [name])]
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ['N', k]))
    graph = helper.make_graph(nodes, 'facet-tiny', [helper.make_tensor_value_info('image', TensorProto.FLOAT, ['N', 1, SIZE, SIZE])], outputs, inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)], producer_name='facet-fixtures')
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def main():
    os.makedirs(OUT, exist_ok=True)
    onnx.save(model(HEADS), os.path.join(OUT, 'tiny-multitask.onnx'))
    onnx.save(model(HEADS[:2], seed=8), os.path.join(OUT, 'wrong-heads.onnx'))
    manifest = {
        'name': 'tiny-multitask',
        'version': '0.1.0',
        'input': {'name': 'image', 'shape': [None, 1, SIZE, SIZE]},
        'activation': 'logits',
        'preprocessing': {m: {'window': None, 'resize': [SIZE, SIZE], 'normalize': {'mean': 0.5, 'std': 0.25}} for m in ['XR', 'CT', 'MR']},
        'outputs': [{'name': n, 'feature': f, 'grades': k} for n, f, k in HEADS],
    }
    with open(os.path.join(OUT, 'tiny-multitask.manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=2)
        f.write('\n')
    for name in sorted(os.listdir(OUT)):
        print(f'{os.path.getsize(os.path.join(OUT, name)):>8}  {name}')


if __name__ == '__main__':
    main()
