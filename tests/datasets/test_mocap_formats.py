import math

import numpy as np
import pytest

from torch_geometric_remul.datasets import (
    asf_amc_positions,
    read_amc,
    read_asf,
    read_bvh,
)

ASF = """# a hand-written two-bone skeleton
:version 1.10
:name test_skeleton
:units
  mass 1.0
  length 1.0
  angle deg
:documentation
  for the forward-kinematics test
:root
   order TX TY TZ RX RY RZ
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
  begin
     id 1
     name a
     direction 0 1 0
     length 2
     axis 0 0 0  XYZ
    dof rz
    limits (-180.0 180.0)
  end
  begin
     id 2
     name b
     direction 2 0 0
     length 1
     axis 0 0 90  XYZ
    dof rx
    limits (-180.0 180.0)
  end
  begin
     id 3
     name c
     direction 0 0 1
     length 0.5
     axis 0 0 0  XYZ
  end
:hierarchy
  begin
    root a c
    a b
  end
"""

AMC = """#!OML:ASF test.asf
:FULLY-SPECIFIED
:DEGREES
1
root 1 2 3 0 0 0
a 0
b 0
2
root 0 0 0 0 90 0
a 90
b 30
"""

S = math.sin(math.radians(30))
C = math.cos(math.radians(30))


@pytest.fixture
def asf_amc(tmp_path):
    asf = tmp_path / 'test.asf'
    amc = tmp_path / 'test_01.amc'
    asf.write_text(ASF)
    amc.write_text(AMC)
    return str(asf), str(amc)


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


BVH = """HIERARCHY
ROOT hips
{
  OFFSET 0.0 0.0 0.0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT spine
  {
    OFFSET 0.0 2.0 0.0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0.0 1.0 0.0
    }
  }
  JOINT leg
  {
    OFFSET 1.0 0.0 0.0
    CHANNELS 3 Zrotation Xrotation Yrotation
  }
}
MOTION
Frames: 3
Frame Time: 0.008333
1 2 3 0 0 0 0 0 0 0 0 0
0 0 0 90 0 0 0 90 0 0 0 0
0 0 0 0 90 0 90 0 0 0 0 0
"""


def test_bvh_forward_kinematics(tmp_path):
    path = tmp_path / 'clip.bvh'
    path.write_text(BVH)
    clip = read_bvh(str(path))
    assert clip.joint_names == ['hips', 'spine', 'spine_end', 'leg']
    assert clip.parents == [-1, 0, 1, 0]
    assert clip.frame_time == pytest.approx(0.008333)
    X = clip.positions
    assert X.shape == (3, 4, 3)
    np.testing.assert_allclose(X[0], [[1, 2, 3], [1, 4, 3], [1, 5, 3],
                                      [2, 2, 3]], atol=1e-12)
    # frame 2: hips Rz90 maps (x, y, z) -> (-y, x, z); spine at
    # Rz90 (0, 2, 0) = (-2, 0, 0); its local Rx90 sends the end offset
    # (0, 1, 0) to (0, 0, 1), unchanged by Rz90; leg at Rz90 (1, 0, 0)
    np.testing.assert_allclose(X[1], [[0, 0, 0], [-2, 0, 0], [-2, 0, 1],
                                      [0, 1, 0]], atol=1e-12)
    # frame 3: intrinsic order Z X Y at the hips with X = 90 only: Rx90
    # maps (x, y, z) -> (x, -z, y); spine (0, 0, 2); spine's own Rz90 sends
    # (0, 1, 0) to (-1, 0, 0), then Rx90 leaves it: end (-1, 0, 2)
    np.testing.assert_allclose(X[2], [[0, 0, 0], [0, 0, 2], [-1, 0, 2],
                                      [1, 0, 0]], atol=1e-12)


def test_bvh_rotation_order_matters(tmp_path):
    # Z then X (intrinsic) differs from X then Z
    a = BVH.replace('0 0 0 0 90 0 90 0 0 0 0 0', '0 0 0 90 90 0 0 0 0 0 0 0')
    b = a.replace('CHANNELS 6 Xposition Yposition Zposition Zrotation '
                  'Xrotation', 'CHANNELS 6 Xposition Yposition Zposition '
                  'Xrotation Zrotation')
    (tmp_path / 'a.bvh').write_text(a)
    (tmp_path / 'b.bvh').write_text(b)
    pa = read_bvh(str(tmp_path / 'a.bvh')).positions[2]
    pb = read_bvh(str(tmp_path / 'b.bvh')).positions[2]
    # Rz90 Rx90 (0, 2, 0) = Rz90 (0, 0, 2) = (0, 0, 2)
    np.testing.assert_allclose(pa[1], [0, 0, 2], atol=1e-12)
    # Rx90 Rz90 (0, 2, 0) = Rx90 (-2, 0, 0) = (-2, 0, 0)
    np.testing.assert_allclose(pb[1], [-2, 0, 0], atol=1e-12)


# Malformed input ############################################################

def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


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
    path = _write(tmp_path, 'bad.asf', text)
    with pytest.raises(ValueError, match=match) as info:
        read_asf(path)
    assert 'bad.asf' in str(info.value)


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
    path = _write(tmp_path, 'bad.amc', text)
    with pytest.raises(ValueError, match=match) as info:
        asf_amc_positions(asf_amc[0], path)
    assert 'bad.amc' in str(info.value)


@pytest.mark.parametrize('text, match', [
    (BVH[:-30], r'expected 3 frames x 12 channels'),
    (BVH[:BVH.index('MOTION')], 'no MOTION section'),
    (BVH.replace('HIERARCHY', 'HIERARCH'), 'not a BVH file'),
    (BVH.replace('Frames: 3', 'Frames: x'), "bad 'Frames:'"),
    (BVH.replace('Zrotation Xrotation Yrotation\n    End',
                 'Zrotation Xrotation Wrotation\n    End'),
     'unknown channels'),
    (BVH.replace('  JOINT leg', '  JOINT leg\n  {\n}\n  JOINT leg2'),
     r'line \d+: expected OFFSET'),
    (BVH.replace('0 0 0 90 0 0 0 90 0 0 0 0', '0 0 0 90 0 0 0 nan 0 0 0 0'),
     'NaN'),
    (BVH.replace('}\nMOTION', '}\n}\nMOTION'), 'after the root joint'),
    (BVH[:BVH.index('  JOINT leg')] + 'MOTION\nFrames: 1\n', 'unexpected end'),
])
def test_malformed_bvh(tmp_path, text, match):
    path = _write(tmp_path, 'bad.bvh', text)
    with pytest.raises(ValueError, match=match) as info:
        read_bvh(path)
    assert 'bad.bvh' in str(info.value)


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.asf'):
        read_asf(str(tmp_path / 'nope.asf'))
    with pytest.raises(FileNotFoundError, match='nope.bvh'):
        read_bvh(str(tmp_path / 'nope.bvh'))


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
    path = _write(tmp_path, 'bad.amc', text)
    with pytest.raises(ValueError, match=match):
        asf_amc_positions(asf_amc[0], path)


def test_amc_frame_gap_warns_naming_the_line(asf_amc, tmp_path):
    import warnings
    path = _write(tmp_path, 'gap.amc', AMC.replace('2\nroot 0', '5\nroot 0'))
    with pytest.warns(UserWarning, match=r"gap.amc: line 8: frame 5 follows "
                      r"frame 1; 3 frame number\(s\) missing in 1 gap"):
        clip = asf_amc_positions(asf_amc[0], path)
    np.testing.assert_array_equal(clip.positions,
                                  asf_amc_positions(*asf_amc).positions)
    # any first number, consecutive after it: no warning
    shifted = _write(tmp_path, 'shifted.amc', AMC.replace(
        '1\nroot 1', '101\nroot 1').replace('2\nroot 0', '102\nroot 0'))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        asf_amc_positions(asf_amc[0], shifted)


def test_utf8_byte_order_mark_is_accepted(asf_amc, tmp_path):
    asf, amc = tmp_path / 'bom.asf', tmp_path / 'bom.amc'
    asf.write_bytes(b'\xef\xbb\xbf' + ASF.encode())
    amc.write_bytes(b'\xef\xbb\xbf' + AMC.encode())
    clip = asf_amc_positions(str(asf), str(amc))
    np.testing.assert_array_equal(clip.positions,
                                  asf_amc_positions(*asf_amc).positions)
    bvh = tmp_path / 'bom.bvh'
    bvh.write_bytes(b'\xef\xbb\xbf' + BVH.encode())
    assert read_bvh(str(bvh)).positions.shape[0] == 3


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


@pytest.mark.parametrize('bad, match', [
    ('nan', r"'nan' \(frame 2, channel 8\): motion data contains NaN"),
    ('inf', r"'inf' \(frame 2, channel 8\): motion data contains NaN"),
    ('x', r"'x' \(frame 2, channel 8\): motion data must be numbers"),
])
def test_bvh_bad_value_names_the_line(tmp_path, bad, match):
    text = BVH.replace('0 0 0 90 0 0 0 90 0 0 0 0',
                       f'0 0 0 90 0 0 0 {bad} 0 0 0 0')
    line = next(i for i, t in enumerate(text.splitlines(), start=1)
                if f' {bad} ' in t)
    path = _write(tmp_path, 'bad.bvh', text)
    with pytest.raises(ValueError, match=f'bad.bvh: line {line}: {match}'):
        read_bvh(path)
