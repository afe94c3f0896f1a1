"""What the motion-capture readers share (missing files, encodings) and
the names re-exported by torch_geometric_remul.datasets.mocap_formats."""
import numpy as np
import pytest

from tests.datasets._mocap_files import AMC, ASF, BVH
from torch_geometric_remul.datasets import (
    asf_amc_positions,
    read_asf,
    read_bvh,
)


def test_names_are_importable_from_the_old_places():
    from torch_geometric_remul import datasets
    from torch_geometric_remul.datasets import asf_amc, bvh, mocap_formats
    assert mocap_formats.read_bvh is bvh.read_bvh is datasets.read_bvh
    for name in ('read_asf', 'read_amc', 'asf_amc_positions', 'AsfSkeleton',
                 'AsfBone'):
        assert getattr(mocap_formats, name) is getattr(asf_amc, name)
    assert mocap_formats.MocapClip is datasets.MocapClip
    assert set(mocap_formats.__all__) >= {'MocapClip', 'PROXY_NAME_PREFIX'}


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.asf'):
        read_asf(str(tmp_path / 'nope.asf'))
    with pytest.raises(FileNotFoundError, match='nope.bvh'):
        read_bvh(str(tmp_path / 'nope.bvh'))


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
