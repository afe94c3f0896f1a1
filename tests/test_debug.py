"""The debug switch: PyG's turns ours on; ours alone; set_debug as in PyG."""
import sys

import pytest
import torch
import torch_geometric
from torch_geometric.data import Batch, Data

import torch_geometric_remul as remul
from torch_geometric_remul.debug import debug, is_debug_enabled, set_debug
from torch_geometric_remul.transforms import RandomRigidTransform


@pytest.fixture(autouse=True)
def _restore_switches():
    pyg = torch_geometric.is_debug_enabled()
    with set_debug(None):
        yield
    assert torch_geometric.is_debug_enabled() == pyg


def _bad_ptr_batch():
    batch = Batch.from_data_list([Data(pos=torch.randn(n, 3))
                                  for n in (2, 3)])
    batch.ptr = torch.tensor([0, 1, 5])  # disagrees with batch.batch
    return batch


def test_pyg_debug_turns_on_our_value_checks():
    bad = _bad_ptr_batch()
    RandomRigidTransform()(bad)  # no value check outside debug mode
    with torch_geometric.debug():
        assert is_debug_enabled()
        with pytest.raises(ValueError, match="'batch.ptr' and 'batch.batch' "
                           "disagree"):
            RandomRigidTransform()(bad)
    assert not is_debug_enabled()


def test_pyg_set_debug_as_function_and_context_manager():
    with torch_geometric.set_debug(True):
        assert is_debug_enabled()
    assert not is_debug_enabled()
    torch_geometric.set_debug(True)
    try:
        assert is_debug_enabled()
    finally:
        torch_geometric.set_debug(False)
    assert not is_debug_enabled()


def test_ours_enables_only_ours():
    with debug():
        assert is_debug_enabled()
        assert not torch_geometric.is_debug_enabled()
    assert not is_debug_enabled()


def test_ours_can_turn_checks_off_under_pyg_debug():
    with torch_geometric.debug():
        with debug(False):
            assert not is_debug_enabled()
            RandomRigidTransform()(_bad_ptr_batch())  # not checked
        assert is_debug_enabled()
        with set_debug(False):
            assert not is_debug_enabled()
        assert is_debug_enabled()


def test_set_debug_is_a_function_and_a_context_manager_like_pygs():
    # as a function: sets the mode for the process
    set_debug(True)
    assert is_debug_enabled()
    set_debug(False)
    assert not is_debug_enabled()
    with torch_geometric.debug():
        assert not is_debug_enabled()  # our explicit False wins
    set_debug(None)  # follow PyG again
    with torch_geometric.debug():
        assert is_debug_enabled()
    # as a context manager: restores the previous setting on exit
    with set_debug(True):
        assert is_debug_enabled()
        with set_debug(False):
            assert not is_debug_enabled()
        assert is_debug_enabled()
    assert not is_debug_enabled()


def test_debug_restores_the_previous_setting_not_just_off():
    set_debug(True)
    with debug(False):
        assert not is_debug_enabled()
    assert is_debug_enabled()
    set_debug(None)
    with debug():
        pass
    with torch_geometric.debug():  # back to following PyG, not pinned off
        assert is_debug_enabled()


@pytest.mark.parametrize('mode', [1, 'yes', torch.tensor(True)])
def test_mode_must_be_a_bool(mode):
    with pytest.raises(TypeError, match="'mode' must be a bool or None"):
        set_debug(mode)
    with pytest.raises(TypeError, match="'mode' must be a bool"):
        debug(mode)
    assert not is_debug_enabled()


def test_debug_is_documented_as_a_context_manager_only():
    assert 'decorator' not in (remul.debug.__doc__ or '')


@pytest.mark.parametrize('value,expected', [
    ('1', True), ('on', True), ('0', False), ('off', False), ('', None),
    (None, None),
])
def test_environment_variable(monkeypatch, value, expected):
    # REMUL_DEBUG=1 pins ours on, =0 pins it off, unset follows PyG
    module = sys.modules['torch_geometric_remul.debug']
    if value is None:
        monkeypatch.delenv('REMUL_DEBUG', raising=False)
    else:
        monkeypatch.setenv('REMUL_DEBUG', value)
    assert module._from_env() is expected


def test_bad_environment_variable_is_named(monkeypatch):
    module = sys.modules['torch_geometric_remul.debug']
    monkeypatch.setenv('REMUL_DEBUG', 'maybe')
    with pytest.raises(ValueError, match="REMUL_DEBUG must be 0 or 1"):
        module._from_env()
