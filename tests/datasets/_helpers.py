"""Shared checks for the dataset tests."""
import torch


def check_nbody_graph(data, num_nodes: int, key: str) -> None:
    """One N-body sample: exactly the attributes ``pos``, ``vel``, ``y``
    (``[num_nodes, 3]``), the node scalar ``key`` (``[num_nodes, 1]``),
    ``edge_index`` (``torch.long``) holding every ordered pair of distinct
    nodes once, and ``edge_attr`` = ``data[key][row] * data[key][col]``;
    every floating-point attribute is ``float32``."""
    assert set(data.keys()) == {'pos', 'vel', key, 'y', 'edge_index',
                                'edge_attr'}
    assert data.pos.shape == data.vel.shape == data.y.shape == (num_nodes, 3)
    assert data[key].shape == (num_nodes, 1)
    for name in ('pos', 'vel', key, 'y', 'edge_attr'):
        assert data[name].dtype == torch.float32, name
    E = num_nodes * (num_nodes - 1)
    assert data.edge_index.dtype == torch.long
    assert data.edge_index.shape == (2, E)
    row, col = data.edge_index
    assert (row != col).all()
    assert len(set(zip(row.tolist(), col.tolist()))) == E
    assert data.edge_attr.shape == (E, 1)
    torch.testing.assert_close(data.edge_attr, data[key][row] * data[key][col])
