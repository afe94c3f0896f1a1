r"""Graph construction without pyg-lib: fully connected, radius and k-NN
graphs per graph of a batch.

All builders return ``edge_index`` ``[2, E]`` in PyG's
``flow="source_to_target"`` convention (``edge_index[0]`` = source ``j``,
``edge_index[1]`` = target ``i``) and never connect nodes of different
graphs. :func:`radius_graph` and :func:`knn_graph` call torch-cluster when
it is installed and a vectorised native implementation otherwise (see
:func:`torch_geometric_remul.typing.force_native`).
"""
from .fully_connected import fully_connected_graph
from .knn import knn_graph
from .radius import radius_graph

__all__ = [
    'fully_connected_graph',
    'radius_graph',
    'knn_graph',
]
