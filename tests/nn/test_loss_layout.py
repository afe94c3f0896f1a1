"""One REMUL step resolves the layout of its batch (which node belongs to
which graph) once per public entry point: once in ``RemulLoss.forward`` and
once in each forward pass of a model that reads its inputs; the debug-mode
check of ``ptr`` against ``batch`` (it reads the device) runs as often, not
once per helper that needs the layout."""
import sys
from contextlib import contextmanager

import pytest
import torch
from torch_geometric.data import Batch, Data

from torch_geometric_remul import debug
from torch_geometric_remul.batching import layout as batching_layout
from torch_geometric_remul.graph import fully_connected_graph
from torch_geometric_remul.metrics import equivariance_error
from torch_geometric_remul.nn import RemulLoss
from torch_geometric_remul.nn.models import GNN
from torch_geometric_remul.transforms import (
    CenterPerGraph,
    RandomRigidTransform,
)

WATCHED = {
    'layout': batching_layout._resolve.__code__,
    'ptr_check': batching_layout._debug_check_ptr_batch.__code__,
    'check_data': batching_layout.check_data.__code__,
}


@contextmanager
def count_calls():
    """Counts the calls of the watched functions by their code objects, so
    that a call through any imported name is counted."""
    counts = dict.fromkeys(WATCHED, 0)
    codes = {code: name for name, code in WATCHED.items()}

    def profile(frame, event, arg):
        if event == 'call' and frame.f_code in codes:
            counts[codes[frame.f_code]] += 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield counts
    finally:
        sys.setprofile(previous)


def make_batch():
    g = torch.Generator().manual_seed(0)
    graphs = []
    for n in (3, 4, 5):
        data = Data(pos=torch.randn(n, 3, generator=g),
                    vel=torch.randn(n, 3, generator=g),
                    y=torch.randn(n, 3, generator=g))
        data.edge_index = fully_connected_graph(data)
        graphs.append(data)
    return Batch.from_data_list(graphs)


def shift(data):  # a callable model that reads no layout
    return data.pos + data.vel


@pytest.mark.parametrize('fused', [False, True])
@pytest.mark.parametrize('debug_mode', [False, True])
def test_loss_step_resolves_the_layout_once_per_entry_point(fused,
                                                            debug_mode):
    batch = make_batch()
    torch.manual_seed(0)
    gnn = GNN(vectors='vel', hidden_channels=8, num_layers=1)
    num_samples = 2
    # model calls: the clean and the moved batches one by one, or one
    # forward on the fused batch
    model_calls = 1 if fused else 1 + num_samples
    for model, entry_points in ((shift, 1), (gnn, 1 + model_calls)):
        loss_fn = RemulLoss(vectors='vel', group='SE3', fused=fused,
                            num_samples=num_samples)
        with debug(debug_mode), count_calls() as counts:
            loss_fn(model, batch, batch.y)
        assert counts == {'layout': entry_points,
                          'ptr_check': entry_points if debug_mode else 0,
                          'check_data': entry_points}, model


def test_metric_and_transforms_resolve_the_layout_once_per_call():
    batch = make_batch()
    with debug(), count_calls() as counts:
        equivariance_error(shift, batch, vectors='vel', num_samples=3)
    assert counts == {'layout': 1, 'ptr_check': 1, 'check_data': 1}
    for transform in (RandomRigidTransform(vectors='vel', group='SE3'),
                      CenterPerGraph(points=('pos', 'y'))):
        with debug(), count_calls() as counts:
            transform(batch.clone())
        assert counts == {'layout': 1, 'ptr_check': 1, 'check_data': 1}
