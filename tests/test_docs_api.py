"""The API reference documents every public name.

Every name in the ``__all__`` of each public subpackage

* has a docstring with an example (a ``>>>`` line or an ``Example`` section;
  the examples run as doctests, see setup.cfg), or is listed in
  :data:`EXEMPT` with the reason why not, and
* is listed on the subpackage's page of the Sphinx site (``docs/api``).

And the Sphinx configuration fails the build on a reference to a name of
this package that does not exist (checked by building a small project with
``docs/conf.py`` when Sphinx is installed: ``make docs`` installs it).
"""
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import torch_geometric_remul

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / 'docs' / 'api'

# subpackage -> its page in docs/api
PAGES = {
    'torch_geometric_remul': 'package.rst',
    'torch_geometric_remul.group': 'group.rst',
    'torch_geometric_remul.transforms': 'transforms.rst',
    'torch_geometric_remul.nn': 'nn.rst',
    'torch_geometric_remul.nn.weighting': 'weighting.rst',
    'torch_geometric_remul.nn.models': 'models.rst',
    'torch_geometric_remul.metrics': 'metrics.rst',
    'torch_geometric_remul.graph': 'graph.rst',
    'torch_geometric_remul.datasets': 'datasets.rst',
    'torch_geometric_remul.train': 'train.rst',
    'torch_geometric_remul.typing': 'typing.rst',
    'torch_geometric_remul.debug': 'debug.rst',
    'torch_geometric_remul.testing': 'testing.rst',
    'torch_geometric_remul.layout': 'layout.rst',
    'torch_geometric_remul.batching': 'batching.rst',
    'torch_geometric_remul.roles': 'roles.rst',
}

CONSTANT = 'a constant, described on its API page (no behaviour to show)'
ALIAS = 'a type alias, described on its API page'
SUBPACKAGE = ('a subpackage: its names are documented one by one on its '
              'own API page')

# (module, name) -> why the name has no docstring example
EXEMPT = {
    ('torch_geometric_remul', '__version__'): CONSTANT,
    **{('torch_geometric_remul', name): SUBPACKAGE
       for name in ('group', 'transforms', 'graph', 'datasets', 'nn',
                    'metrics')},
    ('torch_geometric_remul.group', 'GROUPS'): CONSTANT,
    ('torch_geometric_remul.group', 'ROTATION_GROUPS'): CONSTANT,
    ('torch_geometric_remul.transforms', 'ROTATION_KEY'): CONSTANT,
    ('torch_geometric_remul.transforms', 'TRANSLATION_KEY'): CONSTANT,
    ('torch_geometric_remul', 'testing'): SUBPACKAGE,
    ('torch_geometric_remul.layout', 'LEVELS'): CONSTANT,
    ('torch_geometric_remul.batching', 'LEVELS'): CONSTANT,
    ('torch_geometric_remul.roles', 'INPUT_ROLES'): CONSTANT,
    ('torch_geometric_remul.testing', 'DEFAULT_TOLERANCES'): CONSTANT,
    ('torch_geometric_remul.roles', 'OUTPUT_ROLES'): CONSTANT,
    ('torch_geometric_remul.group', 'DEFAULT_GROUP'): CONSTANT,
    ('torch_geometric_remul.nn', 'models'): SUBPACKAGE,
    ('torch_geometric_remul.nn', 'weighting'): SUBPACKAGE,
    ('torch_geometric_remul.nn.models', 'MODELS'): CONSTANT,
    ('torch_geometric_remul.nn.weighting', 'WEIGHTINGS'): CONSTANT,
    ('torch_geometric_remul.datasets', 'MD17_MOLECULES'): CONSTANT,
    ('torch_geometric_remul.datasets', 'STANDIN_SMILES'): CONSTANT,
    ('torch_geometric_remul.typing', 'WITH_TORCH_SCATTER'): CONSTANT,
    ('torch_geometric_remul.typing', 'WITH_TORCH_CLUSTER'): CONSTANT,
    ('torch_geometric_remul.typing', 'WITH_CPU_KERNEL'): CONSTANT,
    ('torch_geometric_remul.typing', 'WITH_TRITON'): CONSTANT,
    ('torch_geometric_remul.typing', 'OptTensor'): ALIAS,
    ('torch_geometric_remul.typing', 'PairTensor'): ALIAS,
    ('torch_geometric_remul.typing', 'Keys'): ALIAS,
    ('torch_geometric_remul.train', 'TASKS'): CONSTANT,
    ('torch_geometric_remul.train', 'LOSSES'): CONSTANT,
    ('torch_geometric_remul.train', 'WEIGHTINGS'): CONSTANT,
    ('torch_geometric_remul.train', 'TASK_DEFAULTS'): CONSTANT,
}

EXAMPLE_SECTION = re.compile(r'^\s*Examples?:?\s*$', re.M)


def public_names():
    for module in PAGES:
        mod = importlib.import_module(module)
        for name in mod.__all__:
            yield module, name


def has_example(obj) -> bool:
    # the object's own docstring (inspect.getdoc would fall back to a base
    # class's)
    doc = obj.__doc__ if isinstance(obj.__doc__, str) else ''
    return '>>>' in doc or EXAMPLE_SECTION.search(doc) is not None


def test_every_public_subpackage_has_a_page():
    found = {'torch_geometric_remul', 'torch_geometric_remul.typing',
             'torch_geometric_remul.debug', 'torch_geometric_remul.testing',
             'torch_geometric_remul.layout', 'torch_geometric_remul.roles'}
    for info in pkgutil.walk_packages(torch_geometric_remul.__path__,
                                      'torch_geometric_remul.'):
        parts = info.name.split('.')
        if info.ispkg and not any(p.startswith('_') for p in parts):
            found.add(info.name)
    assert found == set(PAGES)
    for page in PAGES.values():
        assert (API / page).exists(), page
        assert f'   {page[:-4]}\n' in (API / 'index.rst').read_text(), page


@pytest.mark.parametrize('module,name', list(public_names()),
                         ids=lambda x: x)
def test_public_name_has_an_example(module, name):
    obj = getattr(importlib.import_module(module), name)
    if (module, name) in EXEMPT:
        assert EXEMPT[module, name].strip()
        return
    assert not inspect.ismodule(obj), f'{module}.{name}: list it in EXEMPT'
    assert has_example(obj), (
        f'{module}.{name} has no example in its docstring: add one (">>>" '
        f'lines, run as a doctest) or list it in EXEMPT with a reason')


def test_exemptions_are_current():
    names = set(public_names())
    stale = [key for key in EXEMPT if key not in names]
    assert not stale, f'not public (any more): {stale}'


def _listed(page_text: str, module: str, name: str) -> bool:
    n = re.escape(name)
    patterns = [
        # a directive documenting it on this page
        rf'^\.\. (auto)?(class|function|data|exception|attribute|module)::'
        rf'\s+([\w.]+\.)?{n}\s*$',
        # a reference to where it is documented (re-exports)
        rf':(class|func|data|mod|obj):`~?[\w.]*\b{n}`',
    ]
    if any(re.search(p, page_text, re.M) for p in patterns):
        return True
    # automodule with every member of __all__
    m = re.search(rf'^\.\. automodule:: {re.escape(module)}\n'
                  rf'((?:   :.*\n)*)', page_text, re.M)
    return m is not None and re.search(r'^   :members:\s*$', m.group(1),
                                       re.M) is not None


@pytest.mark.parametrize('module,name', list(public_names()),
                         ids=lambda x: x)
def test_public_name_is_on_its_page(module, name):
    text = (API / PAGES[module]).read_text()
    assert re.search(rf'^\.\. automodule:: {re.escape(module)}$', text,
                     re.M), f'{PAGES[module]} does not document {module}'
    assert _listed(text, module, name), (
        f'{module}.{name} is not listed on docs/api/{PAGES[module]}')


def test_stated_values_are_current():
    # ``.. data:: NAME`` with ``:value:`` on a page must match the code
    for module, page in PAGES.items():
        mod = importlib.import_module(module)
        text = (API / page).read_text()
        for name, value in re.findall(
                r'^\.\. data:: (\w+)\n   :value: (.+)$', text, re.M):
            assert repr(getattr(mod, name)) == value, (page, name)


# The build is strict about references ######################################

def _build(tmp_path, body):
    sphinx_build = pytest.importorskip('sphinx.cmd.build')
    pytest.importorskip('myst_parser')
    src = tmp_path / 'src'
    src.mkdir()
    (src / 'conf.py').write_text(
        f'exec(compile(open({str(ROOT / "docs" / "conf.py")!r}).read(), '
        f'"conf.py", "exec"))\n'
        'html_theme = "basic"\n')
    (src / 'index.rst').write_text(
        'Test\n====\n\n'
        '.. autoclass:: torch_geometric_remul.nn.weighting.GradNorm\n'
        '   :no-members:\n   :no-show-inheritance:\n\n' + body + '\n')
    return sphinx_build.build_main([
        '-W', '-q', '-b', 'html', '-d', str(tmp_path / 'doctrees'),
        str(src), str(tmp_path / 'html')])


# napoleon itself uses an autodoc interface that Sphinx 9 deprecates
_SPHINX_DEPRECATION = pytest.mark.filterwarnings(
    'ignore:The mapping interface for autodoc options')


@_SPHINX_DEPRECATION
def test_build_resolves_documented_and_third_party_names(tmp_path):
    assert _build(tmp_path, (
        ':class:`torch_geometric_remul.nn.weighting.GradNorm`, '
        ':class:`torch_geometric_remul.nn.GradNorm` (a re-export), '
        ':class:`torch.Tensor`, :class:`torch_geometric.data.Batch`.')) == 0


@_SPHINX_DEPRECATION
@pytest.mark.parametrize('target', [
    'torch_geometric_remul.nn.NoSuchLoss',               # a typo
    'torch_geometric_remul.nn.models.base.mlp',  # exists, undocumented
])
def test_build_fails_on_a_missing_reference(tmp_path, target):
    assert _build(tmp_path, f':class:`{target}`') != 0


def test_training_docstrings_share_one_trained_run():
    """Docstring examples of train/ that need a trained run use the one of
    train()'s example (a doctest fixture in conftest.py) instead of each
    training a model of their own."""
    import doctest

    import torch_geometric_remul.train as train_pkg
    training = []
    for info in pkgutil.iter_modules(train_pkg.__path__,
                                     'torch_geometric_remul.train.'):
        module = importlib.import_module(info.name)
        for test in doctest.DocTestFinder().find(module):
            if any(re.search(r'\btrain\(', ex.source)
                   for ex in test.examples):
                training.append(test.name)
    assert training == ['torch_geometric_remul.train.loop.train']
