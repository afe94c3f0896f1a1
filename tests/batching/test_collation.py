"""PyG's collation record is read in one module (issue 27)."""
import re
from pathlib import Path

import torch
from torch_geometric.data import Batch, Data

import torch_geometric_remul
from torch_geometric_remul.batching import _collation as collation

PACKAGE = Path(torch_geometric_remul.__file__).parent


def test_only_the_adapter_touches_pygs_private_record():
    # an attribute access (batch._slice_dict) or a name in quotes
    # (getattr(batch, '_slice_dict')); a mention in a docstring is fine
    access = re.compile(r"\._(slice|inc)_dict\b|['\"]_(slice|inc)_dict['\"]")
    readers = sorted(path.relative_to(PACKAGE).as_posix()
                     for path in PACKAGE.rglob('*.py')
                     if access.search(path.read_text()))
    assert readers == ['batching/_collation.py']


def test_offsets_are_read_only_while_they_describe_the_attribute():
    batch = Batch.from_data_list([Data(pos=torch.zeros(n, 3))
                                  for n in (2, 0, 3)])
    assert collation.host_offsets(batch, 'pos', 3, 5).tolist() == [0, 2, 2,
                                                                      5]
    assert collation.host_offsets(batch, 'pos', 3, 4) is None  # stale
    assert collation.host_offsets(batch, 'vel', 3, 5) is None  # none
    assert collation.slice_record(Data(pos=torch.zeros(2, 3))) == {}


def test_a_written_record_is_what_pyg_reads_back():
    batch = Batch.from_data_list([Data(pos=torch.zeros(n, 3))
                                  for n in (2, 3)])
    copy = Batch(pos=batch.pos.clone(), batch=batch.batch, ptr=batch.ptr)
    copy._num_graphs = 2
    collation.write_record(copy, collation.slice_record(batch),
                           collation.inc_record(batch))
    assert [d.num_nodes for d in copy.to_data_list()] == [2, 3]
    assert torch.equal(collation.slices(copy, 'pos'), torch.tensor([0, 2, 5]))
