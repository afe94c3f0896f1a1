r"""Datasets: N-body systems (charged particles, gravity), MD17 trajectories
(real files and a classical stand-in), rMD17 energies and forces
(:class:`RMD17`) and motion capture (real files and a
synthetic proxy). Every dataset yields
``Data(pos, vel, <scalars>, y, edge_index, ...)`` with ``pos``/``y`` points
and ``vel`` a vector."""
from .charged import (
                      ChargedParticles,
                      ChargedSimulation,
                      charged_energy,
                      num_charged_frames,
                      simulate_charged,
)
from .gravity import Gravity, GravitySimulation, simulate_gravity
from .md17 import (
                      MD17_MOLECULES,
                      MD17Trajectories,
                      canonical_molecule,
                      find_md17_file,
)
from .md17_standin import (
                      STANDIN_SMILES,
                      generate_md17_standin,
                      simulate_md17_standin,
)
from .mocap import MotionCapture, read_gmn_split
from .mocap_formats import (
                      AsfSkeleton,
                      MocapClip,
                      asf_amc_positions,
                      read_amc,
                      read_asf,
                      read_bvh,
)
from .mocap_proxy import generate_mocap_proxy, walking_proxy_angles
from .rmd17 import RMD17, find_rmd17_files, rmd17_molecule

__all__ = [
    'ChargedParticles',
    'ChargedSimulation',
    'simulate_charged',
    'charged_energy',
    'num_charged_frames',
    'Gravity',
    'GravitySimulation',
    'simulate_gravity',
    'MD17_MOLECULES',
    'MD17Trajectories',
    'canonical_molecule',
    'find_md17_file',
    'STANDIN_SMILES',
    'simulate_md17_standin',
    'generate_md17_standin',
    'RMD17',
    'find_rmd17_files',
    'rmd17_molecule',
    'MotionCapture',
    'read_gmn_split',
    'MocapClip',
    'AsfSkeleton',
    'read_asf',
    'read_amc',
    'asf_amc_positions',
    'read_bvh',
    'generate_mocap_proxy',
    'walking_proxy_angles',
]
