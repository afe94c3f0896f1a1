"""The BVH reader (torch_geometric_remul.datasets.bvh)."""
import numpy as np
import pytest

from tests.datasets._mocap_files import BVH, assert_malformed, write
from torch_geometric_remul.datasets.bvh import read_bvh


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
    assert_malformed(tmp_path, 'bad.bvh', text, match, read_bvh)


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
    path = write(tmp_path, 'bad.bvh', text)
    with pytest.raises(ValueError, match=f'bad.bvh: line {line}: {match}'):
        read_bvh(path)
