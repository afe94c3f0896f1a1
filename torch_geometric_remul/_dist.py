"""Minimal torch.distributed helpers (no-ops outside a process group)."""
import torch
from torch import Tensor


def is_distributed() -> bool:
    return (torch.distributed.is_available()
            and torch.distributed.is_initialized())


def all_reduce_mean(value: Tensor) -> Tensor:
    """The mean of ``value`` over all ranks (a detached copy; ``value`` itself
    is returned unchanged, detached, outside a process group)."""
    value = value.detach()
    if not is_distributed():
        return value
    out = value.clone()
    torch.distributed.all_reduce(out, op=torch.distributed.ReduceOp.SUM)
    return out / torch.distributed.get_world_size()
