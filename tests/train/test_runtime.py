"""The single-process Runtime: its collectives are the identity and its
sampler yields exactly the batches of a shuffling DataLoader (the
multi-process behaviour is in test_distributed.py)."""
import torch
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from torch_geometric_remul.train import Runtime


def test_single_process_runtime_is_the_identity():
    runtime = Runtime()
    assert (runtime.rank, runtime.world_size, runtime.is_main,
            runtime.distributed, runtime.one_forward_per_step) == \
        (0, 1, True, False, False)
    assert runtime.describe(8) is None
    values = [0.1, 1 / 3, 2.0]
    # exactly the values: no multiplication and division by the weight
    assert runtime.weighted_mean(values, 7) == (values, 7.0)
    assert runtime.all_reduce_sum([1, 2.5]) == [1.0, 2.5]
    assert runtime.on_main(lambda: 'x') == 'x'
    assert runtime.gather({'a': 1}) == [{'a': 1}]
    assert runtime.staged(lambda: 3) == 3
    model = torch.nn.Linear(2, 2)
    assert runtime.wrap_model(model) is model
    assert runtime.to_device(model) is model
    assert runtime.seed(5) == 5 and runtime.step_scale(1.0) == 1.0
    lines = []
    assert runtime.main_only(lines.append) == lines.append
    assert Runtime.current().world_size == 1


def test_epoch_loader_is_the_shuffling_data_loader():
    graphs = [Data(pos=torch.zeros(1, 3), idx=torch.tensor([i]))
              for i in range(11)]
    runtime = Runtime()
    for seed in (0, 7):
        expected = [b.idx.tolist() for b in DataLoader(
            graphs, batch_size=4, shuffle=True,
            generator=torch.Generator().manual_seed(seed))]
        loader, shares = runtime.epoch_loader(
            graphs, 4, torch.Generator().manual_seed(seed))
        assert [b.idx.tolist() for b in loader] == expected
        assert shares == [1.0] * len(expected)


def test_eval_blocks_are_the_whole_split():
    data = list(range(10))
    part, sub, batch_size = Runtime().eval_blocks(data, 4, 8)
    assert part == data and sub == data[:4] and batch_size == 8
