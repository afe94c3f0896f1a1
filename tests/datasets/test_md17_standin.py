import os
import warnings

import numpy as np
import pytest

from torch_geometric_remul.datasets import (
    MD17Trajectories,
    generate_md17_standin,
    simulate_md17_standin,
)

pytest.importorskip('rdkit')

from torch_geometric_remul.datasets.md17_standin import (  # noqa: E402
    ACCEL_UNIT,
    KB_KCAL,
    STANDIN_SMILES,
)

MASS = {1: 1.008, 6: 12.011, 7: 14.007, 8: 15.999}
FORMULAS = {'ethanol': {6: 2, 1: 6, 8: 1}, 'uracil': {6: 4, 1: 4, 7: 2,
                                                       8: 2}}


@pytest.fixture(scope='module')
def ethanol():
    return simulate_md17_standin('ethanol', num_frames=300,
                                 equilibration_steps=100, seed=1)


def test_layout_and_label(ethanol):
    out = ethanol
    assert out['z'].dtype == np.int64 and out['z'].shape == (9,)
    z, counts = np.unique(out['z'], return_counts=True)
    assert dict(zip(z.tolist(), counts.tolist())) == FORMULAS['ethanol']
    assert out['R'].shape == out['F'].shape == (300, 9, 3)
    assert out['E'].shape == (300, 1)
    assert bool(out['standin'])
    assert 'stand-in' in str(out['name']).lower()
    assert 'STAND-IN' in str(out['theory']) and 'MMFF94' in str(
        out['theory'])
    assert np.isfinite(out['R']).all()


def test_forces_are_fresh_gradients(ethanol):
    # dE along the path must match the work of the stored forces (trapezoid
    # rule); forces lagging by one step (a stale CalcGrad) fail this badly.
    R, E, F = ethanol['R'], ethanol['E'][:, 0], ethanol['F']
    dR = np.diff(R, axis=0)
    dE = np.diff(E)
    work = -(0.5 * (F[1:] + F[:-1]) * dR).sum((1, 2))
    assert np.abs(dE - work).mean() < 0.02 * np.abs(dE).mean()
    lagged = -(0.5 * (F[:-2] + F[1:-1]) * dR[1:]).sum((1, 2))
    assert np.abs(dE[1:] - lagged).mean() > 0.2 * np.abs(dE[1:]).mean()


def test_bonds_stay_intact(ethanol):
    R = ethanol['R']
    d = np.linalg.norm(R[:, :, None] - R[:, None], axis=-1)
    d0 = d[0]
    bonded = (d0 < 1.6) & (d0 > 0)
    assert np.abs(d[:, bonded] - d0[bonded]).max() < 0.5


@pytest.mark.parametrize('rigid', [True, False])
def test_temperature(rigid):
    # friction 0.01/fs (100 fs relaxation) so that 1.5 ps average out the
    # slow exchange with the bath.
    # Without rigid motion the kinetic energy sits in 3N - 6 degrees of
    # freedom. Averaged over three seeds (single runs scatter by ~40 K).
    temperatures = []
    for seed in range(3):
        out = simulate_md17_standin('uracil', num_frames=3000,
                                    equilibration_steps=500, seed=seed,
                                    friction_per_fs=0.01,
                                    remove_rigid_motion=not rigid)
        mass = np.array([MASS[int(a)] for a in out['z']])[:, None]
        v = (out['R'][2:] - out['R'][:-2]) / (2 * 0.5)  # Å/fs
        kinetic = 0.5 * (mass * v ** 2).sum((1, 2)) / ACCEL_UNIT  # kcal/mol
        dof = 3 * mass.size - (0 if rigid else 6)
        temperatures.append(2 * kinetic.mean() / (dof * KB_KCAL))
    assert 440 < np.mean(temperatures) < 580  # target 500 K


def test_rigid_motion_removed():
    kw = dict(num_frames=2000, equilibration_steps=200, seed=2)
    fixed = simulate_md17_standin('aspirin', **kw)
    free = simulate_md17_standin('aspirin', remove_rigid_motion=False, **kw)
    assert bool(fixed['remove_rigid_motion'])
    assert not bool(free['remove_rigid_motion'])
    mass = np.array([MASS[int(a)] for a in fixed['z']])[:, None]

    def com(R):
        return (mass * R).sum(1) / mass.sum()

    # the centre of mass stays put (to rounding) instead of drifting
    drift = np.linalg.norm(com(fixed['R']) - com(fixed['R'][:1]), axis=1)
    free_drift = np.linalg.norm(com(free['R']) - com(free['R'][:1]),
                                axis=1)
    assert drift.max() < 1e-6
    assert free_drift.max() > 0.1
    # no net angular momentum about the centre of mass
    R = fixed['R']
    v = (R[2:] - R[:-2]) / (2 * 0.5)
    r = R[1:-1] - com(R[1:-1])[:, None]
    L = (mass * np.cross(r, v)).sum(1)
    r_free = free['R'][1:-1] - com(free['R'][1:-1])[:, None]
    v_free = (free['R'][2:] - free['R'][:-2]) / (2 * 0.5)
    L_free = (mass * np.cross(r_free, v_free)).sum(1)
    assert np.abs(L).mean() < 0.05 * np.abs(L_free).mean()


def test_determinism():
    a = simulate_md17_standin('ethanol', num_frames=20,
                              equilibration_steps=5, seed=3)
    b = simulate_md17_standin('ethanol', num_frames=20,
                              equilibration_steps=5, seed=3)
    c = simulate_md17_standin('ethanol', num_frames=20,
                              equilibration_steps=5, seed=4)
    np.testing.assert_array_equal(a['R'], b['R'])
    assert not np.allclose(a['R'], c['R'])


def test_all_molecules_build():
    for molecule, formula in FORMULAS.items():
        out = simulate_md17_standin(molecule, num_frames=2,
                                    equilibration_steps=0)
        z, counts = np.unique(out['z'], return_counts=True)
        assert dict(zip(z.tolist(), counts.tolist())) == formula
    assert len(STANDIN_SMILES) == 8


def test_generate_and_load_labelled(tmp_path):
    root = str(tmp_path)
    path = generate_md17_standin('ethanol', root=root, num_frames=60,
                                 equilibration_steps=20)
    assert path == os.path.join(root, 'ethanol', 'raw',
                                'md17_ethanol_standin.npz')
    with np.load(path) as f:
        assert {'z', 'R', 'E', 'F', 'standin'} <= set(f.files)
    # the stand-in is never picked up as real MD17 data
    with pytest.raises(FileNotFoundError):
        MD17Trajectories(root, 'ethanol')
    kw = dict(delta_frame=5, margin=0, num_train=4, num_val=4, num_test=4)
    with pytest.warns(UserWarning, match='stand-in'):
        ds = MD17Trajectories(root, 'ethanol', source='standin', **kw)
    assert ds.is_standin and 'stand-in' in repr(ds)
    assert 'standin' in os.path.basename(ds.processed_paths[0])
    assert ds[0].pos.shape == (3, 3)
    with pytest.warns(UserWarning, match='stand-in'):
        explicit = MD17Trajectories(root, 'ethanol', path=path, **kw)
    assert explicit.is_standin
    # an existing file is kept unless overwrite=True
    mtime = os.stat(path).st_mtime_ns
    generate_md17_standin('ethanol', root=root, num_frames=60)
    assert os.stat(path).st_mtime_ns == mtime


def test_errors(tmp_path):
    with pytest.raises(ValueError, match='unknown MD17 molecule'):
        simulate_md17_standin('caffeine', num_frames=2)
    with pytest.raises(ValueError, match="'root'.*'path'"):
        generate_md17_standin('ethanol')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        with pytest.raises(ValueError, match='num_frames'):
            simulate_md17_standin('ethanol', num_frames=0)
