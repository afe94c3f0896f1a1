"""Adaptive weights stay identical on every rank of a process group."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from torch_geometric_remul.nn.weighting import GradNorm, TargetEquivariance


def _worker(rank, world, init_file, result_file):
    dist.init_process_group('gloo', init_method=f'file://{init_file}',
                            rank=rank, world_size=world)
    try:
        torch.manual_seed(100 + rank)  # different data on every rank
        layer = torch.nn.Linear(3, 1)
        with torch.no_grad():  # same model on every rank, as under DDP
            layer.weight.fill_(0.5)
            layer.bias.zero_()
        gn = GradNorm(layer.parameters(), lr=0.05)
        te = TargetEquivariance(epsilon=0.1, lr=0.2)
        for step in range(5):
            x = torch.randn(16, 3)
            out = layer(x)
            gn.update((out**2).mean(), (rank + 1.0) * out.abs().mean())
            err = torch.tensor(0.05 + 0.3 * rank + 0.01 * step,
                               dtype=torch.float64)
            te.update(None, torch.tensor(0.0), {'absolute': err,
                                                'relative': err})
        w = torch.tensor([*gn.weights(), te.weights()[1]],
                         dtype=torch.float64)
        gathered = [torch.zeros_like(w) for _ in range(world)]
        dist.all_gather(gathered, w)
        if rank == 0:
            torch.save(torch.stack(gathered), result_file)
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason='no torch.distributed')
def test_weights_identical_across_ranks(tmp_path):
    result = tmp_path / 'weights.pt'
    mp.spawn(_worker, args=(2, str(tmp_path / 'init'), str(result)),
             nprocs=2, join=True)
    weights = torch.load(result)
    assert weights.shape == (2, 3)
    assert torch.equal(weights[0], weights[1])
    # they did learn something: not the initial values
    assert weights[0, 0] != 1.0 and weights[0, 2] != 1.0
    # rank 1's large errors pulled beta up (mean error 0.37 > 0.1)
    assert weights[0, 2] > 1.0
