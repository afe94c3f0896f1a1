# Root conftest: makes docstring examples (doctests) runnable as written.
import doctest
import importlib.util

import pytest
import torch

collect_ignore = ['torch_geometric_remul/__main__.py', 'benchmarks']
# Docstring examples of the RDKit stand-in generator need the optional 'md'
# extra: without RDKit they are not collected (its tests in tests/datasets
# skip with pytest.importorskip).
if importlib.util.find_spec('rdkit') is None:
    collect_ignore.append('torch_geometric_remul/datasets/md17_standin.py')

#: What a docstring example of the training layer says to use the shared run.
SHARED_RUN = 'is the run trained by the example of'


@pytest.fixture(scope='session')
def _shared_training_run():
    """``result`` of the example of ``torch_geometric_remul.train.train``,
    run once (its docstring's code, as written) and shared by the docstring
    examples of the training layer that say so, instead of training a model
    in each of them."""
    from torch_geometric_remul.train import loop
    namespace = dict(vars(loop), torch=torch)
    for example in doctest.DocTestParser().get_examples(loop.train.__doc__):
        exec(compile(example.source, 'train example', 'exec'), namespace)
    return namespace['result']


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace, request):
    doctest_namespace['torch'] = torch
    dtest = getattr(request.node, 'dtest', None)
    if dtest is not None and \
            SHARED_RUN in ' '.join((dtest.docstring or '').split()):
        doctest_namespace['result'] = request.getfixturevalue(
            '_shared_training_run')
    yield
    doctest_namespace.pop('result', None)
