import contextlib

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from torch_geometric_remul import debug
from torch_geometric_remul.group import (
    GROUPS,
    RigidTransform,
    ptr_to_batch,
    random_rotations,
)

F64 = torch.float64


def sizes_to_ptr(sizes):
    ptr = torch.zeros(len(sizes) + 1, dtype=torch.long)
    ptr[1:] = torch.tensor(sizes, dtype=torch.long).cumsum(0)
    return ptr


def reference_points(T, x, sizes):
    """Graph-by-graph loop, the obvious (slow) definition."""
    out, start = [], 0
    for b, n in enumerate(sizes):
        R, t = T.rotation[b], T.translation[b]
        out.append(x[start:start + n] @ R.t() + t)
        start += n
    return torch.cat(out) if out else x.clone()


def pairwise_dist(x, sizes):
    out, start = [], 0
    for n in sizes:
        out.append(torch.cdist(x[start:start + n], x[start:start + n]))
        start += n
    return out


@pytest.mark.parametrize('group', list(GROUPS))
def test_sample_groups(group):
    g = torch.Generator().manual_seed(0)
    T = RigidTransform.sample(200, group, translation_std=2.0, generator=g,
                              dtype=F64)
    assert T.num_graphs == 200 and T.dtype == F64
    R, t = T.rotation, T.translation
    assert R.shape == (200, 3, 3) and t.shape == (200, 3)
    rot_group, translate = GROUPS[group]
    if translate:
        assert 1.6 < t.std().item() < 2.4
    else:
        assert torch.count_nonzero(t) == 0
    det = T.determinant()
    if rot_group is None:
        assert torch.equal(R, torch.eye(3, dtype=F64).expand(200, 3, 3))
    elif rot_group == 'O3':
        assert (det < 0).any() and (det > 0).any()
    else:
        assert torch.allclose(det, torch.ones_like(det), atol=1e-10)


@pytest.mark.parametrize('dtype,tol', [(F64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize('group', ['SE3', 'E3', 'SO2', 'T3', 'SO3'])
def test_inverse_roundtrip(dtype, tol, group):
    g = torch.Generator().manual_seed(1)
    sizes = [3, 1, 0, 5, 2]
    ptr = sizes_to_ptr(sizes)
    x = torch.randn(sum(sizes), 3, generator=g, dtype=dtype)
    T = RigidTransform.sample(len(sizes), group, generator=g, dtype=dtype)
    y = T.apply_points(x, ptr=ptr)
    assert torch.allclose(T.inverse().apply_points(y, ptr=ptr), x, atol=tol)
    v = T.apply_vectors(x, ptr=ptr)
    assert torch.allclose(T.inverse().apply_vectors(v, ptr=ptr), x,
                          atol=tol)
    ident = T.compose(T.inverse())
    assert torch.allclose(ident.rotation, torch.eye(3, dtype=dtype).expand(
        len(sizes), 3, 3), atol=tol)
    assert torch.allclose(ident.translation,
                          torch.zeros(len(sizes), 3, dtype=dtype), atol=tol)


def test_compose_order_and_broadcast():
    g = torch.Generator().manual_seed(2)
    sizes = [4, 2, 3]
    batch = ptr_to_batch(sizes_to_ptr(sizes))
    x = torch.randn(9, 3, generator=g, dtype=F64)
    A = RigidTransform.sample(3, 'E3', generator=g, dtype=F64)
    B = RigidTransform.sample(3, 'SE3', generator=g, dtype=F64)
    AB = A.compose(B)
    expected = A.apply_points(B.apply_points(x, batch), batch)
    assert torch.allclose(AB.apply_points(x, batch), expected, atol=1e-12)
    assert torch.allclose((A @ B).apply_vectors(x, batch),
                          A.apply_vectors(B.apply_vectors(x, batch), batch),
                          atol=1e-12)
    # a single transform broadcasts over the other's graphs
    C = RigidTransform.sample(1, 'SE3', generator=g, dtype=F64)
    CA = C.compose(A)
    assert CA.num_graphs == 3
    assert torch.allclose(CA.apply_points(x, batch),
                          C.apply_points(A.apply_points(x, batch)),
                          atol=1e-12)
    assert A.compose(C).num_graphs == 3
    with pytest.raises(ValueError, match='cannot compose'):
        A.compose(RigidTransform.sample(2, dtype=F64))
    with pytest.raises(TypeError, match="'other'"):
        A.compose(torch.eye(3))


@pytest.mark.parametrize('dtype,tol', [(F64, 1e-12), (torch.float32, 1e-5)])
def test_per_graph_matches_loop_all_paths(dtype, tol, backend):
    g = torch.Generator().manual_seed(3)
    for sizes in ([3, 1, 0, 5, 2], [4, 4, 4], [6], [0, 0], [1, 1, 1, 1]):
        N, B = sum(sizes), len(sizes)
        ptr = sizes_to_ptr(sizes)
        batch = ptr_to_batch(ptr)
        x = torch.randn(N, 3, generator=g, dtype=dtype)
        T = RigidTransform.sample(B, 'E3', generator=g, dtype=dtype)
        ref = reference_points(T, x, sizes)
        for out in (T.apply_points(x, ptr=ptr), T.apply_points(x, batch)):
            assert out.shape == x.shape and out.dtype == dtype
            assert torch.allclose(out, ref, atol=tol)
        if B == 1:
            assert torch.allclose(T.apply_points(x), ref, atol=tol)


def test_unsorted_batch_index():
    g = torch.Generator().manual_seed(4)
    batch = torch.tensor([2, 0, 1, 0, 2, 2])
    x = torch.randn(6, 3, generator=g, dtype=F64)
    T = RigidTransform.sample(3, generator=g, dtype=F64)
    out = T.apply_points(x, batch)
    for i, b in enumerate(batch.tolist()):
        exp = T.rotation[b] @ x[i] + T.translation[b]
        assert torch.allclose(out[i], exp, atol=1e-12)


def test_graphs_get_distinct_transforms():
    g = torch.Generator().manual_seed(5)
    T = RigidTransform.sample(64, generator=g, dtype=F64)
    R = T.rotation.reshape(64, 9)
    assert torch.cdist(R, R).add(torch.eye(64, dtype=F64)).min() > 1e-3


def test_isometry_and_translation_invariance_of_vectors():
    g = torch.Generator().manual_seed(6)
    sizes = [5, 2, 7]
    ptr = sizes_to_ptr(sizes)
    x = torch.randn(14, 3, generator=g, dtype=F64)
    T = RigidTransform.sample(3, 'E3', translation_std=10.0, generator=g,
                              dtype=F64)
    y = T.apply_points(x, ptr=ptr)
    for d0, d1 in zip(pairwise_dist(x, sizes), pairwise_dist(y, sizes)):
        assert torch.allclose(d0, d1, atol=1e-10)
    rot_only = RigidTransform(T.rotation)
    assert torch.equal(T.apply_vectors(x, ptr=ptr),
                       rot_only.apply_vectors(x, ptr=ptr))
    shift = RigidTransform(translation=T.translation)
    assert torch.equal(shift.apply_vectors(x, ptr=ptr), x)
    assert torch.allclose(shift.apply_points(x, ptr=ptr) - x,
                          T.translation.repeat_interleave(
                              torch.tensor(sizes), 0), atol=1e-12)


def test_pseudovectors_follow_cross_product():
    g = torch.Generator().manual_seed(7)
    batch = torch.tensor([0, 0, 1, 1, 1])
    a = torch.randn(5, 3, generator=g, dtype=F64)
    b = torch.randn(5, 3, generator=g, dtype=F64)
    T = RigidTransform(-random_rotations(2, generator=g, dtype=F64))
    assert (T.determinant() < 0).all()
    lhs = torch.cross(T.apply_vectors(a, batch), T.apply_vectors(b, batch),
                      dim=-1)
    rhs = T.apply_pseudovectors(torch.cross(a, b, dim=-1), batch)
    assert torch.allclose(lhs, rhs, atol=1e-12)
    assert torch.equal(T.apply(a, 'scalar', batch), a)
    with pytest.raises(ValueError, match="'role'"):
        T.apply(a, 'tensor', batch)


def test_inputs_not_mutated():
    g = torch.Generator().manual_seed(8)
    ptr = sizes_to_ptr([3, 3])
    x = torch.randn(6, 3, generator=g, dtype=F64)
    x0 = x.clone()
    T = RigidTransform.sample(2, generator=g, dtype=F64)
    R0, t0 = T.rotation.clone(), T.translation.clone()
    for out in (T.apply_points(x, ptr=ptr), T.apply_vectors(x, ptr=ptr),
                T.apply_points(x, ptr_to_batch(ptr)),
                RigidTransform(translation=T.translation).apply_vectors(
                    x, ptr=ptr)):
        assert out.data_ptr() != x.data_ptr()
    T.inverse(), T.compose(T)
    assert torch.equal(x, x0)
    assert torch.equal(T.rotation, R0) and torch.equal(T.translation, t0)


def test_autograd():
    g = torch.Generator().manual_seed(9)
    sizes = [2, 3]
    ptr = sizes_to_ptr(sizes)
    x = torch.randn(5, 3, generator=g, dtype=F64, requires_grad=True)
    R = random_rotations(2, generator=g, dtype=F64).requires_grad_()
    t = torch.randn(2, 3, generator=g, dtype=F64, requires_grad=True)

    def f_ptr(x, R, t):
        return RigidTransform(R, t).apply_points(x, ptr=ptr)

    def f_batch(x, R, t):
        return RigidTransform(R, t).apply_points(x, ptr_to_batch(ptr))

    def f_vec(x, R):
        return RigidTransform(R).apply_vectors(x, ptr=sizes_to_ptr([5, 0]))

    assert torch.autograd.gradcheck(f_ptr, (x, R, t))
    assert torch.autograd.gradcheck(f_batch, (x, R, t))
    assert torch.autograd.gradcheck(f_vec, (x, R))
    assert torch.autograd.gradcheck(
        lambda x, R, t: RigidTransform(R, t).inverse().apply_points(
            x, ptr=ptr), (x, R, t))


def test_to_and_repr_and_matrix():
    T = RigidTransform.sample(2, generator=torch.Generator().manual_seed(0))
    T64 = T.to(F64)
    assert T64.dtype == F64 and T64.device.type == 'cpu'
    assert 'num_graphs=2' in repr(T) and 'rotation+translation' in repr(T)
    M = T64.as_matrix()
    x = torch.randn(1, 3, dtype=F64)
    xh = torch.cat([x, torch.ones(1, 1, dtype=F64)], 1)
    out = T64.index_select(torch.tensor([1])).apply_points(x)
    assert torch.allclose((M[1] @ xh[0])[:3], out[0], atol=1e-12)
    ident = RigidTransform.identity(3, dtype=F64)
    y = torch.randn(4, 3, dtype=F64)
    assert torch.equal(ident.apply_points(y, torch.tensor([0, 1, 2, 2])), y)


def test_bad_input():
    # value checks (graph index range, ptr bounds/order) run in debug mode
    with debug():
        T = RigidTransform.sample(2, dtype=F64)
        x = torch.randn(5, 3, dtype=F64)
        batch = torch.tensor([0, 0, 1, 1, 1])
        with pytest.raises(ValueError,
                           match=r"'x' must have shape \[num_nodes, 3"):
            T.apply_points(torch.randn(5, 2, dtype=F64), batch)
        with pytest.raises(ValueError, match=r"'v' must have shape"):
            T.apply_vectors(torch.randn(5, 3, 1, dtype=F64), batch)
        with pytest.raises(ValueError, match=r"'batch' must have shape \[5\]"):
            T.apply_points(x, batch[:4])
        with pytest.raises(ValueError, match=r"only 2 graph\(s\) exist"):
            T.apply_points(x, torch.tensor([0, 0, 1, 1, 2]))
        with pytest.raises(ValueError, match=r"only 2 graph\(s\) exist"):
            T.apply_points(x, torch.tensor([0, -1, 1, 1, 1]))
        with pytest.raises(TypeError, match="'batch' must be an integer"):
            T.apply_points(x, batch.double())
        with pytest.raises(ValueError, match="holds 2 graphs: pass 'batch'"):
            T.apply_points(x)
        with pytest.raises(ValueError, match=r"'ptr' must have shape \[3\]"):
            T.apply_points(x, ptr=torch.tensor([0, 5]))
        with pytest.raises(ValueError, match="end at the number of rows"):
            T.apply_points(x, ptr=torch.tensor([0, 2, 4]))
        with pytest.raises(ValueError, match='non-decreasing'):
            RigidTransform.sample(3, dtype=F64).apply_points(
                x, ptr=torch.tensor([0, 4, 2, 5]))
        with pytest.raises(ValueError, match='dtype torch.float32'):
            T.apply_points(x.float(), batch)
        with pytest.raises(TypeError, match='floating-point'):
            T.apply_points(x.long(), batch)
        with pytest.raises(TypeError, match="'x' must be a torch.Tensor"):
            T.apply_points(x.tolist(), batch)
        with pytest.raises(ValueError, match="is on meta"):
            T.apply_points(x.to('meta'), batch)
        with pytest.raises(ValueError,
                           match=r"'rotation' must have shape \[B, 3, 3\]"):
            RigidTransform(torch.randn(2, 3, 4))
        with pytest.raises(ValueError,
                           match=r"'rotation' must have shape \[B, 3, 3\]"):
            RigidTransform(torch.randn(2, 2, 3, 3))
        with pytest.raises(ValueError,
                           match=r"'translation' must have shape \[B, 3\]"):
            RigidTransform(translation=torch.randn(2, 4))
        with pytest.raises(ValueError, match="same B"):
            RigidTransform(torch.eye(3).expand(2, 3, 3), torch.zeros(3, 3))
        with pytest.raises(ValueError, match="dtype"):
            RigidTransform(torch.eye(3), torch.zeros(3, dtype=F64))
        with pytest.raises(ValueError, match="needs a 'rotation'"):
            RigidTransform()
        with pytest.raises(ValueError, match="'group' must be one of"):
            RigidTransform.sample(2, 'SE(3)')


graph_sizes = st.lists(st.integers(min_value=0, max_value=6), min_size=1,
                       max_size=8)


@settings(max_examples=60, deadline=None)
@given(sizes=graph_sizes, seed=st.integers(0, 2**31 - 1),
       group=st.sampled_from(sorted(GROUPS)))
def test_property_random_batches(sizes, seed, group):
    g = torch.Generator().manual_seed(seed)
    N, B = sum(sizes), len(sizes)
    ptr = sizes_to_ptr(sizes)
    batch = ptr_to_batch(ptr)
    x = torch.randn(N, 3, generator=g, dtype=F64)
    v = torch.randn(N, 3, generator=g, dtype=F64)
    T = RigidTransform.sample(B, group, generator=g, dtype=F64)
    y = T.apply_points(x, ptr=ptr)
    w = T.apply_vectors(v, batch)
    assert torch.allclose(y, reference_points(T, x, sizes), atol=1e-10)
    assert torch.allclose(T.apply_points(x, batch), y, atol=1e-12)
    assert torch.allclose(T.inverse().apply_points(y, batch), x, atol=1e-10)
    assert torch.allclose(T.inverse().apply_vectors(w, ptr=ptr), v,
                          atol=1e-10)
    assert torch.allclose(w.norm(dim=-1), v.norm(dim=-1), atol=1e-10)
    for d0, d1 in zip(pairwise_dist(x, sizes), pairwise_dist(y, sizes)):
        assert torch.allclose(d0, d1, atol=1e-10)


@pytest.mark.parametrize('native', [False, True])
def test_apply_makes_no_host_sync(native):
    from torch_geometric_remul.testing import assert_no_syncs, count_syncs
    from torch_geometric_remul.typing import force_native
    g = torch.Generator().manual_seed(0)
    T = RigidTransform.sample(3, 'E3', generator=g)
    x = torch.randn(6, 3, generator=g)
    ptr, batch = torch.tensor([0, 2, 2, 6]), torch.tensor([0, 0, 2, 2, 2, 2])
    ctx = force_native() if native else contextlib.nullcontext()
    with ctx, count_syncs() as syncs:
        a = T.apply_points(x, ptr=ptr)
        b = T.apply_vectors(x, batch)
        c = T.apply_pseudovectors(x, ptr=ptr)
        T.inverse().compose(T)
    assert_no_syncs(syncs, 'RigidTransform.apply_*')
    assert torch.allclose(a, T.apply_points(x, batch), atol=1e-6)
    assert torch.allclose(b, T.apply(x, 'vector', ptr=ptr), atol=1e-6)
    assert c.shape == x.shape


def test_bad_values_fail_loudly_only_in_debug_mode():
    T = RigidTransform.sample(2, dtype=F64)
    x = torch.randn(5, 3, dtype=F64)
    stale = torch.tensor([0, 2, 4])  # ends at 4, but x has 5 rows
    with debug(), pytest.raises(ValueError, match='end at the number'):
        T.apply_points(x, ptr=stale)


@pytest.mark.parametrize('group', ['SO3', 'O3', 'E3'])
def test_sampling_traces_with_a_symbolic_number_of_graphs(group):
    """Inside torch.compile with dynamic shapes the number of graphs is
    symbolic: drawing with ``generator=None`` passed explicitly to
    ``torch.randn`` failed there (fake-tensor error); one compiled function
    serves every size."""
    def draw(x):
        T = RigidTransform.sample(x.size(0), group, dtype=x.dtype)
        rows = x.unsqueeze(-1).expand(-1, 3).contiguous()
        return T.apply_points(rows, torch.arange(x.size(0)))

    torch._dynamo.reset()
    compiled = torch.compile(draw, backend='eager', dynamic=True,
                             fullgraph=True)
    for n in (3, 5, 8):
        assert compiled(torch.zeros(n, dtype=torch.float64)).shape == (n, 3)
