"""Op 3: token Q / V / A, segment reductions and the fused value head; op 6: implicit step Q."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from kernel_checks import TINY, check, generator, grads, leaves
from qengine.kernels import (
    cu_seqlens_from_lengths,
    implicit_step_q,
    segment_reduce,
    token_q_scores,
    value_head_scores,
)

triton_or_torch = pytest.mark.parametrize(
    "impl", [pytest.param("triton", marks=pytest.mark.triton), "torch"]
)


@triton_or_torch
def test_token_q_identities(impl):
    g = generator().manual_seed(0)
    h, w = torch.randn(3, 7, 31, generator=g), torch.randn(123, 31, generator=g) / 5
    tgt = torch.randint(0, 123, (3, 7), generator=g)
    tgt[:, :2] = -100
    tgt[2] = -100  # fully masked sequence
    beta = 0.5
    out = token_q_scores(h, w, tgt, beta=beta, reduce_segments=True, impl=impl, config=TINY)
    z = (h.double() @ w.double().T) * beta
    valid = tgt != -100
    q = z.gather(-1, tgt.clamp_min(0)[..., None]).squeeze(-1) * valid
    v = torch.logsumexp(z / beta, -1) * beta
    check("q", out.q, q, None, torch.float32)
    check("v", out.v, v, None, torch.float32)
    check("advantage", out.advantage, (q - v) * valid, None, torch.float32)
    seg_sum = ((q - v) * valid).sum(-1)
    check("seq sum", out.segments.sum, seg_sum, None, torch.float32)
    check("seq mean", out.segments.mean, seg_sum / valid.sum(-1).clamp_min(1), None, torch.float32)
    assert out.segments.count.tolist() == [5.0, 5.0, 0.0]


@pytest.mark.triton
@given(
    lengths=st.lists(st.integers(0, 40), min_size=1, max_size=6),
    masked=st.booleans(),
    seed=st.integers(0, 100),
)
def test_segment_reduce_hypothesis(lengths, masked, seed):
    g = generator().manual_seed(seed)
    cu = cu_seqlens_from_lengths(torch.tensor(lengths))
    n = int(cu[-1])
    x = torch.randn(n, generator=g)
    mask = (torch.rand(n, generator=g) > 0.4) if masked else None
    res = []
    for dt, impl in ((torch.float32, "triton"), (torch.float64, "torch")):
        (xx,) = leaves(dt, x)
        o = segment_reduce(xx, cu, mask=mask, impl=impl)
        ((o.sum * torch.arange(len(lengths))).sum() + o.mean.sum()).backward()
        res.append((o, xx.grad))
    (a, ga), (r, gr) = res
    for f in ("sum", "mean", "count"):
        check(f, getattr(a, f), getattr(r, f), None, torch.float32)
    check("dx", ga, gr, None, torch.float32)


@pytest.mark.triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("with_segments", [True, False])
def test_value_head_matches_float64(dtype, with_segments):
    g = generator().manual_seed(0)
    h, w, b = torch.randn(47, 31, generator=g), torch.randn(31, generator=g), torch.randn(1)
    cu = cu_seqlens_from_lengths(torch.tensor([10, 1, 0, 36])) if with_segments else None
    mask = torch.rand(47, generator=g) > 0.3
    res = []
    for dt, impl in ((dtype, "triton"), (torch.float64, "torch"), (dtype, "torch")):
        xs = leaves(dt, h.to(dtype), w.to(dtype), b.to(dtype))
        o = value_head_scores(xs[0], xs[1], xs[2], cu_seqlens=cu, mask=mask, impl=impl)
        loss = (o.z * torch.linspace(-1, 2, 47)).sum()
        if with_segments:
            loss = loss + o.segments.sum.sum() + 2 * o.segments.mean.sum()
        loss.backward()
        res.append((o, grads(xs)))
    (a, ga), (r, gr), (e, ge) = res
    check("z", a.z, r.z, e.z, dtype)
    if with_segments:
        check("seg mean", a.segments.mean, r.segments.mean, e.segments.mean, dtype)
    for name, x, y, z in zip(("dh", "dw", "db"), ga, gr, ge, strict=True):
        check(name, x, y, z, dtype)


@triton_or_torch
def test_implicit_step_q(impl):
    g = generator().manual_seed(0)
    lengths = torch.tensor([3, 1, 6, 2])  # candidate actions after one shared prefix
    cu = cu_seqlens_from_lengths(lengths)
    h, w = torch.randn(12, 31, generator=g), torch.randn(123, 31, generator=g) / 5
    rw = w + 0.05 * torch.randn(123, 31, generator=g)
    tgt = torch.randint(0, 123, (12,), generator=g)
    out = implicit_step_q(h, w, tgt, ref_weight=rw, cu_seqlens=cu, beta=0.1, impl=impl, config=TINY)
    lp = torch.log_softmax(h.double() @ w.double().T, -1).gather(-1, tgt[:, None]).squeeze(-1)
    lr = torch.log_softmax(h.double() @ rw.double().T, -1).gather(-1, tgt[:, None]).squeeze(-1)
    ids = torch.repeat_interleave(torch.arange(4), lengths)
    want = torch.zeros(4, dtype=torch.float64).index_add(0, ids, 0.1 * (lp - lr))
    check("q", out.q, want, None, torch.float32)
    assert out.num_tokens.tolist() == lengths.float().tolist()
