"""The shallow copy of a Data/Batch that torch.compile traces."""
import copy

import pytest
import torch
from torch_geometric.data import Data

from tests.conftest import make_batch
from torch_geometric_remul._copy import _traceable_copy, shallow_copy


def _check_shallow_copy(out, data, ref, moved=()):
    """``out`` is a shallow copy of ``data`` as ``ref = copy.copy(data)``:
    same class, keys and values, collation record and graph count, its own
    store (assignments do not reach ``data``)."""
    assert type(out) is type(ref) is type(data)
    assert list(out.keys()) == list(ref.keys())
    for key in data.keys():
        assert (out[key] is data[key]) is (key not in moved), key
    assert out._store is not data._store
    assert out._store._parent() is out
    assert out._slice_dict is data._slice_dict
    assert out._inc_dict is data._inc_dict
    assert out.num_graphs == data.num_graphs
    before = data.pos
    out.pos = out.pos + 1
    out.extra = torch.zeros(1)
    assert data.pos is before and 'extra' not in data
    assert len(out.to_data_list()) == data.num_graphs


def test_traceable_copy_is_pygs_shallow_copy():
    data = make_batch([2, 0, 3])
    _check_shallow_copy(_traceable_copy(data), data, copy.copy(data))
    single = Data(pos=torch.randn(3, 3), edge_index=torch.zeros(2, 0,
                                                                 dtype=int))
    out = _traceable_copy(single)
    assert type(out) is Data and out.pos is single.pos
    out.pos = None
    assert 'pos' not in out and 'pos' in single


def test_compiled_shallow_copy_has_no_graph_break():
    """PyG's copy.copy breaks the graph (the builtin dict.copy); the copy
    of shallow_copy traces, and the copy leaves the original alone."""
    data = make_batch([2, 3])

    def move(d):  # item assignment: Dynamo cannot call PyG's property
        out = shallow_copy(d)  # setters (out.pos = ... breaks the graph)
        out['pos'] = out.pos + 1
        return out

    torch._dynamo.reset()
    with pytest.raises(torch._dynamo.exc.Unsupported, match='dict.copy'):
        # the break this module avoids
        torch.compile(lambda d: copy.copy(d).pos + 1, backend='eager',
                      fullgraph=True)(data)
    explain = torch._dynamo.explain(lambda d: move(d).pos)(data)
    assert explain.graph_break_count == 0, explain.break_reasons
    out = torch.compile(move, backend='eager', fullgraph=True)(data)
    assert torch.equal(out.pos, data.pos + 1)
    _check_shallow_copy(out, data, copy.copy(data), moved=('pos', ))
