"""Smoke run (``--quick``) of benchmarks/rmd17.py on the synthetic files it
writes, its labels and JSON fields, and its refusal to run without data."""
import json

import numpy as np
import pytest

from tests.test_benchmarks import _script as _bench_script
from tests.test_benchmarks import wrote_paths


def _script():
    return _bench_script('rmd17')


@pytest.fixture
def private_tmp(private_tmp, monkeypatch):
    """The shared ``private_tmp`` (tests/conftest.py), with the dataset
    cache inside it too."""
    monkeypatch.setenv('XDG_CACHE_HOME', str(private_tmp / 'xdg'))
    return private_tmp


def test_rmd17_quick(private_tmp, capsys):
    script = _script()
    assert script.main(['--quick']) == 0
    out = capsys.readouterr().out
    paths = wrote_paths(out)
    assert all(p.startswith(str(private_tmp)) for p in paths)  # not results/
    with open(paths[0]) as f:
        payload = json.load(f)
    assert payload['quick'] and payload['seeds'] == [1, 2]
    assert [r['row'] for r in payload['rows']] == ['GNN + REMUL', 'EGNN']
    for r in payload['rows']:
        for key in script.COLUMNS:
            ci = r[f'{key}_ci']
            assert ci['n'] == 2 and ci['low'] <= ci['estimate'] <= ci['high']
        assert [run['mse'] > 0 for run in r['runs']] == [True, True]
    # the validation search of fold 1, alike for the backbone and EGNN
    choice = payload['selection_search']['quick']
    assert choice['backbone'] == 'gnn' and choice['fold'] == 1
    assert sorted(choice['searches']) == ['EGNN', 'GNN plain']
    for name, record in choice['searches'].items():
        assert [r['lr'] for r in record['runs']][:3] == \
            list(script.LR_GRID)
        assert record['seed'] == 1
    rates = {r['row']: r['config']['lr'] for r in payload['rows']}
    assert rates == {'GNN + REMUL': choice['lr']['gnn'],
                     'EGNN': choice['lr']['egnn']}
    assert "EGNN's learning rate: each rate trained on seed 1" in out
    egnn = payload['rows'][-1]
    assert egnn['E_prime'] < 1e-4 and egnn['energy_E_prime'] < 1e-4
    assert {c['key'] for c in payload['comparisons']} == set(script.COLUMNS)
    # every file read, with its SHA-256
    files = payload['data']['files']
    assert sorted(files) == sorted(
        f'rmd17_quick_{part}_{k:02d}.npz' for part in ('train', 'test')
        for k in (1, 2))
    assert all(len(v) == 64 for v in files.values())
    # identified by their digests, not by where this machine keeps them
    assert 'data_root' not in payload['common']
    assert script.QUICK_LABEL in out and 'not shown' in out
    with open(paths[1]) as f:
        assert f.read() == script.markdown(payload)


def test_quick_files_hold_consistent_forces(tmp_path):
    script = _script()
    script.write_quick_files(str(tmp_path), folds=(1, ), frames=3)
    f = np.load(tmp_path / 'rmd17_quick_train_01.npz')
    _, _, d0 = script.quick_molecule()
    energy, force = script.spring_energy_forces(f['coords'], d0)
    np.testing.assert_array_equal(f['energies'], energy)
    np.testing.assert_array_equal(f['forces'], force)
    assert energy.min() > 0
    # F = -dE/dx (central differences) and internal forces sum to 0
    eps = 1e-6
    for atom, axis in ((0, 0), (2, 1), (4, 2)):
        step = np.zeros_like(f['coords'])
        step[:, atom, axis] = eps
        e_plus, _ = script.spring_energy_forces(f['coords'] + step, d0)
        e_minus, _ = script.spring_energy_forces(f['coords'] - step, d0)
        np.testing.assert_allclose(-(e_plus - e_minus) / (2 * eps),
                                   force[:, atom, axis], atol=1e-6)
    assert np.abs(force.sum(1)).max() < 1e-9


def test_rmd17_needs_data_root(capsys):
    with pytest.raises(SystemExit):
        _script().main([])
    assert '--data-root is required' in capsys.readouterr().err


def test_rmd17_missing_files(tmp_path, capsys):
    assert _script().main(['--data-root', str(tmp_path), '--molecules',
                           'aspirin']) == 1
    assert "No rMD17 files for molecule 'aspirin'" in \
        capsys.readouterr().err


def test_published_lines_only_for_tabulated_molecules():
    script = _script()
    ref = script.PUBLISHED
    lines = script.published_lines({'published_reference': ref,
                                    'molecules': ['ethanol', 'uracil']})
    text = '\n'.join(lines)
    assert 'Published (not run here): MACE' in text
    assert 'not confirmed against the paper' in text
    rows = [line for line in lines if line.startswith('| ethanol')]
    # meV and kcal/mol (1 kcal/mol = 43.364 meV)
    assert rows == ['| ethanol | 0.4 (0.009) | 2.1 (0.048) |']
    assert not any(line.startswith('| uracil') for line in lines)
    # nothing for molecules it has no figure for, or without a reference
    assert script.published_lines({'published_reference': ref,
                                   'molecules': ['uracil']}) == []
    assert script.published_lines({'published_reference': None,
                                   'molecules': ['ethanol']}) == []
