"""The package metadata and what goes into the wheel and the sdist (the
build itself, twine check and an install into a fresh environment run in
.ci/check_dist.sh, `make check-dist`)."""
import re
from pathlib import Path

import pytest

import torch_geometric_remul

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / 'torch_geometric_remul'


def test_nothing_test_only_inside_the_package():
    # the wheel ships the package directory: no pytest configuration or
    # test module may live there
    found = [p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob('*.py')
             if p.name == 'conftest.py' or p.name.startswith('test_')]
    assert found == []


def test_pyproject_metadata():
    tomllib = pytest.importorskip('tomllib')  # Python >= 3.11
    meta = tomllib.loads((ROOT / 'pyproject.toml').read_text())
    project = meta['project']
    assert project['name'] == 'torch-geometric-remul'
    assert project['license'] == 'MIT'
    for name in project['license-files']:
        assert 'MIT License' in (ROOT / name).read_text()
    assert project['authors'] == [{'name': 'The torch_geometric_remul '
                                           'authors'}]
    classifiers = project['classifiers']
    assert any(c.startswith('Development Status ::') for c in classifiers)
    low = int(re.fullmatch(r'>=3\.(\d+)', project['requires-python'])[1])
    versions = sorted(int(c.rsplit('.', 1)[1]) for c in classifiers
                      if re.fullmatch(r'Programming Language :: Python :: '
                                      r'3\.\d+', c))
    assert versions and versions[0] == low
    # the accelerators compile against the installed torch: no extra can
    # install them (pip builds extras in isolation, without torch)
    extras = project['optional-dependencies']
    assert not any('torch-scatter' in d or 'torch-cluster' in d
                   for deps in extras.values() for d in deps)
    # the version is read from the package
    assert meta['tool']['setuptools']['dynamic']['version'] == {
        'attr': 'torch_geometric_remul.__version__'}
    assert re.fullmatch(r'\d+\.\d+\.\d+', torch_geometric_remul.__version__)
    # only package data listed here goes into the wheel
    assert meta['tool']['setuptools']['include-package-data'] is False


def test_sdist_manifest_carries_the_whole_suite():
    manifest = (ROOT / 'MANIFEST.in').read_text().split('\n')
    for line in ('graft tests', 'graft docs', 'graft examples',
                 'graft benchmarks'):
        assert line in manifest
    included = ' '.join(x for x in manifest if x.startswith('include '))
    for name in ('conftest.py', 'setup.cfg', 'LICENSE', 'README.md'):
        assert name in included.split()
