import pytest
import torch
from torch_geometric.data import Batch, Data

import torch_geometric_remul.typing as remul_typing


@pytest.fixture(params=['accelerated', 'native'])
def backend(request):
    """Runs a test once on the torch-scatter/torch-cluster path (skipped if
    they are not installed) and once on the forced native path."""
    if request.param == 'native':
        with remul_typing.force_native():
            yield 'native'
    else:
        if not remul_typing.WITH_TORCH_SCATTER:
            pytest.skip('torch-scatter is not installed')
        yield 'accelerated'


def make_batch(sizes, dtype=torch.float64, seed=0, extra=True):
    """A Batch of random graphs with pos, vel, an invariant feature and a
    graph-level vector."""
    g = torch.Generator().manual_seed(seed)
    graphs = []
    for n in sizes:
        kw = dict(pos=torch.randn(n, 3, generator=g, dtype=dtype),
                  vel=torch.randn(n, 3, generator=g, dtype=dtype))
        if extra:
            kw['charge'] = torch.randn(n, 1, generator=g, dtype=dtype)
            kw['gvec'] = torch.randn(1, 3, generator=g, dtype=dtype)
        graphs.append(Data(**kw))
    return Batch.from_data_list(graphs)


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """``tempfile.mkdtemp()`` (where a benchmark's --quick run works)
    inside ``tmp_path``."""
    import tempfile
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))
    return tmp_path


@pytest.fixture
def batch64():
    return make_batch([4, 1, 7, 0, 3])


def both_paths(fn):
    """Runs ``fn()`` with every accelerator enabled and with the native path
    forced; returns both results."""
    fast = fn()
    with remul_typing.force_native():
        slow = fn()
    return fast, slow
