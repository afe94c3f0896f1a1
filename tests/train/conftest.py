import shutil

import pytest

from tests.train._helpers import make_config, quiet
from torch_geometric_remul.train import train


@pytest.fixture(scope='session')
def data_root(tmp_path_factory):
    """A data root holding the tiny N-body splits (simulated once)."""
    return str(tmp_path_factory.mktemp('data'))


@pytest.fixture(scope='session')
def finished(tmp_path_factory, data_root):
    """A finished 1-epoch run (do not modify: copy it with ``run_copy``)."""
    run = tmp_path_factory.mktemp('finished') / 'run'
    train(make_config(run, data_root, epochs=1), progress=False, log=quiet)
    return run


@pytest.fixture
def run_copy(finished, tmp_path):
    """A fresh copy of the finished run."""
    return shutil.copytree(finished, tmp_path / 'run')
