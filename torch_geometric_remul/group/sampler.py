r"""Where random group elements come from, declared once."""
import hashlib
from typing import Optional

import torch
from torch.utils.data import get_worker_info

from torch_geometric_remul._checks import (
    check_translation_std,
    resolve_declaration,
)
from torch_geometric_remul.group.rigid import GROUPS, RigidTransform
from torch_geometric_remul.group.rotations import (
    AxisLike,
    _axis_vector,
    normalize_group,
)
from torch_geometric_remul.typing import Device

#: The default group of every sampler, transform, loss and metric: rotations
#: about the origin. REMUL's paper removes translations by centring each
#: graph, and rotations alone are valid for every output role without asking
#: a model to learn translation equivariance; choose ``"SE3"`` to add random
#: translations.
DEFAULT_GROUP = 'SO3'


class RigidSampler:
    r"""Samples one random rigid transformation per graph: the group and its
    options, declared once and shared by
    :class:`~torch_geometric_remul.transforms.RandomRigidTransform`,
    :class:`~torch_geometric_remul.nn.RemulLoss`,
    :func:`~torch_geometric_remul.metrics.equivariance_error` and
    :func:`~torch_geometric_remul.testing.assert_equivariant` (each accepts it
    as ``sampler=``, or the same options as keywords).

    Args:
        group (str, optional): ``"SO3"`` (Haar rotations), ``"O3"``
            (rotations and reflections), ``"SE3"`` (``"SO3"`` plus Gaussian
            translations), ``"E3"``, ``"SO2"`` (rotations about ``axis``) or
            ``"T3"`` (translations only). (default: ``"SO3"``)
        translation_std (float, optional): Standard deviation of each
            translation coordinate, for groups with translations.
            (default: ``1.0``)
        axis (int, str or sequence, optional): The rotation axis of
            ``"SO2"``. (default: ``2``)
        generator (torch.Generator, optional): Source of randomness, for
            reproducible draws. Inside a :class:`torch.utils.data.DataLoader`
            worker (e.g. in a dataset's ``transform=``), the worker's copy
            of the generator is re-seeded once per worker and epoch, before
            its first draw, from its state and the worker's seed
            (:func:`torch.utils.data.get_worker_info`), which the
            ``DataLoader`` draws anew every epoch from the main process's
            random state (or its ``generator=``). So workers and epochs draw
            different elements, and the same seeds give the same draws.
            Without a generator, each worker draws from the global random
            state that the ``DataLoader`` seeds per worker.

    Example:

        >>> sampler = RigidSampler('SE3', translation_std=0.5,
        ...                        generator=torch.Generator().manual_seed(0))
        >>> sampler
        RigidSampler(group='SE3', translation_std=0.5)
        >>> T = sampler.sample(4, dtype=torch.float64)
        >>> T.num_graphs, T.dtype
        (4, torch.float64)
    """
    def __init__(self, group: str = DEFAULT_GROUP, *,
                 translation_std: float = 1.0, axis: AxisLike = 2,
                 generator: Optional[torch.Generator] = None) -> None:
        self.group = normalize_group(group, tuple(GROUPS))
        self.translation_std = check_translation_std(translation_std)
        if generator is not None and not isinstance(generator,
                                                    torch.Generator):
            raise TypeError(f"'generator' must be a torch.Generator (got "
                            f"{type(generator).__name__})")
        self.axis = axis
        self.generator = generator
        # the worker seed the generator was last re-seeded for (see
        # _worker_generator)
        self._worker_seed: Optional[int] = None
        if self.group == 'SO2':  # validate the axis now, not at a step,
            _axis_vector(axis)  # without drawing from any generator

    @property
    def translates(self) -> bool:
        r"""Whether the group includes translations."""
        return GROUPS[self.group][1]

    def sample(self, num_graphs: int, dtype: Optional[torch.dtype] = None,
               device: Device = None) -> RigidTransform:
        r"""One group element per graph, as a
        :class:`~torch_geometric_remul.group.RigidTransform`."""
        return RigidTransform.sample(num_graphs, self.group,
                                     translation_std=self.translation_std,
                                     axis=self.axis,
                                     generator=self._worker_generator(),
                                     dtype=dtype, device=device)

    def _worker_generator(self) -> Optional[torch.Generator]:
        # A DataLoader worker holds a copy of the generator in the state it
        # had when the workers started, the same in every worker and (unless
        # the main process draws from it) every epoch: re-seed the copy once
        # per worker seed (new each epoch) from that state and the seed. A
        # host-side read of the worker info: no device synchronisation.
        generator = self.generator
        if generator is None or torch.compiler.is_compiling():
            # (get_worker_info is not traceable; no worker compiles)
            return generator
        info = get_worker_info()
        if info is None or info.seed == self._worker_seed:
            return generator
        state = generator.get_state()  # a CPU byte tensor, also for CUDA
        digest = hashlib.blake2b(state.numpy().tobytes(), digest_size=8,
                                 key=(info.seed % 2**64).to_bytes(8, 'little'))
        generator.manual_seed(int.from_bytes(digest.digest(), 'little') >> 1)
        self._worker_seed = info.seed
        return generator

    @classmethod
    def resolve(cls, sampler: Optional['RigidSampler'] = None,
                owner: str = 'this function', **options) -> 'RigidSampler':
        r"""The sampler of a call that accepts either ``sampler=`` or the
        option keywords (``group``, ``translation_std``, ``axis``,
        ``generator``); options given as ``None`` count as not given.

        Example:

            >>> RigidSampler.resolve(None, group='O3').group
            'O3'
        """
        return resolve_declaration(sampler, cls, 'sampler', owner, options)

    def __repr__(self) -> str:
        args = [f'group={self.group!r}']
        if self.translates:
            args.append(f'translation_std={self.translation_std}')
        if self.group == 'SO2':
            args.append(f'axis={self.axis!r}')
        return f'{self.__class__.__name__}({", ".join(args)})'


__all__ = ['DEFAULT_GROUP', 'RigidSampler']
