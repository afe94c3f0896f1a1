r"""Readers of motion-capture files that return joint positions by forward
kinematics, one module per format:

* :mod:`~torch_geometric_remul.datasets.asf_amc`: Acclaim ASF skeletons and
  AMC motions, as used by the CMU database
  (:func:`~torch_geometric_remul.datasets.read_asf`,
  :func:`~torch_geometric_remul.datasets.read_amc`,
  :func:`~torch_geometric_remul.datasets.asf_amc_positions`);
* :mod:`~torch_geometric_remul.datasets.bvh`: BVH files
  (:func:`~torch_geometric_remul.datasets.read_bvh`).

Each module documents its rotation conventions (the formats leave them
loose). Forward kinematics runs entirely in the group layer: the rotations
come from :func:`~torch_geometric_remul.group.euler_to_matrix` and every
joint's global frame (rotation and position, one element per frame of the
clip) is a :class:`~torch_geometric_remul.group.RigidTransform` composed from
its parent's. Both return a
:class:`~torch_geometric_remul.datasets.MocapClip`.

The names are importable from here and from
:mod:`torch_geometric_remul.datasets`.
"""
from torch_geometric_remul.datasets._mocap_common import (
    PROXY_NAME_PREFIX,
    MocapClip,
)
from torch_geometric_remul.datasets.asf_amc import (
    AsfBone,
    AsfSkeleton,
    asf_amc_positions,
    read_amc,
    read_asf,
)
from torch_geometric_remul.datasets.bvh import read_bvh

__all__ = ['MocapClip', 'AsfSkeleton', 'AsfBone', 'read_asf', 'read_amc',
           'asf_amc_positions', 'read_bvh', 'PROXY_NAME_PREFIX']
