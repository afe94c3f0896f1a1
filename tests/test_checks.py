"""The argument checks of plain options (sizes, numbers, names) shared by
the datasets, the graph builders, the training configuration and the
command line."""
import math

import numpy as np
import pytest
import torch

from torch_geometric_remul._checks import (
    check_bool,
    check_choice,
    check_int,
    check_interval,
    check_positions,
    check_ptr,
    check_real,
    check_str,
    registry_entry,
)
from torch_geometric_remul.testing import assert_no_syncs, count_syncs


def test_check_int():
    assert check_int(np.int64(3), 'n', minimum=1) == 3
    assert type(check_int(np.int64(3), 'n')) is int
    with pytest.raises(ValueError, match=r"'n' must be >= 1 \(got 0\)"):
        check_int(0, 'n', minimum=1)
    for bad in (True, 2.0, '3', None):
        with pytest.raises(TypeError, match="'n' must be an integer"):
            check_int(bad, 'n')


def test_check_real():
    assert check_real(np.float32(0.5), 'x', minimum=0) == 0.5
    assert check_real(0, 'x', minimum=0) == 0.0
    with pytest.raises(ValueError, match=r"'x' must be a finite number > 0 "
                       r"\(got 0.0\): why"):
        check_real(0, 'x', minimum=0, strict=True, why=': why')
    for bad in (math.nan, math.inf, -1.0):
        with pytest.raises(ValueError, match="'x' must be a finite number"):
            check_real(bad, 'x', minimum=0)
    assert check_real(-1e300, 'x') == -1e300
    for bad in (True, '1.0', None, torch.tensor(1.0)):
        with pytest.raises(TypeError, match="'x' must be a number"):
            check_real(bad, 'x')


def test_check_interval():
    assert check_interval((1, 2.5), 'r') == (1.0, 2.5)
    assert check_interval([-1, 0], 'r', positive=False) == (-1.0, 0.0)
    with pytest.raises(ValueError, match="0 < low <= high"):
        check_interval((0, 1), 'r')
    with pytest.raises(ValueError, match="low <= high"):
        check_interval((2, 1), 'r', positive=False)
    with pytest.raises(TypeError, match="'r' must be a pair"):
        check_interval(3, 'r')


def test_check_str_bool_choice():
    assert check_str(None, 's', optional=True) is None
    with pytest.raises(TypeError, match="'s' must be a string or None"):
        check_str(3, 's', optional=True)
    assert check_bool(False, 'b') is False
    with pytest.raises(TypeError, match="'b' must be a bool"):
        check_bool(1, 'b')
    assert check_choice('so3', 'group', ('SO3', 'SE3'),
                        ignore_case=True) == 'SO3'
    with pytest.raises(ValueError, match=r"'group' must be one of SO3, SE3 "
                       r"\(got 'so3'\)"):
        check_choice('so3', 'group', ('SO3', 'SE3'))
    with pytest.raises(TypeError, match="'group' must be a string"):
        check_choice(3, 'group', ('SO3', ))


def test_check_positions():
    pos = torch.zeros(4, 2)
    assert check_positions(pos) is pos
    with pytest.raises(ValueError, match=r"'pos' must have shape"):
        check_positions(torch.zeros(4))
    with pytest.raises(TypeError, match="'x' must have a floating-point"):
        check_positions(torch.zeros(4, 3, dtype=torch.long), 'x')


def test_check_ptr_ends_of_a_host_ptr_in_every_mode():
    with count_syncs() as syncs:  # host memory: read without device work
        check_ptr(torch.tensor([0, 2, 5]), 'ptr', 5, 2)
        check_ptr(torch.tensor([0, 2, 5], dtype=torch.int32)[::1], 'ptr', 5)
    assert_no_syncs(syncs, 'check_ptr on a host ptr')
    for bad in ([0, 2, 4], [1, 2, 5]):
        with pytest.raises(ValueError, match=r"'ptr' must start at 0 and end "
                           r"at the number of rows \(5\), got "
                           f"{bad[0]} \\.\\.\\. {bad[-1]}"):
            check_ptr(torch.tensor(bad), 'ptr', 5, 2)
    # a device ptr is not read outside debug mode (a meta tensor has no
    # values to read)
    check_ptr(torch.tensor([0, 2, 4], device='meta'), 'ptr', 5, 2)


def test_registry_entry():
    """Case-insensitive lookup; an unknown name lists the table's names,
    a name that is not a str is a TypeError."""
    table = {'alpha': int, 'beta': float}
    assert registry_entry(table, 'Beta', 'kind') is float
    with pytest.raises(ValueError, match="unknown kind 'gamma'; available "
                       "kinds: alpha, beta"):
        registry_entry(table, 'gamma', 'kind')
    with pytest.raises(TypeError, match="'name' must be a str"):
        registry_entry(table, int, 'kind')
