# Root conftest: makes docstring examples (doctests) runnable as written.
import importlib.util

import pytest
import torch

collect_ignore = ['torch_geometric_remul/__main__.py', 'benchmarks']
# Docstring examples of the RDKit stand-in generator need the optional 'md'
# extra: without RDKit they are not collected (its tests in tests/datasets
# skip with pytest.importorskip).
if importlib.util.find_spec('rdkit') is None:
    collect_ignore.append('torch_geometric_remul/datasets/md17_standin.py')


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
    doctest_namespace['torch'] = torch
