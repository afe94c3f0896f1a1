import pytest
import torch
from torch_geometric.data import Batch, Data

from torch_geometric_remul import debug
from torch_geometric_remul.batching import graph_layout, row_layout
from torch_geometric_remul.testing import assert_no_syncs, count_syncs


def _batch():
    graphs = [Data(pos=torch.randn(n, 3), u=torch.randn(1, 3),
                   edge_index=torch.zeros(2, e, dtype=torch.long),
                   evec=torch.randn(e, 3))
              for n, e in ((2, 1), (0, 0), (3, 4))]
    return Batch.from_data_list(graphs)


def test_levels_from_collation_metadata():
    batch = _batch()
    with count_syncs() as syncs:
        pos, u, evec = (row_layout(batch, k) for k in ('pos', 'u', 'evec'))
    assert_no_syncs(syncs, 'row_layout')
    assert pos.ptr.tolist() == [0, 2, 2, 5]
    assert u.ptr.tolist() == [0, 1, 2, 3]
    assert evec.ptr.tolist() == [0, 1, 1, 5]
    # found by identity when passed as a tensor
    assert row_layout(batch, value=batch.u).ptr.tolist() == [0, 1, 2, 3]


def test_unsorted_batch_without_ptr_is_placed_by_batch():
    # offsets counted from an unsorted 'batch' would place rows by
    # position; node-level rows get the graph index of each row instead
    index = torch.tensor([1, 0, 1, 0, 1])
    batch = Batch(pos=torch.randn(5, 3), batch=index)
    layout = row_layout(batch, 'pos')
    assert layout.level == 'node' and layout.ptr is None
    assert torch.equal(layout.index, index)
    # graph-level rows still have one row per graph
    assert row_layout(batch, value=torch.zeros(2, 3)).ptr.tolist() == [0, 1,
                                                                       2]


def test_uncollated_tensors_placed_by_an_unambiguous_shape():
    batch = _batch()
    node = row_layout(batch, value=torch.randn(5, 3))
    assert node.level == 'node' and node.ptr.tolist() == [0, 2, 2, 5]
    graph = row_layout(batch, value=torch.randn(3))
    assert graph.level == 'graph' and graph.ptr.tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"'target' \(4 rows\).*none"):
        row_layout(batch, value=torch.randn(4, 3), name="'target'")
    forced = row_layout(batch, value=torch.randn(3, 3), level='graph')
    assert forced.ptr.tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match='has 4 rows but a node-level'):
        row_layout(batch, value=torch.randn(4, 3), level='node')
    with pytest.raises(ValueError, match="'level' must be one of"):
        row_layout(batch, value=torch.randn(5, 3), level='nodes')


def test_edges_added_after_collation():
    batch = _batch()
    batch.edge_index = torch.tensor([[0, 1, 2, 4], [1, 0, 3, 2]])
    batch.w = torch.randn(4, 3)  # 4 edges; 5 nodes, 3 graphs
    layout = row_layout(batch, 'w')
    assert layout.level == 'edge'
    assert layout.index.tolist() == [0, 0, 2, 2]


def test_single_data():
    data = Data(pos=torch.randn(4, 3))
    assert row_layout(data, 'pos').level == 'single'
    assert graph_layout(data) == (1, None)


def test_debug_checks_stale_metadata_and_ptr():
    batch = _batch()
    sub = batch.subgraph(torch.tensor([0, 2, 3, 4]))
    # stale metadata (5 rows) is ignored: 'pos' is placed by its shape
    assert row_layout(sub, 'pos').level == 'node'
    with debug():
        with pytest.raises(ValueError, match='subgraph'):
            graph_layout(sub)
        bad = batch.clone()
        bad.ptr = torch.tensor([0, 1, 3, 5])  # disagrees with batch.batch
        with pytest.raises(ValueError, match="'batch.ptr' and 'batch.batch' "
                           "disagree"):
            graph_layout(bad)


def test_batch_of_no_graphs_is_refused():
    """A Batch of no graphs gives one clear error, whoever is given it (it
    used to be 'cannot tell which rows ... belong to which graph')."""
    from torch_geometric_remul.transforms import (
        CenterPerGraph,
        RandomRigidTransform,
    )
    empty = Batch(pos=torch.zeros(0, 3),
                  batch=torch.zeros(0, dtype=torch.long),
                  ptr=torch.zeros(1, dtype=torch.long))
    for fn in (graph_layout, RandomRigidTransform('SO3'), CenterPerGraph()):
        with pytest.raises(ValueError, match=r'the Batch holds no graphs '
                           r'\(num_graphs is 0\)'):
            fn(empty)


def test_hetero_data_is_refused_with_a_type_error():
    from torch_geometric.data import HeteroData

    from torch_geometric_remul.group import RigidTransform
    from torch_geometric_remul.metrics import equivariance_error
    from torch_geometric_remul.nn import RemulLoss, build_model
    from torch_geometric_remul.testing import assert_equivariant
    from torch_geometric_remul.transforms import (
        CenterPerGraph,
        RandomRigidTransform,
        apply_rigid_transform,
    )
    data = HeteroData()
    data['atom'].pos = torch.randn(3, 3)
    data['atom', 'bond', 'atom'].edge_index = torch.tensor([[0, 1], [1, 2]])
    model = build_model('gnn', hidden_channels=4, num_layers=1)
    calls = {
        'RandomRigidTransform': lambda: RandomRigidTransform()(data),
        'CenterPerGraph': lambda: CenterPerGraph()(data),
        'apply_rigid_transform': lambda: apply_rigid_transform(
            data, RigidTransform.sample(1)),
        'GNN': lambda: model(data),
        'RemulLoss': lambda: RemulLoss()(model, data, torch.zeros(3, 3)),
        'equivariance_error': lambda: equivariance_error(model, data),
        'assert_equivariant': lambda: assert_equivariant(model, data),
    }
    for name, call in calls.items():
        with pytest.raises(TypeError, match=r"expects a torch_geometric\.data"
                           r"\.Data or Batch, got HeteroData \(heterogeneous "
                           r"graphs are not supported"):
            call()
