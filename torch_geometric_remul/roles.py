r"""One declaration of what is a point, a vector, a pseudovector or a scalar.

A REMUL set-up needs to know, once, how the group acts on every tensor it
touches: which **input attributes** move (points :math:`x \mapsto R x + t`,
vectors :math:`v \mapsto R v`, pseudovectors :math:`w \mapsto \det(R) R w`;
everything else is invariant), and how each **model output** moves (the
same roles, plus ``"scalar"`` for invariant outputs such as an energy). A
:class:`Roles` object holds both; the transforms,
:class:`~torch_geometric_remul.nn.RemulLoss`,
:func:`~torch_geometric_remul.metrics.equivariance_error`,
:func:`~torch_geometric_remul.testing.assert_equivariant` and the models
accept it as ``roles=``, and keep the plain keywords (``points=``,
``vectors=``, ``output=`` ...) as shortcuts.

Example:

    >>> roles = Roles(vectors='vel', output='point')
    >>> roles.inputs
    (('pos', 'point'), ('vel', 'vector'))
    >>> mlip = Roles(output={'energy': 'scalar', 'forces': 'vector'})
    >>> mlip.multi_output, mlip.outputs
    (True, {'energy': 'scalar', 'forces': 'vector'})
"""
from typing import Dict, Mapping, Optional, Tuple, Union

from torch import Tensor

from torch_geometric_remul._checks import (
    check_disjoint,
    check_keys,
    resolve_declaration,
)
from torch_geometric_remul.typing import Keys

#: Roles of input attributes.
INPUT_ROLES = ('point', 'vector', 'pseudovector')
#: Roles of model outputs (and targets).
OUTPUT_ROLES = ('point', 'vector', 'pseudovector', 'scalar')

OutputLike = Union[str, Mapping[str, str]]


def check_role(role, name: str = 'output') -> str:
    r"""``role`` if it is one of :data:`OUTPUT_ROLES`, else a ValueError
    naming ``name``.

    Example:

        >>> check_role('vector')
        'vector'
    """
    if not isinstance(role, str) or role not in OUTPUT_ROLES:
        raise ValueError(f"'{name}' must be one of "
                         f"{', '.join(OUTPUT_ROLES)} (got {role!r})")
    return role


def check_output(output: OutputLike) -> OutputLike:
    r"""A single output role (str) or a mapping output name -> role.

    Example:

        >>> check_output({'energy': 'scalar', 'forces': 'vector'})
        {'energy': 'scalar', 'forces': 'vector'}
    """
    if isinstance(output, str):
        return check_role(output)
    if isinstance(output, Mapping):
        if not output:
            raise ValueError("'output' must name at least one output")
        out = {}
        for key, role in output.items():
            if not isinstance(key, str):
                raise TypeError(f"'output' keys must be output names (str), "
                                f"got {type(key).__name__}")
            out[key] = check_role(role, f'output[{key!r}]')
        return out
    raise TypeError(f"'output' must be a role name or a mapping of output "
                    f"names to roles (got {type(output).__name__})")


class Roles:
    r"""The geometric roles of a model's inputs and outputs.

    Args:
        points (str or [str], optional): Input attributes that transform as
            points. (default: ``"pos"``)
        vectors (str or [str], optional): Input attributes that transform as
            vectors (velocities, forces used as inputs). (default: none)
        pseudovectors (str or [str], optional): Input pseudovectors.
            (default: none)
        output (str or dict, optional): Role of the model output —
            ``"point"``, ``"vector"``, ``"pseudovector"`` or ``"scalar"`` —
            or, for a model that returns a mapping of named tensors, a
            mapping name -> role, e.g. ``{"energy": "scalar",
            "forces": "vector"}``. (default: ``"point"``)

    Example:

        >>> roles = Roles(points=('pos', 'y'), vectors='vel')
        >>> roles
        Roles(points=['pos', 'y'], vectors=['vel'], output='point')
        >>> roles.role_of('vel'), roles.role_of('charge')
        ('vector', 'scalar')
        >>> roles.replace(output='vector').output
        'vector'
    """
    def __init__(self, points: Keys = ('pos', ), vectors: Keys = (),
                 pseudovectors: Keys = (),
                 output: OutputLike = 'point') -> None:
        self.points = check_keys(points, 'points')
        self.vectors = check_keys(vectors, 'vectors')
        self.pseudovectors = check_keys(pseudovectors, 'pseudovectors')
        check_disjoint(points=self.points, vectors=self.vectors,
                       pseudovectors=self.pseudovectors)
        self.output = check_output(output)

    # What is declared #####################################################

    @property
    def inputs(self) -> Tuple[Tuple[str, str], ...]:
        r"""``(attribute, role)`` of every moving input, points first."""
        return tuple([(k, 'point') for k in self.points] +
                     [(k, 'vector') for k in self.vectors] +
                     [(k, 'pseudovector') for k in self.pseudovectors])

    @property
    def multi_output(self) -> bool:
        r"""Whether the model returns a mapping of named outputs."""
        return not isinstance(self.output, str)

    @property
    def outputs(self) -> Dict[str, str]:
        r"""Output name -> role (a single output is named ``"output"``)."""
        if self.multi_output:
            return dict(self.output)
        return {'output': self.output}

    def role_of(self, key: str) -> str:
        r"""The role of input attribute ``key`` (``"scalar"`` when it is
        not declared: invariant)."""
        for k, role in self.inputs:
            if k == key:
                return role
        return 'scalar'

    def reference_input(self, data) -> Optional[Tuple[str, Tensor]]:
        r"""``(key, tensor)`` of the first declared input when ``data``
        holds it as a tensor, else ``None``: its dtype and device are those
        that the group elements, the moved targets and outputs must have
        (the one place that picks this reference).

        Example:

            >>> from torch_geometric.data import Data
            >>> data = Data(pos=torch.zeros(2, 3, dtype=torch.float64))
            >>> key, ref = Roles().reference_input(data)
            >>> key, ref.dtype
            ('pos', torch.float64)
            >>> Roles(points='x').reference_input(data) is None
            True
        """
        if not self.inputs:
            return None
        key = self.inputs[0][0]
        value = data[key] if key in data else None
        return (key, value) if isinstance(value, Tensor) else None

    def named(self, value, what: str) -> Dict[str, Tensor]:
        r"""``value`` (a model output or a target) as ``{name: tensor}``:
        one tensor for a single output (named ``"output"``), or a mapping
        holding every declared name for several (extra keys are ignored).
        Errors name ``what`` and what was expected.

        Example:

            >>> Roles().named(torch.zeros(2, 3), "'target'").keys()
            dict_keys(['output'])
            >>> Roles(output={'e': 'scalar'}).named({}, "'target'")
            Traceback (most recent call last):
            ...
            ValueError: 'target' lacks the output(s) ['e'] (declared: ['e'])
        """
        if not self.multi_output:
            if not isinstance(value, Tensor):
                raise TypeError(
                    f"{what} must be a torch.Tensor (got "
                    f"{type(value).__name__}); for named outputs declare "
                    f"them, e.g. output={{'energy': 'scalar', 'forces': "
                    f"'vector'}}")
            return {'output': value}
        declared = sorted(self.outputs)
        if not isinstance(value, Mapping):
            raise TypeError(f"{what} must be a mapping with the outputs "
                            f"{declared} (got {type(value).__name__})")
        missing = [k for k in self.outputs if k not in value]
        if missing:
            raise ValueError(f"{what} lacks the output(s) {missing} "
                             f"(declared: {declared})")
        for k in self.outputs:
            if not isinstance(value[k], Tensor):
                raise TypeError(f"{what}[{k!r}] must be a torch.Tensor "
                                f"(got {type(value[k]).__name__})")
        return {k: value[k] for k in self.outputs}

    # Building ##############################################################

    def replace(self, **changes) -> 'Roles':
        r"""A copy with some fields replaced (``points``, ``vectors``,
        ``pseudovectors``, ``output``)."""
        unknown = set(changes) - {'points', 'vectors', 'pseudovectors',
                                  'output'}
        if unknown:
            raise TypeError(f"Roles has no field(s) {sorted(unknown)}")
        fields = dict(points=self.points, vectors=self.vectors,
                      pseudovectors=self.pseudovectors, output=self.output)
        fields.update(changes)
        return Roles(**fields)

    @classmethod
    def resolve(cls, roles: Optional['Roles'] = None,
                owner: str = 'this function', **shortcuts) -> 'Roles':
        r"""The :class:`Roles` of a call that accepts either ``roles=`` or
        the shortcut keywords. Shortcuts given as ``None`` count as not
        given; giving both ``roles`` and a shortcut is an error (the
        declaration would be stated twice).

        Example:

            >>> Roles.resolve(None, vectors='vel').vectors
            ('vel',)
            >>> r = Roles(output='vector')
            >>> Roles.resolve(r, vectors=None) is r
            True
        """
        return resolve_declaration(roles, cls, 'roles', owner, shortcuts)

    # Serialisation #########################################################

    def to_dict(self) -> dict:
        r"""A JSON-friendly dict; :meth:`from_dict` reads it back."""
        return dict(points=list(self.points), vectors=list(self.vectors),
                    pseudovectors=list(self.pseudovectors),
                    output=(dict(self.output) if self.multi_output else
                            self.output))

    @classmethod
    def from_dict(cls, d: Mapping) -> 'Roles':
        r"""The inverse of :meth:`to_dict`.

        Example:

            >>> r = Roles(vectors='vel', output={'e': 'scalar'})
            >>> Roles.from_dict(r.to_dict()) == r
            True
        """
        return cls(**dict(d))

    def __eq__(self, other) -> bool:
        return isinstance(other, Roles) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self))

    def __repr__(self) -> str:
        args = [f'points={list(self.points)}']
        if self.vectors:
            args.append(f'vectors={list(self.vectors)}')
        if self.pseudovectors:
            args.append(f'pseudovectors={list(self.pseudovectors)}')
        args.append(f'output={self.output!r}')
        return f'Roles({", ".join(args)})'


class DeclaredGeometry:
    r"""Mixin for objects that hold a :class:`Roles` as ``self.roles`` and a
    :class:`~torch_geometric_remul.group.RigidSampler` as ``self.sampler``
    (the transforms, the loss): their fields, readable as attributes.

    Example:

        >>> from torch_geometric_remul.group import RigidSampler
        >>> class Holder(DeclaredGeometry):
        ...     roles, sampler = Roles(vectors='vel'), RigidSampler('SE3')
        >>> Holder().vectors, Holder().group
        (('vel',), 'SE3')
    """
    points = property(lambda self: self.roles.points)
    vectors = property(lambda self: self.roles.vectors)
    pseudovectors = property(lambda self: self.roles.pseudovectors)
    group = property(lambda self: self.sampler.group)
    translation_std = property(lambda self: self.sampler.translation_std)
    axis = property(lambda self: self.sampler.axis)
    generator = property(lambda self: self.sampler.generator)


__all__ = ['Roles', 'DeclaredGeometry', 'INPUT_ROLES', 'OUTPUT_ROLES',
           'check_role', 'check_output']
