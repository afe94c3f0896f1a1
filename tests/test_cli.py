import subprocess
import sys
from pathlib import Path

import pytest

from torch_geometric_remul import __version__
from torch_geometric_remul.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert 'train' in out and 'build-kernels' in out


def test_bad_argument():
    with pytest.raises(SystemExit):
        main(['check'])  # the run directory is missing


def test_demo_is_an_example_not_a_command(capsys):
    # the comparison with PyG's RandomRotate is examples/
    # rigid_transforms_vs_pyg.py (run by tests/test_examples.py)
    with pytest.raises(SystemExit):
        main(['demo'])
    assert "invalid choice: 'demo'" in capsys.readouterr().err
    assert (ROOT / 'examples' / 'rigid_transforms_vs_pyg.py').is_file()


def test_cli_imports_no_private_kernel_module():
    import ast

    import torch_geometric_remul.cli as cli
    tree = ast.parse(Path(cli.__file__).read_text())
    imported = {(node.module, a.name) for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) for a in node.names}
    assert not any(name.startswith('_') and module.endswith('_kernels')
                   for module, name in imported)


def test_build_kernels_names_the_cache(monkeypatch, tmp_path, capsys):
    import torch_geometric_remul.typing as remul_typing
    from torch_geometric_remul._kernels import kernel_cache_dir
    from torch_geometric_remul.cli import build_parser
    monkeypatch.setenv('REMUL_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.setattr(remul_typing, 'WITH_CPU_KERNEL', False)
    assert kernel_cache_dir() == tmp_path / 'cache'
    args = build_parser().parse_args(['build-kernels', '--timeout', '1'])
    assert args.func(args) == 0  # a disabled kernel is no failure
    out = capsys.readouterr().out
    assert f'CPU kernel (C, cache {tmp_path / "cache"}): disabled' in out


def test_module_entry_point():
    res = subprocess.run([sys.executable, '-m', 'torch_geometric_remul',
                          '--version'], capture_output=True, text=True,
                         cwd=ROOT)
    assert res.returncode == 0
    assert __version__ in res.stdout


@pytest.mark.parametrize('args,message', [
    (['--samples', '0'], "'--samples' must be >= 1 (got 0)"),
    (['--graphs', '0'], "'--graphs' must be >= 1 (got 0)"),
    (['--group', 'XYZ'], "'--group' must be one of SO3"),
])
def test_check_options_are_checked_first(tmp_path, capsys, args, message):
    # checked before the run is even looked at (it does not exist here)
    assert main(['check', str(tmp_path / 'run')] + args) == 1
    err = capsys.readouterr().err
    assert err.startswith(f'remul check: error: {message}')
    assert err.count('\n') == 1 and 'Traceback' not in err


def test_train_interrupted_before_training_starts(tmp_path, capsys,
                                                  monkeypatch):
    import torch_geometric_remul.train.loop as loop

    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, 'load_task', interrupted)
    run = tmp_path / 'run'
    assert main(['train', '--no-progress', '--data-root',
                 str(tmp_path / 'data'), '--run-dir', str(run)]) == 130
    assert 'interrupted before training started' in capsys.readouterr().err
    assert not run.exists()


def test_train_help_states_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(['train', '--help'])
    out = ' '.join(capsys.readouterr().out.split())
    for text in ('--overwrite', 'only --epochs and --data-root may change',
                 'default: remul', 'default: 0.01', 'default: data'):
        assert text in out, text
