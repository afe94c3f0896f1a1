"""Tiny models with known symmetry, for tests of the loss and metrics."""
import torch

from torch_geometric_remul.group import center


class ExactPoint(torch.nn.Module):
    """Exactly E(3)-equivariant point output: x + a v + b (x - centroid)."""
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(0.7, dtype=torch.float64))
        self.b = torch.nn.Parameter(torch.tensor(-0.2, dtype=torch.float64))

    def forward(self, data):
        rel, _ = center(data.pos, ptr=data.ptr) if hasattr(
            data, 'ptr') and data.ptr is not None else center(
                data.pos, ptr=torch.tensor([0, data.num_nodes]))
        return data.pos + self.a * data.vel + self.b * rel


class FreePoint(torch.nn.Module):
    """Unconstrained point output: x + MLP([x, v])."""
    def __init__(self, hidden_channels=16, dtype=torch.float64):
        super().__init__()
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(6, hidden_channels, dtype=dtype), torch.nn.SiLU(),
            torch.nn.Linear(hidden_channels, 3, dtype=dtype))

    def forward(self, data):
        return data.pos + self.mlp(torch.cat([data.pos, data.vel], -1))


class InvariantScalar(torch.nn.Module):
    """Graph-level invariant: per-graph sum of |v|^2 and of |x - c|^2."""
    def forward(self, data):
        from torch_geometric_remul.group import segment_sum
        ptr = data.ptr
        rel, _ = center(data.pos, ptr=ptr)
        feats = torch.stack([(data.vel**2).sum(-1), (rel**2).sum(-1)], -1)
        return segment_sum(feats, ptr=ptr)


class FreeScalar(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 2, dtype=torch.float64)

    def forward(self, data):
        from torch_geometric_remul.group import segment_sum
        return segment_sum(self.lin(data.vel), ptr=data.ptr)
