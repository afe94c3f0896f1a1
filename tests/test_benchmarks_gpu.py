"""Smoke run of ``benchmarks/gpu.py --quick``: the one-shot GPU benchmark runs
the same code paths on the CPU, the way the GPU machine starts it (from the
repository root with ``PYTHONPATH=.``), and writes a JSON of the expected
structure."""
import json
import math
import os
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SCRIPT = osp.join(ROOT, 'benchmarks', 'gpu.py')


def _positive(value):
    return isinstance(value, float) and math.isfinite(value) and value > 0


def test_gpu_benchmark_quick(tmp_path):
    out = tmp_path / 'out'
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, SCRIPT, '--quick', '--out', str(out)], cwd=ROOT,
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert set(os.listdir(out)) == {'gpu.json', 'gpu.md'}
    with open(out / 'gpu.json') as f:
        result = json.load(f)
    assert result['errors'] == []
    assert 'Per-graph transform' in proc.stdout
    assert (out / 'gpu.md').read_text() in proc.stdout

    env_info = result['environment']
    for key in ('date', 'device', 'device_name', 'torch', 'triton',
                'torch_geometric', 'e3nn', 'commit', 'modified'):
        assert key in env_info
    assert env_info['device'] == 'cpu' and result['config']['quick']
    assert result['compiled'] == []  # section 4: on CUDA (or --compile on)

    # 1. transform: every candidate on both workloads, clone as the floor
    rows = result['transform']
    assert len({r['workload'] for r in rows}) == 2
    for workload in {r['workload'] for r in rows}:
        names = {r['candidate']: r for r in rows
                 if r['workload'] == workload}
        assert set(names) == {'clone', 'apply', 'apply (batch=)',
                              'apply native', 'RandomRigidTransform',
                              'RandomRigidTransform native'}
        assert names['clone']['x_clone'] == 1.0
        for name in ('apply', 'apply (batch=)'):
            assert names[name]['max_abs_diff_vs_native'] <= 1e-5
        assert names['apply']['bytes'] > names['clone']['bytes']
    assert sum(r['nodes'] for r in rows if r['candidate'] == 'clone') == \
        result['config']['transform_graphs'] * \
        result['config']['transform_nodes'] + result['config']['mixed_nodes']
    for r in rows:
        assert _positive(r['ms']) and _positive(r['gb_per_s'])
        assert r['repeats'] >= 1

    # 2. models: both workloads at both batch sizes, every model
    models = result['models']
    labels = {'GNN', 'Transformer', 'Transformer (paper)', 'EGNN', 'SEGNN'}
    for workload in ('N-body', 'MD17'):
        for graphs in result['config']['graphs']:
            got = {r['model']: r for r in models
                   if r['workload'] == workload and r['graphs'] == graphs}
            assert set(got) == labels
    for r in models:
        assert _positive(r['infer_ms']) and _positive(r['plain_ms'])
        assert _positive(r['infer_vs_SEGNN']) and _positive(r['train_ms'])
        if r['model'] == 'SEGNN':
            assert r['remul_ms'] is None and r['infer_vs_SEGNN'] == 1.0
        else:
            assert _positive(r['remul_ms']) and _positive(r['fused_ms'])
            assert math.isclose(r['remul_over_plain'],
                                r['remul_ms'] / r['plain_ms'])

    # 3. syncs: integer counts for every model and loss, and the transforms
    syncs = result['syncs']
    counted = {(r['workload'], r['what'], r['kind']) for r in syncs}
    for workload in ('N-body', 'MD17'):
        for model in ('GNN', 'Transformer', 'EGNN', 'SEGNN'):
            for kind in ('plain', 'remul', 'fused'):
                assert (workload, model, kind) in counted
    assert ('N-body', 'RandomRigidTransform', 'transform') in counted
    for r in syncs:
        assert isinstance(r['count'], int) and r['count'] >= 0
        assert sum(r['ops'].values()) == r['count']
        assert r['device'] == 'cpu'
    assert result['goals'] and _positive(result['total_seconds'])


def test_compile_section_goals_and_table():
    """Section 4's goals: with CUDA graphs the fused step within 1.3x of
    the plain one at 100 graphs and 2x at 1,000; each compiled row keeps its
    compile time apart from its median."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('gpu_bench', SCRIPT)
    gpu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu)
    rows = []
    for graphs, ratio in ((100, 1.25), (1000, 2.5)):
        for kind, ms in (('plain', 2.0), ('fused', 2.0 * ratio)):
            rows.append(dict(workload='N-body', graphs=graphs, nodes=5,
                             model='GNN', kind=kind, how='reduce-overhead',
                             ms=ms, repeats=3, compile_s=12.0))
        rows[-1]['fused_over_plain'] = ratio
    assert gpu.compile_goals(rows) == [
        'N-body x 100, GNN with CUDA graphs: fused REMUL 1.25x plain '
        '(meets <= 1.3x)',
        'N-body x 1000, GNN with CUDA graphs: fused REMUL 2.50x plain '
        '(misses <= 2x)']
    table = '\n'.join(gpu.compile_table(rows))
    assert '| 1000 x 5 | REMUL fused | reduce-overhead | 5.000 ms | 2.50 | ' \
        '12.0 s |' in table
