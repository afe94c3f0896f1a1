"""Fixtures shared by the dataset tests."""
import pytest

from tests.datasets._mocap_files import AMC, ASF


@pytest.fixture
def asf_amc(tmp_path):
    asf = tmp_path / 'test.asf'
    amc = tmp_path / 'test_01.amc'
    asf.write_text(ASF)
    amc.write_text(AMC)
    return str(asf), str(amc)
