"""The ASF/AMC reader (torch_geometric_remul.datasets.asf_amc)."""
import math

import numpy as np
import pytest

from tests.datasets._mocap_files import AMC, ASF, assert_malformed, write
from torch_geometric_remul.datasets.asf_amc import (
    asf_amc_positions,
    read_amc,
    read_asf,
)

S = math.sin(math.radians(30))
C = math.cos(math.radians(30))


def test_asf_parse(asf_amc):
    skel = read_asf(asf_amc[0])
    assert skel.name == 'test_skeleton' and not skel.is_synthetic_proxy
    assert list(skel.bones) == ['a', 'b', 'c']
    assert skel.parent == {'a': 'root', 'b': 'a', 'c': 'root'}
    np.testing.assert_allclose(skel.bones['b'].direction, [1, 0, 0])
    assert skel.bones['a'].dofs == ('rz',) and skel.bones['c'].dofs == ()
    assert skel.joint_names() == ['root', 'a', 'b', 'c']


def test_asf_amc_forward_kinematics(asf_amc):
    clip = asf_amc_positions(*asf_amc)
    assert clip.joint_names == ['root', 'a', 'b', 'c']
    assert clip.parents == [-1, 0, 1, 0]
    assert clip.edges.tolist() == [[0, 1], [1, 2], [0, 3]]
    X = clip.positions
    assert X.shape == (2, 4, 3)
    # frame 1: no rotation; bone b's frame C M C^T = I, so it points along x
    np.testing.assert_allclose(X[0], [[1, 2, 3], [1, 4, 3], [2, 4, 3],
                                      [1, 2, 3.5]], atol=1e-12)
    # frame 2, by hand: G_root = Ry(90) maps (x, y, z) -> (z, y, -x);
    # a: Ry90 Rz90 (0, 2, 0) = Ry90 (-2, 0, 0) = (0, 0, 2);
    # b: Rz90 Rx30 Rz90^T (1, 0, 0) = Rz90 Rx30 (0, -1, 0)
    #    = Rz90 (0, -cos30, -sin30) = (cos30, 0, -sin30), then
    #    G_a = Ry90 Rz90: Rz90 -> (0, cos30, -sin30), Ry90 -> (-sin30,
    #    cos30, 0); c: Ry90 (0, 0, 0.5) = (0.5, 0, 0)
    np.testing.assert_allclose(X[1], [[0, 0, 0], [0, 0, 2],
                                      [-S, C, 2], [0.5, 0, 0]], atol=1e-12)


def test_amc_radians_header(asf_amc, tmp_path):
    amc = tmp_path / 'rad.amc'
    amc.write_text(AMC.replace(':DEGREES', ':RADIANS').replace(
        'root 0 0 0 0 90 0', f'root 0 0 0 0 {math.pi / 2} 0').replace(
        'a 90', f'a {math.pi / 2}').replace('b 30', f'b {math.pi / 6}'))
    a = asf_amc_positions(asf_amc[0], str(amc)).positions
    b = asf_amc_positions(*asf_amc).positions
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_read_amc_channels(asf_amc):
    skel = read_asf(asf_amc[0])
    ch = read_amc(asf_amc[1], skel)
    assert ch['root'].shape == (2, 6) and ch['a'].shape == (2, 1)
    np.testing.assert_allclose(ch['root'][0], [1, 2, 3, 0, 0, 0])
    np.testing.assert_allclose(ch['b'][1], [math.radians(30)])


# Malformed input ############################################################

@pytest.mark.parametrize('text, match', [
    (ASF[:ASF.index(':hierarchy')], r'no :hierarchy section'),
    (ASF[:ASF.index('  end\n  begin\n     id 2')], r'unfinished bone'),
    (ASF.replace('    a b\n', '    a b zz\n'), r"unknown bone 'zz'"),
    (ASF.replace('    a b\n', ''), r"\['b'\] do not appear"),
    (ASF.replace('    root a c\n    a b\n', '    root c\n    a b\n    b a\n'),
     r"not a tree rooted at 'root': bones \['a', 'b'\] do not descend "
     r"from it \(cycle"),
    (ASF.replace('length 2', 'length two'), r'line \d+: length must be'),
    (ASF.replace('dof rz', 'dof rz tx'), r"unsupported dof \['tx'\]"),
    (ASF.replace('direction 0 1 0', 'direction 0 1'), r'direction needs 3'),
    (ASF.replace('axis 0 0 90  XYZ', 'axis 0 0 90 XYQ'), 'axis order'),
    ('hello\n', 'not an ASF file'),
])
def test_malformed_asf(tmp_path, text, match):
    assert_malformed(tmp_path, 'bad.asf', text, match, read_asf)


@pytest.mark.parametrize('text, match', [
    (AMC.replace('b 30\n', ''), r'frame starting at line \d+ lacks'),
    (AMC.replace('a 90', 'a 90 1'), r"line \d+: 'a' needs 1 values"),
    (AMC.replace('a 90', 'q 90'), r"'q' is not a bone"),
    (AMC.replace('a 90', 'a ninety'), r'must be numbers'),
    (AMC.replace('1\nroot', 'root', 1), r'before the first frame'),
    (':FULLY-SPECIFIED\n', 'no frames'),
    (AMC + 'a 1\n', "given twice"),
])
def test_malformed_amc(asf_amc, tmp_path, text, match):
    assert_malformed(tmp_path, 'bad.amc', text, match,
                     lambda path: asf_amc_positions(asf_amc[0], path))


def test_binary_file(tmp_path):
    path = tmp_path / 'bin.asf'
    path.write_bytes(b'\xff\xfe\x00\x81' * 10)
    with pytest.raises(ValueError,
                       match='bin.asf: line 1, column 1: not a text file'):
        read_asf(str(path))


# Frame numbers, encodings, line numbers #####################################

@pytest.mark.parametrize('text, match', [
    (AMC.replace('2\nroot 0', '1\nroot 0'),
     r"bad.amc: line 8: frame number 1 given twice \(also at line 4\)"),
    (AMC.replace('1\nroot 1', '3\nroot 1'),
     r"bad.amc: line 8: frame number 2 after frame 3 \(line 4\): frames "
     r"out of order"),
])
def test_amc_repeated_or_decreasing_frame_numbers(asf_amc, tmp_path, text,
                                                  match):
    path = write(tmp_path, 'bad.amc', text)
    with pytest.raises(ValueError, match=match):
        asf_amc_positions(asf_amc[0], path)


def test_amc_frame_gap_warns_naming_the_line(asf_amc, tmp_path):
    import warnings
    path = write(tmp_path, 'gap.amc', AMC.replace('2\nroot 0', '5\nroot 0'))
    with pytest.warns(UserWarning, match=r"gap.amc: line 8: frame 5 follows "
                      r"frame 1; 3 frame number\(s\) missing in 1 gap"):
        clip = asf_amc_positions(asf_amc[0], path)
    np.testing.assert_array_equal(clip.positions,
                                  asf_amc_positions(*asf_amc).positions)
    # any first number, consecutive after it: no warning
    shifted = write(tmp_path, 'shifted.amc', AMC.replace(
        '1\nroot 1', '101\nroot 1').replace('2\nroot 0', '102\nroot 0'))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        asf_amc_positions(asf_amc[0], shifted)


def test_latin1_byte_names_file_and_line(asf_amc, tmp_path):
    amc = tmp_path / 'latin.amc'
    amc.write_bytes(AMC.replace(':DEGREES', ':DEGREES\n# caf\xe9').encode(
        'latin-1'))
    with pytest.raises(ValueError, match=r"latin.amc: line 4, column 6: not "
                       r"a text file in UTF-8 \(byte 0xe9"):
        asf_amc_positions(asf_amc[0], str(amc))
    asf = tmp_path / 'latin.asf'
    asf.write_bytes(ASF.replace(':name', '# \xb0\n:name').encode('latin-1'))
    with pytest.raises(ValueError, match=r"latin.asf: line 3, column 3"):
        read_asf(str(asf))
