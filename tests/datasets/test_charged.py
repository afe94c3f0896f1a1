import os

import numpy as np
import pytest
import torch

import torch_geometric_remul.datasets.charged as charged_mod
from tests.datasets._helpers import check_nbody_graph
from torch_geometric_remul.datasets import (
    ChargedParticles,
    charged_energy,
    num_charged_frames,
    simulate_charged,
)

# Simulator ##################################################################

def test_shapes_and_initial_statistics():
    sim = simulate_charged(400, num_steps=300, seed=0)
    S, N = 400, 5
    assert num_charged_frames(5000, 100) == 49
    assert sim.pos.shape == sim.vel.shape == (S, 2, N, 3)
    assert sim.charge.shape == (S, N)
    assert sim.steps.tolist() == [100, 200]
    assert sim.pos.dtype == np.float64
    assert set(np.unique(sim.charge)) == {-1.0, 1.0}
    assert abs((sim.charge > 0).mean() - 0.5) < 0.05  # 2000 fair draws
    np.testing.assert_allclose(np.linalg.norm(sim.vel_initial, axis=-1), 0.5,
                               rtol=1e-12)
    assert abs(sim.pos_initial.std() - 1.0) < 0.05  # N(0, 1) * loc_std
    assert abs(sim.pos_initial.mean()) < 0.05
    assert np.isfinite(sim.pos).all() and np.isfinite(sim.vel).all()
    sim2 = simulate_charged(400, num_steps=300, loc_std=2.0, vel_norm=1.5,
                            seed=0)
    np.testing.assert_allclose(np.linalg.norm(sim2.vel_initial, axis=-1),
                               1.5)
    # inside EGNN's box of +-5 the positions scale; outside they reflect
    wide = np.abs(2 * sim.pos_initial) > 5
    assert 0 < wide.sum() < 100  # 2.5 sigma: about 1% of 6000
    np.testing.assert_allclose(sim2.pos_initial[~wide],
                               2 * sim.pos_initial[~wide])
    np.testing.assert_allclose(
        sim2.pos_initial[wide],
        np.sign(sim.pos_initial[wide]) * 10 - 2 * sim.pos_initial[wide])
    assert (np.abs(sim2.pos_initial) <= 5).all()
    # the reflected velocity component points inwards
    assert (sim2.vel_initial[wide] * sim2.pos_initial[wide] < 0).all()


def test_particle_number_keeps_egnn_density():
    sim = simulate_charged(200, num_particles=40, num_steps=0, seed=0)
    # EGNN scales loc_std by (N / 5) ** (1 / 3): here by 2
    assert abs(sim.pos_initial.std() - 2.0) < 0.05


def test_default_frame_count():
    sim = simulate_charged(2, seed=0)
    assert sim.pos.shape == (2, 49, 5, 3)
    assert sim.steps[0] == 100 and sim.steps[-1] == 4900


def test_seed_determinism_and_difference():
    a = simulate_charged(8, num_steps=400, seed=3)
    b = simulate_charged(8, num_steps=400, seed=3)
    c = simulate_charged(8, num_steps=400, seed=4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(a.pos, c.pos)
    assert not np.array_equal(a.charge, c.charge) or not np.allclose(
        a.pos_initial, c.pos_initial)


def test_random_stream_is_egnns_draw_order():
    # EGNN's generator draws, per system, from one legacy numpy stream:
    # charges (uniforms, < 1/2 -> -1), positions and velocities as [3, N]
    # normals, then two [frames, 3, N] noise arrays it never adds
    N, frames = 5, num_charged_frames(300, 100)
    rs = np.random.RandomState(7)
    expected = []
    for _ in range(3):
        u = rs.random_sample((N, 1))[:, 0]
        x = rs.standard_normal((3, N)).T
        v = rs.standard_normal((3, N)).T
        rs.standard_normal((frames, 3, N))
        rs.standard_normal((frames, 3, N))
        expected.append((np.where(u < 0.5, -1.0, 1.0), x,
                         0.5 * v / np.linalg.norm(v, axis=1, keepdims=True)))
    sim = simulate_charged(3, num_steps=300, seed=7)
    for k, (q, x, v) in enumerate(expected):
        np.testing.assert_array_equal(sim.charge[k], q)
        np.testing.assert_array_equal(sim.pos_initial[k], x)
        np.testing.assert_allclose(sim.vel_initial[k], v, rtol=1e-15)
    # `first` skips systems of the stream: the same numbers
    later = simulate_charged(2, num_steps=300, seed=7, first=1)
    for x, y in zip(later[:5], sim[:5]):
        np.testing.assert_array_equal(x, y[1:])


def _coulomb(pos, charge, strength=1.0):
    d = pos[..., :, None, :] - pos[..., None, :, :]
    r = np.linalg.norm(d, axis=-1)
    r = np.where(r == 0, np.inf, r)  # no self-force
    qq = charge[..., :, None] * charge[..., None, :]
    return strength * (qq[..., None] * d / r[..., None] ** 3).sum(-2)


def test_integrator_is_egnns_kick_then_drift():
    # a full first kick, then drift and kick each step; frames hold the
    # positions after a drift and the velocity that made it
    sim = simulate_charged(3, num_steps=3, sample_every=1, clip_force=False,
                           seed=1)
    dt, x, v, q = 0.001, sim.pos_initial, sim.vel_initial, sim.charge
    for k in range(2):
        v = v + dt * _coulomb(x, q)
        x = x + dt * v
        np.testing.assert_allclose(sim.pos[:, k], x, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(sim.vel[:, k], v, rtol=1e-12, atol=1e-14)


def _relative_drift(sim, strength=1.0, dt=0.001):
    # the scheme is leapfrog whose velocities run half a step behind: the
    # velocity at a frame's positions is v + dt / 2 F(x), and the conserved
    # energy starts from v0 + dt / 2 F(x0)
    q = sim.charge
    v0 = sim.vel_initial + 0.5 * dt * _coulomb(sim.pos_initial, q, strength)
    e0 = charged_energy(sim.pos_initial, v0, q, strength)
    v = sim.vel + 0.5 * dt * _coulomb(sim.pos, q[:, None], strength)
    e = charged_energy(sim.pos, v, q[:, None, :], strength)
    scale = (0.5 * (v0 ** 2).sum((1, 2))
             + np.abs(e0 - 0.5 * (v0 ** 2).sum((1, 2))))
    return np.abs(e - e0[:, None]).max(1) / scale


def test_energy_conserved_without_clipping():
    sim = simulate_charged(64, num_steps=200, sample_every=10,
                           clip_force=False, seed=5)
    drift = _relative_drift(sim)
    # Close encounters of opposite charges make a few runs stiff; the bulk
    # must conserve energy to leapfrog accuracy.
    assert np.median(drift) < 1e-5
    assert np.percentile(drift, 90) < 1e-3
    # the saved (lagging) velocities themselves do not
    naive = charged_energy(sim.pos, sim.vel, sim.charge[:, None, :])
    e0 = charged_energy(sim.pos_initial, sim.vel_initial, sim.charge)
    assert np.median(np.abs(naive - e0[:, None]).max(1)) > 1e-4


def test_energy_error_is_second_order_in_dt():
    coarse = simulate_charged(64, num_steps=200, sample_every=10, dt=0.002,
                              clip_force=False, seed=6)
    fine = simulate_charged(64, num_steps=400, sample_every=20, dt=0.001,
                            clip_force=False, seed=6)
    ratio = np.median(_relative_drift(coarse, dt=0.002)) / np.median(
        _relative_drift(fine, dt=0.001))
    assert ratio > 2.5  # ~4 for a second-order symplectic scheme


def test_interaction_strength_enters_energy():
    sim = simulate_charged(32, num_steps=100, sample_every=10,
                           clip_force=False, interaction_strength=0.5,
                           seed=2)
    assert np.median(_relative_drift(sim, 0.5)) < 1e-5
    assert np.median(_relative_drift(sim, 1.0)) > 1e-4


def test_momentum_conserved_without_clipping():
    sim = simulate_charged(16, num_steps=300, clip_force=False, seed=8)
    p0 = sim.vel_initial.sum(1)
    np.testing.assert_allclose(sim.vel.sum(2), p0[:, None].repeat(2, 1),
                               atol=1e-9)


def test_clipping_changes_dynamics():
    free = simulate_charged(16, num_steps=300, clip_force=False, seed=9)
    tight = simulate_charged(16, num_steps=300, max_force=0.05, seed=9)
    assert not np.allclose(free.pos, tight.pos)
    # a component-wise clip bounds every velocity change per step
    dv = np.abs(tight.vel[:, 0] - tight.vel_initial)
    assert (dv <= 100 * 0.001 * 0.05 + 1e-12).all()


def test_charged_energy_pair():
    pos = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 4.0]])
    vel = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    assert charged_energy(pos, vel, np.array([1.0, 1.0])) == pytest.approx(
        1.0 + 0.25)


def test_simulator_argument_errors():
    with pytest.raises(ValueError, match='num_particles'):
        simulate_charged(2, num_particles=1)
    with pytest.raises(ValueError, match='dt'):
        simulate_charged(2, dt=0.0)
    with pytest.raises(TypeError, match='num_sims'):
        simulate_charged(2.5)


# Dataset ####################################################################

SMALL = dict(num_train=6, num_val=4, num_test=3, frame_in=2, frame_out=4)


def test_dataset_attributes(tmp_path):
    ds = ChargedParticles(str(tmp_path), split='train', seed=1, **SMALL)
    assert len(ds) == 6
    d = ds[0]
    check_nbody_graph(d, 5, 'charge')
    assert set(ds._data.charge.view(-1).tolist()) <= {-1.0, 1.0}
    assert not torch.allclose(d.pos, d.y)
    # 200 steps apart at speed ~0.5: the displacement is of order 0.1
    assert 0.0 < (d.y - d.pos).norm(dim=1).mean() < 5.0


def test_dataset_matches_simulator_frames(tmp_path, monkeypatch):
    captured = {}
    real = charged_mod._simulate

    def spy(*args, **kwargs):
        captured['sim'] = real(*args, **kwargs)
        return captured['sim']

    monkeypatch.setattr(charged_mod, '_simulate', spy)
    ds = ChargedParticles(str(tmp_path), split='val', seed=2, **SMALL)
    sim = captured['sim']
    assert sim.pos.shape[1] == SMALL['frame_out'] + 1
    torch.testing.assert_close(ds[1].pos, torch.tensor(
        sim.pos[1, SMALL['frame_in']], dtype=torch.float32))
    torch.testing.assert_close(ds[1].vel, torch.tensor(
        sim.vel[1, SMALL['frame_in']], dtype=torch.float32))
    torch.testing.assert_close(ds[1].y, torch.tensor(
        sim.pos[1, SMALL['frame_out']], dtype=torch.float32))


def test_splits_sizes_and_independence(tmp_path):
    root = str(tmp_path)
    sets = {s: ChargedParticles(root, split=s, seed=0, **SMALL)
            for s in ('train', 'val', 'test')}
    assert [len(sets[s]) for s in ('train', 'val', 'test')] == [6, 4, 3]
    first = {s: sets[s][0].pos for s in sets}
    assert not torch.allclose(first['train'], first['val'])
    assert not torch.allclose(first['val'], first['test'])
    # a split depends only on its own size: changing num_val keeps train
    other = ChargedParticles(root, split='train', seed=0,
                             **{**SMALL, 'num_val': 9})
    torch.testing.assert_close(other._data.pos, sets['train']._data.pos)
    # a different seed gives different data
    reseeded = ChargedParticles(root, split='train', seed=1, **SMALL)
    assert not torch.allclose(reseeded._data.pos, sets['train']._data.pos)


def test_cache_reused_and_regenerated(tmp_path, monkeypatch):
    root = str(tmp_path)
    ds = ChargedParticles(root, seed=0, **SMALL)
    path = ds.processed_paths[0]
    assert os.path.isfile(path)

    def boom(*args, **kwargs):
        raise AssertionError('simulated again although cached')

    monkeypatch.setattr(charged_mod, '_simulate', boom)
    again = ChargedParticles(root, seed=0, **SMALL)
    torch.testing.assert_close(again._data.pos, ds._data.pos)
    # any content parameter changes the file name and forces a simulation
    for change in ({'frame_out': 3}, {'num_train': 5}, {'dt': 0.0005},
                   {'clip_force': False}, {'vel_norm': 0.4}):
        with pytest.raises(AssertionError, match='simulated again'):
            ChargedParticles(root, seed=0, **{**SMALL, **change})
    monkeypatch.undo()
    changed = ChargedParticles(root, seed=0, **{**SMALL, 'frame_out': 3})
    assert changed.processed_paths[0] != path
    torch.testing.assert_close(changed._data.pos, ds._data.pos)  # same input
    assert not torch.allclose(changed._data.y, ds._data.y)


def test_transform_and_pre_transform(tmp_path):
    def add_speed(data):
        data = data.clone()
        data.speed = data.vel.norm(dim=1, keepdim=True)
        return data

    def shift(data):
        data = data.clone()
        data.pos = data.pos + 100.0
        return data

    ds = ChargedParticles(str(tmp_path), pre_transform=add_speed,
                          transform=shift, seed=0, **SMALL)
    d = ds[0]
    torch.testing.assert_close(d.speed, d.vel.norm(dim=1, keepdim=True))
    assert (d.pos > 50).all()
    assert (ds._data.pos < 50).all()  # the stored data is untouched


def test_dataset_argument_errors(tmp_path):
    with pytest.raises(ValueError, match='frame_out'):
        ChargedParticles(str(tmp_path), frame_in=30, frame_out=49)
    with pytest.raises(ValueError, match='frame_in'):
        ChargedParticles(str(tmp_path), frame_in=5, frame_out=5)
    with pytest.raises(ValueError, match='split'):
        ChargedParticles(str(tmp_path), split='training')
    with pytest.raises(ValueError, match='num_val'):
        ChargedParticles(str(tmp_path), split='val', num_val=0)
    assert not os.path.exists(os.path.join(str(tmp_path), 'processed'))


def test_pre_filter(tmp_path):
    def positive(data):
        return float(data.charge.sum()) > 0

    ds = ChargedParticles(str(tmp_path), pre_filter=positive, seed=0,
                          **{**SMALL, 'num_train': 20})
    assert 0 < len(ds) < 20
    assert all(float(d.charge.sum()) > 0 for d in ds)
    with pytest.raises(ValueError, match='pre_filter'):
        ChargedParticles(str(tmp_path / 'b'), pre_filter=lambda d: False,
                         seed=0, **SMALL)


def test_splits_follow_egnns_stream_layout(tmp_path):
    # one stream: train_pool training systems, then validation, then test
    kw = dict(SMALL, num_steps=600, train_pool=9, seed=43)
    sim = simulate_charged(9 + 4 + 3, num_steps=600, seed=43)
    first = {'train': 0, 'val': 9, 'test': 13}
    for split, n in (('train', 6), ('val', 4), ('test', 3)):
        ds = ChargedParticles(str(tmp_path), split=split, **kw)
        assert ds.first == first[split] and len(ds) == n
        a = first[split]
        torch.testing.assert_close(ds._data.pos.view(n, 5, 3), torch.tensor(
            sim.pos[a:a + n, 2], dtype=torch.float32))
        torch.testing.assert_close(ds._data.y.view(n, 5, 3), torch.tensor(
            sim.pos[a:a + n, 4], dtype=torch.float32))
        torch.testing.assert_close(ds._data.vel.view(n, 5, 3), torch.tensor(
            sim.vel[a:a + n, 2], dtype=torch.float32))
    with pytest.raises(ValueError, match='train_pool'):
        ChargedParticles(str(tmp_path), **{**kw, 'train_pool': 5})
    import inspect
    params = inspect.signature(ChargedParticles).parameters
    assert (params['seed'].default, params['train_pool'].default) == (
        43, 10000)  # EGNN's nbody_small
