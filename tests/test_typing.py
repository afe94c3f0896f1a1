import torch_geometric_remul.typing as remul_typing


def test_force_native_restores_flags():
    before = (remul_typing.WITH_TORCH_SCATTER, remul_typing.WITH_TORCH_CLUSTER,
              remul_typing.WITH_CPU_KERNEL)
    with remul_typing.force_native():
        assert not remul_typing.WITH_TORCH_SCATTER
        assert not remul_typing.WITH_TORCH_CLUSTER
        assert not remul_typing.WITH_CPU_KERNEL
    after = (remul_typing.WITH_TORCH_SCATTER, remul_typing.WITH_TORCH_CLUSTER,
             remul_typing.WITH_CPU_KERNEL)
    assert before == after


def test_flags_reflect_imports():
    try:
        import torch_scatter  # noqa: F401
        has_scatter = True
    except ImportError:
        has_scatter = False
    if not remul_typing._FORCE_NATIVE:
        assert remul_typing.WITH_TORCH_SCATTER == has_scatter


def test_shared_aliases_are_defined_once():
    """``Keys`` is defined in typing.py and ``MODES`` in nn/loss.py only; the
    modules that use them import them instead of keeping their own copies."""
    import ast
    from pathlib import Path
    root = Path(remul_typing.__file__).parent
    defined = {'Keys': [], 'MODES': []}
    for path in sorted(root.rglob('*.py')):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and \
                            target.id in defined:
                        defined[target.id].append(
                            path.relative_to(root).as_posix())
    assert defined == {'Keys': ['typing.py'], 'MODES': ['nn/loss.py']}
    from torch_geometric_remul.nn import loss
    from torch_geometric_remul.train import config
    assert config.MODES is loss.MODES and loss.Keys is remul_typing.Keys
