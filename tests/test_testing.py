import pytest
import torch
from torch_geometric.data import Batch, Data

from torch_geometric_remul.nn.models import build_model
from torch_geometric_remul.testing import (
    assert_equivariant,
    assert_no_syncs,
    count_syncs,
)


def test_count_syncs_finds_each_kind():
    x = torch.arange(6)
    with count_syncs() as syncs:
        x.sum().item()
        x[x > 2]
        x.tolist()
        torch.repeat_interleave(x, x)
        torch.repeat_interleave(x, x, output_size=15)  # not a sync
        x.nonzero()
        x.unique()
        torch.bincount(x, minlength=8)
        if x.any():
            pass
    assert syncs.count == 8, syncs.report()
    assert 'test_testing.py' in syncs.events[0].location
    with pytest.raises(AssertionError, match='8 host-device'):
        assert_no_syncs(syncs, 'demo')
    # the patch of Tensor.tolist is removed on exit
    with count_syncs() as inner:
        pass
    x.tolist()
    assert inner.count == 0


def test_count_syncs_flags_host_to_device_copies():
    """A host tensor copied to another device is a synchronisation point
    on CUDA (pageable memory); the meta device shows it without a GPU."""
    host = torch.randn(4)
    meta = torch.empty(4, device='meta')
    with count_syncs() as syncs:
        host.to('meta')
        meta.copy_(host)
        host.to(torch.float64)          # host to host: not a sync
        meta.to(torch.float64)          # device to device: not a sync
        torch.randn(4, device='meta')   # drawn on the device: not a sync
        meta * host[0]                  # a 0-dim operand: not a copy
    assert syncs.count == 2, syncs.report()
    assert all('host-to-device copy, cpu->meta' in op for op in syncs.ops)
    assert 'test_testing.py' in syncs.events[0].location


def test_assert_equivariant_on_models():
    g = torch.Generator().manual_seed(0)
    batch = Batch.from_data_list([
        Data(pos=torch.randn(n, 3, generator=g, dtype=torch.float64),
             vel=torch.randn(n, 3, generator=g, dtype=torch.float64),
             edge_index=torch.combinations(torch.arange(n)).t().flip(0))
        for n in (3, 4)])
    egnn = build_model('egnn', vectors='vel', hidden_channels=8,
                       num_layers=2).double()
    errs = assert_equivariant(egnn, batch, vectors='vel', group='E3')
    assert errs['output'].E_prime < 1e-9
    gnn = build_model('gnn', vectors='vel', hidden_channels=8,
                      num_layers=2).double()
    with pytest.raises(AssertionError, match='not equivariant under SO3'):
        assert_equivariant(gnn, batch, vectors='vel')
    # float32 inputs get float32 tolerances
    assert_equivariant(lambda d: d.pos * 2, Data(pos=torch.randn(4, 3)))


def test_assert_equivariant_options_are_keyword_only():
    # the model and the data positional, every option by name
    data = Data(pos=torch.randn(4, 3))
    with pytest.raises(TypeError, match='positional'):
        assert_equivariant(lambda d: d.pos, data, 'point')
    assert_equivariant(lambda d: d.pos, data, output='point')
