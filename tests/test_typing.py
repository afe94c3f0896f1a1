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
