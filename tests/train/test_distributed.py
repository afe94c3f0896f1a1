"""Multi-process training (DistributedDataParallel on gloo, 2 CPU processes).

The 2-process runs happen once, in a module-scoped fixture that spawns two
workers sharing a ``file://`` process group (no network ports); the tests
then compare what each rank saw. One test launches the real command with
``torchrun --standalone`` on the loopback interface.
"""
import json
import os
import os.path as osp
import shutil
import socket
import subprocess
import sys
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch_geometric.data import Batch

from torch_geometric_remul.nn.weighting import GradNorm, TargetEquivariance
from torch_geometric_remul.train import (
    TrainConfig,
    build_task_model,
    task_spec,
    train,
)
from torch_geometric_remul.train import distributed as D

pytestmark = pytest.mark.skipif(not dist.is_available(),
                                reason='no torch.distributed')

TINY = dict(num_train=16, num_val=8, num_test=8, hidden_channels=8,
            num_layers=1, batch_size=8, eval_graphs=8, eval_samples=2, lr=1e-3)
QUIET = dict(progress=False, log=lambda s: None)
#: name -> (config overrides, epochs) of the runs every rank takes part in
RUNS = {
    'target': dict(weighting='target', epsilon=0.01, epochs=3),
    'gradnorm': dict(weighting='gradnorm', epochs=3),
    'gradnorm_part': dict(weighting='gradnorm', epochs=1),
    # 19 graphs: the last global batch (3 graphs) splits 2 + 1
    'plain': dict(loss='plain', num_train=19, epochs=2),
    'plain_part': dict(loss='plain', num_train=19, epochs=1),
}


def make_config(run_dir, data_root, **kw):
    values = dict(TINY, data_root=data_root, run_dir=str(run_dir))
    values.update(kw)
    return TrainConfig(**values)


def same_row(a, b, seconds=False):
    """Two metrics rows are equal (NaN equal to NaN; ``epoch_seconds``
    ignored unless ``seconds``)."""
    assert a.keys() == b.keys()
    for key in a:
        if key == 'epoch_seconds' and not seconds:
            continue
        if not (a[key] == b[key] or (a[key] != a[key] and b[key] != b[key])):
            return False
    return True


def _double(batch):
    return batch.apply(lambda x: x.double() if x.is_floating_point() else x)


def first_step_grads(config, rank, world):
    """Gradients of the plain MSE after one backward pass on this rank's
    piece of the first global batch (float64, through DDP when world > 1)."""
    config = config.resolved()
    spec = task_spec(config)
    train_ds = spec.load('train')
    model = build_task_model(config, spec, train_ds[0]).double()
    order = torch.Generator().manual_seed(config.seed * 100003)
    indices = D.epoch_batches(len(train_ds), config.batch_size, order)[0]
    own, share = D.shard(indices, rank, world)
    batch = _double(Batch.from_data_list([train_ds[i] for i in own]))
    net = D.wrap_model(model, D.DistEnv(rank=rank, world_size=world))
    loss = torch.nn.functional.mse_loss(net(batch), batch[spec.target])
    loss.backward()
    return {k: p.grad.clone() for k, p in model.named_parameters()}, share


def loopback_only(environ) -> None:
    """Keeps gloo's sockets on the loopback interface (where it exists)."""
    if 'lo' in {name for _, name in socket.if_nameindex()}:
        environ['GLOO_SOCKET_IFNAME'] = 'lo'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank, world, init_file, tmp, data_root):
    torch.set_num_threads(1)
    loopback_only(os.environ)
    dist.init_process_group('gloo', init_method=f'file://{init_file}',
                            rank=rank, world_size=world)
    out = {}
    forwards = []
    wrap = D.wrap_model

    def counting_wrap(model, env):  # counts the forward passes through DDP
        net = wrap(model, env)
        net.register_forward_pre_hook(lambda *args: forwards.append(1))
        return net

    D.wrap_model = counting_wrap
    # the weights after every update of the adaptive weightings
    updates = []
    originals = {cls: cls.update for cls in (GradNorm, TargetEquivariance)}

    def recording(original):
        def update(self, *args, **kwargs):
            original(self, *args, **kwargs)
            updates.append(self.weights())
        return update

    for cls, original in originals.items():
        cls.update = recording(original)
    try:
        for name, kw in RUNS.items():
            forwards.clear()
            updates.clear()
            res = train(make_config(osp.join(tmp, name), data_root, **kw),
                        **QUIET)
            out[name] = dict(history=res.history, test=res.test,
                             forwards=len(forwards),
                             updates=list(updates),
                             fused=(res.loss.fused
                                    if res.loss is not None else None),
                             model=res.model.state_dict(),
                             loss=(res.loss.state_dict()
                                   if res.loss is not None else None),
                             rank=res.rank, world_size=res.world_size,
                             best_epoch=res.best_epoch,
                             test_last=res.test_last)
        # same number of processes: the continuation is bit-exact
        res = train(TrainConfig(epochs=3),
                    resume_from=osp.join(tmp, 'gradnorm_part'), **QUIET)
        out['gradnorm_resumed'] = dict(history=res.history,
                                       model=res.model.state_dict(),
                                       loss=res.loss.state_dict())
        out['grads'] = first_step_grads(
            make_config(osp.join(tmp, 'grads'), data_root, loss='plain'),
            rank, world)
        errors = {}
        for name, kw in (('batch', dict(batch_size=7)),
                         ('data', dict(task='mocap'))):
            try:
                train(make_config(osp.join(tmp, name), data_root, **kw),
                      **QUIET)
            except Exception as e:
                errors[name] = (type(e).__name__, str(e))
        out['errors'] = errors
    finally:
        D.wrap_model = wrap
        for cls, original in originals.items():
            cls.update = original
        dist.destroy_process_group()
    torch.save(out, osp.join(tmp, f'rank{rank}.pt'))


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp('data'))


@pytest.fixture(scope='module')
def two_ranks(tmp_path_factory, data_root):
    """The results of both ranks of the 2-process runs and the directory of
    their run directories."""
    tmp = tmp_path_factory.mktemp('ddp')
    context = mp.spawn(_worker, args=(2, str(tmp / 'init'), str(tmp),
                                      data_root), nprocs=2, join=False)
    deadline = time.monotonic() + 300  # a hang fails instead of blocking CI
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail('the 2-process workers did not finish in 300 s')
    ranks = [torch.load(tmp / f'rank{r}.pt', weights_only=True)
             for r in range(2)]
    return ranks, tmp


# Sharding ##################################################################


def test_epoch_batches_are_the_single_process_batches():
    from torch_geometric.data import Data
    from torch_geometric.loader import DataLoader
    graphs = [Data(pos=torch.zeros(1, 3), idx=torch.tensor([i]))
              for i in range(23)]
    for epoch in range(3):
        seed = 7 * 100003 + epoch
        loader = DataLoader(graphs, batch_size=8, shuffle=True,
                            generator=torch.Generator().manual_seed(seed))
        expected = [batch.idx.tolist() for batch in loader]
        got = D.epoch_batches(23, 8, torch.Generator().manual_seed(seed))
        assert got == expected
    assert [len(b) for b in got] == [8, 8, 7]


@pytest.mark.parametrize('m,world', [(8, 2), (8, 4), (7, 2), (3, 2),
                                     (1, 2), (2, 4), (5, 3)])
def test_shard_splits_the_global_batch(m, world):
    indices = list(range(100, 100 + m))
    pieces = [D.shard(indices, r, world) for r in range(world)]
    # every rank takes a step (DDP needs the same number everywhere)
    assert all(len(p) >= 1 for p, _ in pieces)
    weighted = [i for p, s in pieces if s > 0 for i in p]
    assert weighted == indices  # contiguous pieces, in order, each once
    assert sum(s for _, s in pieces) == pytest.approx(1.0)
    for p, s in pieces:
        if s > 0:
            assert s == pytest.approx(len(p) / m)
    if m % world == 0:
        assert {len(p) for p, _ in pieces} == {m // world}


def test_shard_range_and_batch_size():
    n = 10
    blocks = [D.shard_range(n, r, 3) for r in range(3)]
    assert [list(range(n))[b] for b in blocks] == [[0, 1, 2, 3], [4, 5, 6],
                                                   [7, 8, 9]]
    assert list(range(1))[D.shard_range(1, 1, 2)] == []
    assert D.per_rank_batch_size(100, 4) == 25
    with pytest.raises(ValueError, match="'batch_size' is the global batch"
                       ".*100 graphs.*3 processes"):
        D.per_rank_batch_size(100, 3)
    with pytest.raises(ValueError, match='empty'):
        D.shard([], 0, 2)
    with pytest.raises(ValueError, match="'rank'"):
        D.shard([1, 2], 2, 2)


def test_torchrun_environment_and_single_process_setup():
    assert D.torchrun_env({}) is None
    assert D.torchrun_env({'RANK': '1', 'WORLD_SIZE': '4',
                           'LOCAL_RANK': '1'}) == (1, 4, 1)
    with pytest.raises(ValueError, match='LOCAL_RANK'):
        D.torchrun_env({'RANK': '0', 'WORLD_SIZE': '2'})
    with pytest.raises(ValueError, match='RANK=2, WORLD_SIZE=2'):
        D.torchrun_env({'RANK': '2', 'WORLD_SIZE': '2', 'LOCAL_RANK': '0'})
    with pytest.raises(ValueError, match='WORLD_SIZE must be an integer'):
        D.torchrun_env({'RANK': '0', 'WORLD_SIZE': 'x', 'LOCAL_RANK': '0'})
    # torchrun with one process, or no torchrun: a plain process
    for environ in ({}, {'RANK': '0', 'WORLD_SIZE': '1', 'LOCAL_RANK': '0'}):
        env = D.setup(environ)
        assert (env.rank, env.world_size, env.enabled, env.owns_group) == (
            0, 1, False, False)
        assert not dist.is_initialized()
    with pytest.raises(ValueError, match="'backend'"):
        D.setup({}, backend='mpi')
    assert D.rank_seed(5, 0) == 5
    # distinct draws for every (seed, rank): the CPU generator keeps only
    # the low 32 bits of a seed
    draws = {tuple(torch.randn(4, generator=torch.Generator().manual_seed(
        D.rank_seed(s, r))).tolist()) for s in (-1, 0, 1, 12345)
        for r in range(4)}
    assert len(draws) == 16
    model = torch.nn.Linear(2, 2)
    assert D.wrap_model(model, D.DistEnv()) is model


# Two processes #############################################################


def test_two_processes_train_and_agree(two_ranks):
    ranks, _ = two_ranks
    for name in ('target', 'gradnorm', 'plain'):
        r0, r1 = ranks[0][name], ranks[1][name]
        assert (r0['rank'], r1['rank']) == (0, 1)
        assert r0['world_size'] == r1['world_size'] == 2
        epochs = RUNS[name]['epochs']
        assert [row['epoch'] for row in r0['history']] == list(
            range(1, epochs + 1))
        # the model parameters are identical on both ranks
        assert r0['model'].keys() == r1['model'].keys()
        for key in r0['model']:
            assert torch.equal(r0['model'][key], r1['model'][key]), key
        # metrics are all-reduced: every rank reports the same numbers
        for a, b in zip(r0['history'], r1['history']):
            assert same_row(a, b), (a, b)
        assert r0['test']['mse'] == r1['test']['mse']
        # every rank selects the same best-validation epoch
        assert r0['best_epoch'] == r1['best_epoch'] is not None
        assert r0['test_last']['mse'] == r1['test_last']['mse']
    # the loss decreases
    for name, key in (('gradnorm', 'train_task'), ('plain', 'train_loss'),
                      ('target', 'train_task')):
        history = ranks[0][name]['history']
        assert history[-1][key] < history[0][key], (name, history)


def test_one_ddp_forward_per_step(two_ranks):
    ranks, _ = two_ranks
    for rank in ranks:
        for name, kw in RUNS.items():
            run = rank[name]
            # the REMUL loss ran fused although the config did not ask
            assert run['fused'] is (None if kw.get('loss') == 'plain' else
                                    True)
            assert run['forwards'] == run['history'][-1]['step'] > 0, name


def test_learned_weights_agree_across_ranks(two_ranks):
    ranks, _ = two_ranks
    for name in ('target', 'gradnorm'):
        s0, s1 = ranks[0][name]['loss'], ranks[1][name]['loss']
        assert s0.keys() == s1.keys() and s0
        for key in s0:
            assert torch.equal(s0[key], s1[key]), (name, key)
        # after every update, not only at the end
        u0, u1 = ranks[0][name]['updates'], ranks[1][name]['updates']
        assert len(u0) == ranks[0][name]['history'][-1]['step'] == 6
        assert u0 == u1
        assert len(set(u0)) > 1  # they changed along the way
        for a, b in zip(ranks[0][name]['history'], ranks[1][name]['history']):
            assert (a['alpha'], a['beta']) == (b['alpha'], b['beta'])
    # and they did learn: beta grew towards E' <= 0.01, GradNorm moved
    assert ranks[0]['target']['history'][-1]['beta'] > 1.0
    assert ranks[0]['target']['loss']['weighting.log_beta'] > 0
    w = ranks[0]['gradnorm']['loss']['weighting.w']
    assert not torch.equal(w, torch.ones(2, dtype=w.dtype))


def test_checkpoint_is_written_once_and_keeps_every_rank_generator(
        two_ranks):
    _, tmp = two_ranks
    ckpt = torch.load(tmp / 'gradnorm' / 'checkpoint.pt', weights_only=True)
    assert ckpt['world_size'] == 2 and len(ckpt['rank_rng']) == 2
    g0, g1 = (s['loss_generator'] for s in ckpt['rank_rng'])
    assert torch.equal(ckpt['rng']['loss_generator'], g0)

    def draws(state):
        generator = torch.Generator()
        generator.set_state(state)
        return torch.rand(8, generator=generator)

    # group elements are drawn independently on each rank
    assert not torch.equal(draws(g0), draws(g1))
    # the unwrapped module's parameters: no DDP 'module.' prefix
    assert not any(k.startswith('module.') for k in ckpt['model'])
    files = sorted(os.listdir(tmp / 'gradnorm'))
    assert not [f for f in files if f.endswith('.tmp')]
    assert {'checkpoint.pt', 'best.pt', 'config.json', 'metrics.csv',
            'metrics.json', 'results.json'} <= set(files)
    assert json.load(open(tmp / 'gradnorm' / 'config.json'))['fused'] is \
        False  # the user's configuration; the fused loss ran anyway


def test_two_process_resume_is_bit_exact(two_ranks):
    ranks, _ = two_ranks
    for rank in ranks:
        full, resumed = rank['gradnorm'], rank['gradnorm_resumed']
        assert len(resumed['history']) == 3
        for a, b in zip(full['history'], resumed['history']):
            assert same_row(a, b), (a, b)
        for key in full['model']:
            assert torch.equal(full['model'][key], resumed['model'][key])
        for key in full['loss']:
            assert torch.equal(full['loss'][key], resumed['loss'][key])


def test_first_step_gradients_match_one_process(two_ranks, data_root,
                                                tmp_path):
    ranks, _ = two_ranks
    (g0, share0), (g1, share1) = ranks[0]['grads'], ranks[1]['grads']
    assert share0 == share1 == 0.5
    single, share = first_step_grads(
        make_config(tmp_path / 'grads', data_root, loss='plain'), 0, 1)
    assert share == 1.0
    for key, expected in single.items():
        # DDP averaged the two ranks' gradients: both hold the same
        assert torch.equal(g0[key], g1[key]), key
        assert expected.abs().max() > 0
        torch.testing.assert_close(g0[key], expected, rtol=1e-10,
                                   atol=1e-12)


def test_two_processes_train_like_one(two_ranks, data_root, tmp_path):
    """Same global batches, gradients averaged over ranks: the plain loss
    trains alike with 1 and 2 processes (to float32 rounding), uneven last
    batch included."""
    ranks, _ = two_ranks
    one = train(make_config(tmp_path / 'one', data_root, **RUNS['plain']),
                **QUIET)
    two = ranks[0]['plain']
    for a, b in zip(one.history, two['history']):
        for key in ('train_loss', 'val_mse'):
            assert a[key] == pytest.approx(b[key], rel=1e-5), key
    assert one.test['mse'] == pytest.approx(two['test']['mse'], rel=1e-5)
    for key, value in one.model.state_dict().items():
        torch.testing.assert_close(value, two['model'][key], rtol=1e-4,
                                   atol=1e-6)


def test_resume_with_fewer_processes(two_ranks, data_root, tmp_path):
    ranks, tmp = two_ranks
    for name in ('plain_part', 'gradnorm'):  # leave the originals alone
        shutil.copytree(tmp / name, tmp_path / name)
    # plain loss, no group elements: 2 -> 1 continues exactly (up to float
    # rounding) like the uninterrupted 2-process run
    res = train(TrainConfig(epochs=2),
                resume_from=str(tmp_path / 'plain_part'), **QUIET)
    assert res.world_size == 1
    assert [row['epoch'] for row in res.history] == [1, 2]
    assert same_row(res.history[0], ranks[0]['plain_part']['history'][0],
                    seconds=True)
    full = ranks[0]['plain']['history'][1]
    for key in ('train_loss', 'val_mse'):
        assert res.history[1][key] == pytest.approx(full[key], rel=1e-5)
    # REMUL with GradNorm: the learned weights carry over, group elements
    # come from a re-seeded generator (and the log says so)
    lines = []
    res = train(TrainConfig(epochs=4), resume_from=str(tmp_path / 'gradnorm'),
                progress=False, log=lines.append)
    assert [row['epoch'] for row in res.history] == [1, 2, 3, 4]
    for a, b in zip(res.history[:3], ranks[0]['gradnorm']['history']):
        assert same_row(a, b, seconds=True)
    assert res.history[3]['train_loss'] == res.history[3]['train_loss']
    assert any('written by 2 process(es), this run has 1' in line
               for line in lines)
    ckpt = torch.load(tmp_path / 'gradnorm' / 'checkpoint.pt',
                      weights_only=True)
    assert ckpt['world_size'] == 1 and 'rank_rng' not in ckpt
    assert ckpt['epoch'] == 4


def test_errors_reach_every_rank(two_ranks):
    ranks, _ = two_ranks
    for rank in ranks:
        kind, message = rank['errors']['batch']
        assert kind == 'ValueError'
        assert "'batch_size' is the global batch size" in message
        assert '7 graphs cannot be split evenly over 2 processes' in message
    # rank 0 fails to load the data first; rank 1 learns that it did
    assert ranks[0]['errors']['data'][0] != 'PeerFailure'
    assert ranks[1]['errors']['data'] == ('PeerFailure',
                                          'rank(s) [0] failed (see their '
                                          'error messages)')


# The real command under torchrun ###########################################


def _torchrun() -> str:
    path = osp.join(osp.dirname(sys.executable), 'torchrun')
    if not osp.exists(path):
        pytest.skip('torchrun not found next to the python executable')
    return path


def test_torchrun_two_processes(tmp_path, data_root):
    # a static rendezvous on 127.0.0.1: no address but the loopback one
    args = [_torchrun(), '--nnodes=1', '--nproc_per_node=2',
            '--rdzv-backend=static', '--master-addr=127.0.0.1',
            f'--master-port={free_port()}', '-m', 'torch_geometric_remul',
            'train', '--epochs', '1', '--data-root', data_root,
            '--no-progress', '--weighting', 'target']
    for key, value in TINY.items():
        args += [f'--{key.replace("_", "-")}', str(value)]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    loopback_only(env)
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                 'MASTER_PORT'):
        env.pop(name, None)
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # rank 0 alone prints and writes: one table, one run directory
    assert proc.stdout.count('result (test split)') == 1, proc.stdout
    assert 'distributed: 2 processes (gloo)' in proc.stdout
    assert 'using the fused loss' in proc.stdout
    runs = os.listdir(tmp_path / 'runs')
    assert len(runs) == 1, runs
    run = tmp_path / 'runs' / runs[0]
    ckpts = [p for p in tmp_path.rglob('checkpoint.pt')]
    assert ckpts == [run / 'checkpoint.pt']
    ckpt = torch.load(ckpts[0], weights_only=True)
    assert ckpt['world_size'] == 2 and ckpt['epoch'] == 1


_KILL_RANK_1 = '''
import os, signal
import torch_geometric_remul.train.loop as loop
_real, _calls = loop.train_step, []
def train_step(*args, **kwargs):
    _calls.append(1)
    if os.environ.get('RANK') == '1' and len(_calls) == 6:
        os.kill(os.getpid(), signal.SIGKILL)  # rank 1 is lost in epoch 3
    return _real(*args, **kwargs)
loop.train_step = train_step
'''


@pytest.mark.slow  # about 25 s: two torchrun launches' worth of start-up
def test_lost_rank_stops_the_run_and_keeps_the_checkpoint(tmp_path,
                                                          data_root):
    """A rank killed (SIGKILL) during training: torchrun stops the other
    rank instead of leaving it waiting, exits non-zero naming the lost
    rank, and the checkpoint of the last completed epoch resumes."""
    hook = tmp_path / 'hook'
    hook.mkdir()
    (hook / 'sitecustomize.py').write_text(_KILL_RANK_1)
    run = tmp_path / 'run'
    args = [_torchrun(), '--nnodes=1', '--nproc_per_node=2',
            '--rdzv-backend=static', '--master-addr=127.0.0.1',
            f'--master-port={free_port()}', '--monitor-interval=0.5', '-m',
            'torch_geometric_remul', 'train', '--epochs', '4', '--data-root',
            data_root, '--no-progress', '--run-dir', str(run)]
    for key, value in TINY.items():
        args += [f'--{key.replace("_", "-")}', str(value)]
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([str(hook)] + sys.path))
    loopback_only(env)
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                 'MASTER_PORT'):
        env.pop(name, None)
    t0 = time.monotonic()
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert 'exitcode  : -9' in proc.stderr or 'SIGKILL' in proc.stderr, \
        proc.stderr
    assert time.monotonic() - t0 < 200
    # 2 steps per epoch on each rank: killed in the second step of epoch 3
    # (rank 0 has written the checkpoint of epoch 2 before the first)
    ckpt = torch.load(run / 'checkpoint.pt', weights_only=True)
    assert ckpt['epoch'] == 2 and ckpt['world_size'] == 2
    assert not [p for p in os.listdir(run) if p.endswith('.tmp')]
    res = train(TrainConfig(), resume_from=str(run), **QUIET)
    assert [row['epoch'] for row in res.history] == [1, 2, 3, 4]
