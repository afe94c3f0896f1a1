# Root conftest: makes docstring examples (doctests) runnable as written.
import pytest
import torch

collect_ignore = ['torch_geometric_remul/__main__.py', 'setup.py',
                  'benchmarks']


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
    doctest_namespace['torch'] = torch
