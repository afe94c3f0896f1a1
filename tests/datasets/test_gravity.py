import os

import numpy as np
import pytest
import torch

import torch_geometric_remul.datasets.gravity as gravity_mod
from tests.datasets._helpers import check_nbody_graph
from torch_geometric_remul.datasets import Gravity, simulate_gravity

# Simulator ##################################################################

@pytest.fixture(scope='module')
def sim():
    return simulate_gravity(600, seed=0)


def test_shapes_masses_and_star(sim):
    S = 600
    assert sim.mass.shape == (S, 4)
    assert sim.pos.shape == sim.vel.shape == sim.pos_final.shape == (S, 4, 3)
    assert sim.trajectory is None
    star, planets = sim.mass[:, 0], sim.mass[:, 1:]
    assert ((star >= 1.0) & (star <= 10.0)).all()
    assert ((planets >= 0.01) & (planets <= 0.1)).all()
    assert (star[:, None] > planets).all()  # the star is always heavier
    # log-uniform: the median of the star mass is sqrt(1 * 10)
    assert 2.6 < np.median(star) < 3.8
    assert 0.026 < np.median(planets) < 0.038
    # star at rest at the origin, planets in the x-y plane
    assert (sim.pos[:, 0] == 0).all() and (sim.vel[:, 0] == 0).all()
    assert (sim.pos[:, 1:, 2] == 0).all()


def test_orbit_statistics(sim):
    r_vec = sim.pos[:, 1:] - sim.pos[:, :1]
    r = np.linalg.norm(r_vec, axis=-1)
    assert r.min() >= 0.1 and r.max() <= 1.0
    # uniform by area in the annulus: P(r < 0.55) = (0.55^2-0.01)/(1-0.01)
    assert abs((r < 0.55).mean() - (0.55 ** 2 - 0.01) / 0.99) < 0.04
    v = sim.vel[:, 1:]
    radial = (v * r_vec).sum(-1) / r
    # only the noise (sigma 0.01) has a radial or vertical component
    assert abs(radial.std() - 0.01) < 0.002
    assert abs(v[..., 2].std() - 0.01) < 0.002
    circular = np.sqrt(sim.mass[:, :1] / r)
    tangential = np.linalg.norm(v[..., :2], axis=-1)
    assert np.abs(tangential - circular).max() < 0.06
    # both senses of rotation occur
    lz = np.cross(r_vec, v)[..., 2]
    assert 0.4 < (lz > 0).mean() < 0.6
    # nearly circular orbits: the distance to the star barely changes
    r_final = np.linalg.norm(sim.pos_final[:, 1:] - sim.pos_final[:, :1],
                             axis=-1)
    assert np.median(np.abs(r_final / r - 1)) < 0.01
    moved = np.linalg.norm(sim.pos_final - sim.pos, axis=-1)
    assert moved.max() <= 2.0  # outlier threshold
    assert moved[:, 1:].mean() > 10 * moved[:, 0].mean()  # star ~ fixed


def test_matches_naive_euler_integration():
    s = simulate_gravity(3, num_steps=100, seed=4)
    m, x, v = s.mass, s.pos.copy(), s.vel.copy()
    dt = 0.1 / 100
    for _ in range(100):
        a = np.zeros_like(x)
        for b in range(3):
            for i in range(4):
                for j in range(4):
                    if i != j:
                        d = x[b, j] - x[b, i]
                        a[b, i] += m[b, j] * d / np.linalg.norm(d) ** 3
        v = v + dt * a
        x = x + dt * v
    np.testing.assert_allclose(s.pos_final, x, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(s.vel_final, v, rtol=1e-10, atol=1e-12)


def test_trajectory_and_determinism():
    a = simulate_gravity(5, return_trajectory=True, seed=1)
    b = simulate_gravity(5, return_trajectory=True, seed=1)
    c = simulate_gravity(5, seed=2)
    assert a.trajectory.shape == (5, 101, 4, 3)
    np.testing.assert_array_equal(a.trajectory[:, 0], a.pos)
    np.testing.assert_array_equal(a.trajectory[:, -1], a.pos_final)
    np.testing.assert_array_equal(a.pos_final, b.pos_final)
    assert not np.allclose(a.pos, c.pos)


def test_outlier_rejection_keeps_count():
    s = simulate_gravity(50, outlier_threshold=0.3, seed=0)
    moved = np.linalg.norm(s.pos_final - s.pos, axis=-1).max(-1)
    assert s.mass.shape[0] == 50 and (moved <= 0.3).all()


def test_shift_translates_whole_system():
    s = simulate_gravity(200, shift_std=5.0, seed=0)
    assert abs(s.pos[:, 0].std() - 5.0) < 0.5
    rel = s.pos[:, 1:] - s.pos[:, :1]
    assert np.abs(rel[..., 2]).max() < 1e-9


def test_simulator_errors():
    with pytest.raises(ValueError, match='star_mass_range'):
        simulate_gravity(2, star_mass_range=(0.0, 1.0))
    with pytest.raises(ValueError, match='num_planets'):
        simulate_gravity(2, num_planets=0)


# Dataset ####################################################################

SMALL = dict(num_train=8, num_val=4, num_test=6)


def test_dataset_attributes(tmp_path):
    ds = Gravity(str(tmp_path), split='train', seed=0, **SMALL)
    assert len(ds) == 8
    d = ds[0]
    check_nbody_graph(d, 4, 'mass')
    m = ds._data.mass.view(-1, 4)
    assert (m[:, :1] > m[:, 1:]).all()  # node 0 is the star


def test_ood_split_is_rotated_test_split(tmp_path):
    root = str(tmp_path)
    test = Gravity(root, split='test', seed=3, **SMALL)
    ood = Gravity(root, split='ood', seed=3, **SMALL)
    assert len(ood) == len(test) == 6
    rotations = []
    for a, b in zip(test, ood):
        torch.testing.assert_close(a.mass, b.mass)
        X = torch.cat([a.pos, a.vel, a.y]).double()
        Y = torch.cat([b.pos, b.vel, b.y]).double()
        # least-squares R with Y = X R^T; it must be a proper rotation
        Rt = torch.linalg.lstsq(X, Y).solution
        R = Rt.t()
        torch.testing.assert_close(R @ R.t(), torch.eye(3, dtype=R.dtype),
                                   atol=1e-4, rtol=0)
        assert torch.linalg.det(R) == pytest.approx(1.0, abs=1e-4)
        torch.testing.assert_close(X @ Rt, Y, atol=1e-4, rtol=0)
        rotations.append(R)
    # every graph gets its own rotation, out of the x-y plane
    assert not torch.allclose(rotations[0], rotations[1], atol=1e-2)
    assert ood._data.pos[:, 2].abs().max() > 0.05
    assert test._data.pos[:, 2].abs().max() == 0


def test_ood_rotations_are_haar_like(tmp_path):
    ood = Gravity(str(tmp_path), split='ood', seed=0, num_test=300)
    test = Gravity(str(tmp_path), split='test', seed=0, num_test=300)
    # a planet's angular momentum about the star (nearly +-z in
    # distribution) is sent to R L; for Haar R its direction is uniform on
    # the sphere, so |cos| with the z-axis is uniform on [0, 1]
    def planet_l(ds):
        pos = ds._data.pos.view(-1, 4, 3).double()
        vel = ds._data.vel.view(-1, 4, 3).double()
        L = torch.linalg.cross(pos[:, 1] - pos[:, 0], vel[:, 1])
        return (L[:, 2] / L.norm(dim=1)).abs()

    assert (planet_l(test) > 0.9).all()
    cos = planet_l(ood)
    assert abs(cos.mean().item() - 0.5) < 0.06
    assert abs((cos < 0.5).double().mean().item() - 0.5) < 0.1


def test_ood_shift(tmp_path):
    ood = Gravity(str(tmp_path), split='ood', seed=0, ood_shift=200.0,
                  **SMALL)
    star = ood._data.pos.view(-1, 4, 3)[:, 0]
    torch.testing.assert_close(star, torch.tensor([[200.0, 0.0, 0.0]]
                                                  ).expand_as(star))


def test_cache_reused_and_regenerated(tmp_path, monkeypatch):
    root = str(tmp_path)
    ds = Gravity(root, split='val', seed=0, **SMALL)

    def boom(*args, **kwargs):
        raise AssertionError('simulated again although cached')

    monkeypatch.setattr(gravity_mod, '_simulate', boom)
    again = Gravity(root, split='val', seed=0, **SMALL)
    torch.testing.assert_close(again._data.y, ds._data.y)
    for change in ({'num_val': 5}, {'seed': 1}, {'vel_std': 0.02},
                   {'planet_mass_range': (0.01, 0.2)}, {'num_steps': 50}):
        with pytest.raises(AssertionError, match='simulated again'):
            Gravity(root, split='val', **{'seed': 0, **SMALL, **change})
    monkeypatch.undo()
    assert len(os.listdir(os.path.join(root, 'processed'))) >= 1


def test_dataset_errors(tmp_path):
    with pytest.raises(ValueError, match='split'):
        Gravity(str(tmp_path), split='OOD')
    with pytest.raises(ValueError, match='num_test'):
        Gravity(str(tmp_path), split='ood', num_test=0)


# GATr protocol options: rotate, permute ######################################

#: The processed file names of the default dataset, as written before the
#: rotate and permute options existed (cached files keep their names).
DEFAULT_NAMES = {
    'train': 'gravity_train_n8_seed0_p3_steps100_time0.1_star1.0-10.0_'
             'planet0.01-0.1_radius0.1-1.0_vstd0.01_shift0.0_outlier2.0_'
             'v1.pt',
    'ood': 'gravity_ood_n6_seed0_p3_steps100_time0.1_star1.0-10.0_'
           'planet0.01-0.1_radius0.1-1.0_vstd0.01_shift0.0_outlier2.0_'
           'oodshift0.0_v1.pt',
}


def _fit_rotation(X, Y):
    """The least-squares ``R`` (float64) with ``Y = X R^T``, checked to be
    a proper rotation that maps ``X`` onto ``Y``."""
    X, Y = X.double(), Y.double()
    R = torch.linalg.lstsq(X, Y).solution.t()
    eye = torch.eye(3, dtype=torch.float64)
    torch.testing.assert_close(R @ R.t(), eye, atol=1e-5, rtol=0)
    assert torch.linalg.det(R).item() == pytest.approx(1.0, abs=1e-5)
    torch.testing.assert_close(X @ R.t(), Y, atol=2e-6 * (1 + X.abs().max()),
                               rtol=0)
    return R


def test_default_cache_names_unchanged(tmp_path):
    root = str(tmp_path)
    for split, name in DEFAULT_NAMES.items():
        ds = Gravity(root, split=split, seed=0, **SMALL)
        assert ds.processed_file_names == [name]
        explicit = Gravity(root, split=split, seed=0, rotate=False,
                           permute=False, **SMALL)
        assert explicit.processed_file_names == [name]
        torch.testing.assert_close(explicit._data.pos, ds._data.pos,
                                   atol=0, rtol=0)
    assert sorted(n for n in os.listdir(os.path.join(root, 'processed'))
                  if n.startswith('gravity')) == sorted(DEFAULT_NAMES.values())
    names = {Gravity(root, split='train', seed=0, **SMALL, **kw)
             .processed_file_names[0] for kw in
             ({}, {'rotate': True}, {'permute': True},
              {'rotate': True, 'permute': True})}
    assert len(names) == 4
    assert '_rotT_permT_v1.pt' in ''.join(names)


def test_rotate_is_an_exact_rotation_of_the_canonical_systems(tmp_path):
    root = str(tmp_path)
    canon = Gravity(root, split='test', seed=2, **SMALL)
    rot = Gravity(root, split='test', seed=2, rotate=True, **SMALL)
    assert len(rot) == len(canon) == 6
    rotations = []
    for a, b in zip(canon, rot):
        # masses (and so edge attributes) unchanged, bit for bit
        assert torch.equal(a.mass, b.mass)
        assert torch.equal(a.edge_attr, b.edge_attr)
        check_nbody_graph(b, 4, 'mass')
        # one rotation per system maps positions, velocities and targets
        X = torch.cat([a.pos, a.vel, a.y])
        Y = torch.cat([b.pos, b.vel, b.y])
        rotations.append(_fit_rotation(X, Y))
        # the star stays at the origin: a rotation about the origin
        assert b.pos[0].abs().max() == 0
    assert not torch.allclose(rotations[0], rotations[1], atol=1e-2)
    assert rot._data.pos[:, 2].abs().max() > 0.05  # out of the x-y plane


def _orders(base, perm):
    """Per graph: ``index`` with ``perm.x == base.x[index]`` (found from
    the masses, which are distinct)."""
    out = []
    for a, b in zip(base, perm):
        match = (b.mass.view(-1, 1) == a.mass.view(1, -1))
        assert (match.sum(1) == 1).all()
        index = match.float().argmax(1)
        assert sorted(index.tolist()) == list(range(a.num_nodes))
        out.append(index)
    return out


@pytest.mark.parametrize('rotate', [False, True])
def test_permute_is_an_exact_permutation(tmp_path, rotate):
    root = str(tmp_path)
    base = Gravity(root, split='train', seed=1, rotate=rotate, **SMALL)
    perm = Gravity(root, split='train', seed=1, rotate=rotate, permute=True,
                   **SMALL)
    orders = _orders(base, perm)
    for a, b, index in zip(base, perm, orders):
        for key in ('pos', 'vel', 'y', 'mass'):
            assert torch.equal(b[key], a[key][index]), key
        assert torch.equal(b.edge_index, a.edge_index)  # complete graph
        check_nbody_graph(b, 4, 'mass')  # edge_attr = m_i m_j, permuted
    stars = [int(index.argmin()) for index in orders]  # node of body 0
    assert any(s != 0 for s in stars)
    assert all(int(b.mass.argmax()) == s for b, s in zip(perm, stars))


def test_rotate_and_permute_are_reproducible(tmp_path):
    kw = dict(split='val', seed=4, rotate=True, permute=True, shift_std=20.0,
              **SMALL)
    a = Gravity(str(tmp_path / 'a'), **kw)
    b = Gravity(str(tmp_path / 'b'), **kw)
    c = Gravity(str(tmp_path / 'c'), **dict(kw, seed=5))
    for key in ('pos', 'vel', 'y', 'mass', 'edge_attr'):
        assert torch.equal(a._data[key], b._data[key]), key
    assert not torch.equal(a._data.pos, c._data.pos)
    # the shift: systems spread over tens of units, not around the origin
    centres = a._data.pos.view(-1, 4, 3).mean(1)
    assert centres.abs().max() > 5


def test_ood_applies_its_transform_on_top(tmp_path):
    root = str(tmp_path)
    kw = dict(seed=3, rotate=True, permute=True, shift_std=20.0, **SMALL)
    test = Gravity(root, split='test', **kw)
    ood = Gravity(root, split='ood', ood_shift=200.0, **kw)
    shift = torch.tensor([200.0, 0.0, 0.0], dtype=torch.float64)
    rotations = []
    for a, b in zip(test, ood):
        assert torch.equal(a.mass, b.mass)  # the same body order
        X = torch.cat([a.pos, a.y, a.vel]).double()
        Y = torch.cat([b.pos.double() - shift, b.y.double() - shift,
                       b.vel.double()])
        R = torch.linalg.lstsq(X, Y).solution.t()
        torch.testing.assert_close(R @ R.t(), torch.eye(3).double(),
                                   atol=1e-5, rtol=0)
        torch.testing.assert_close(X @ R.t(), Y, atol=1e-4, rtol=0)
        rotations.append(R)
    # a further rotation per system, not the identity
    assert not torch.allclose(rotations[0], torch.eye(3).double(),
                              atol=1e-2)
    centre = ood._data.pos.view(-1, 4, 3).mean(1).double()
    assert (centre[:, 0] - 200).abs().max() < 100


def test_rotate_and_permute_regenerate_the_cache(tmp_path, monkeypatch):
    root = str(tmp_path)
    Gravity(root, split='val', seed=0, **SMALL)

    def boom(*args, **kwargs):
        raise AssertionError('simulated again although cached')

    monkeypatch.setattr(gravity_mod, '_simulate', boom)
    Gravity(root, split='val', seed=0, rotate=False, **SMALL)  # cached
    for change in ({'rotate': True}, {'permute': True}):
        with pytest.raises(AssertionError, match='simulated again'):
            Gravity(root, split='val', seed=0, **SMALL, **change)


def test_rotate_permute_errors_name_the_field(tmp_path):
    with pytest.raises(TypeError, match="'rotate' must be a bool"):
        Gravity(str(tmp_path), rotate=1, **SMALL)
    with pytest.raises(TypeError, match="'permute' must be a bool"):
        Gravity(str(tmp_path), permute='yes', **SMALL)
    assert not os.path.exists(os.path.join(str(tmp_path), 'processed'))
