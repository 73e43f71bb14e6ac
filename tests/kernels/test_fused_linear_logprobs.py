"""Op 2: fused_linear_logprobs (forward stats, argmax, dh / dW / db) against float64."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from kernel_checks import DTYPES, TINY, check, generator, grads, leaves
from qengine.kernels import FusedLinearConfig, fused_linear_logprobs

FIELDS = ("logp", "lse", "target_logit", "entropy")


def _inputs(n, d, v, *, bias, seed=0, ignore_frac=0.2):
    g = generator().manual_seed(seed)
    h = torch.randn(n, d, generator=g)
    w = torch.randn(v, d, generator=g) / d**0.5 * 3
    b = torch.randn(v, generator=g) if bias else None
    t = torch.randint(0, v, (n,), generator=g)
    t[torch.rand(n, generator=g) < ignore_frac] = -100
    return h, w, b, t


def _run(h, w, b, t, impl, cfg, **kw):
    out = fused_linear_logprobs(h, w, t, b, with_entropy=True, impl=impl, config=cfg, **kw)
    rw = torch.linspace(0.5, 1.5, h.shape[0])
    loss = (out.logp * rw).sum() + 0.3 * out.lse.sum() + 0.7 * out.entropy.sum()
    (loss + 0.2 * out.target_logit.sum()).backward()
    return out


def _compare(h, w, b, t, dtype, cfg=TINY, **kw):
    xs = leaves(dtype, h, w, b)
    x64 = leaves(torch.float64, *(None if x is None else x.to(dtype) for x in (h, w, b)))
    xe = leaves(dtype, h, w, b)
    out = _run(*xs, t, "triton", cfg, **kw)
    ref = _run(*x64, t, "torch", None, **kw)
    eager = _run(*xe, t, "torch", None, **kw)
    for f in FIELDS:
        check(f, getattr(out, f), getattr(ref, f), getattr(eager, f), dtype, floor=1.0)
    for name, a, r, e in zip(("dh", "dW", "db"), grads(xs), grads(x64), grads(xe), strict=True):
        check(name, a, r, e, dtype)
    if dtype == torch.float32:  # bf16 logits of the eager path may tie differently
        assert torch.equal(out.argmax, ref.argmax)


@pytest.mark.triton
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d,v", [(47, 31, 123), (1, 16, 33)])
@pytest.mark.parametrize(
    "opts", [{}, {"bias": True, "softcap": 4.0, "temperature": 0.8}], ids=["plain", "b-cap-T"]
)
def test_fused_linear_logprobs_matches_float64(n, d, v, dtype, opts):
    opts = dict(opts)
    h, w, b, t = _inputs(n, d, v, bias=opts.pop("bias", False))
    _compare(h, w, b, t, dtype, **opts)


@pytest.mark.triton
def test_all_rows_ignored_and_no_split_config():
    h, w, b, t = _inputs(20, 31, 123, bias=True, ignore_frac=1.0)
    cfg = FusedLinearConfig(block_n=16, block_v=16, block_d=16, num_warps=4, num_stages=1)
    _compare(h, w, b, t, torch.float32, cfg=cfg)


@pytest.mark.triton
def test_only_weight_needs_grad():
    h, w, _, t = _inputs(9, 16, 40, bias=False)
    w64 = w.double().requires_grad_()
    wt = w.clone().requires_grad_()
    fused_linear_logprobs(h, wt, t, impl="triton", config=TINY).logp.sum().backward()
    fused_linear_logprobs(h.double(), w64, t, impl="torch").logp.sum().backward()
    check("dW", wt.grad, w64.grad, None, torch.float32)


@pytest.mark.triton
@given(
    n=st.integers(1, 24),
    d=st.integers(1, 24),
    v=st.integers(2, 80),
    frac=st.sampled_from([0.0, 0.3, 1.0]),
    seed=st.integers(0, 1000),
)
def test_fused_linear_logprobs_hypothesis(n, d, v, frac, seed):
    h, w, b, t = _inputs(n, d, v, bias=seed % 2 == 0, seed=seed, ignore_frac=frac)
    _compare(h, w, b, t, torch.float32)


def test_reference_equals_logits_path():
    from qengine.kernels import token_logprobs

    h, w, b, t = _inputs(12, 8, 30, bias=True)
    a = fused_linear_logprobs(h.double(), w.double(), t, b.double(), with_entropy=True)
    c = token_logprobs(h.double() @ w.double().T + b.double(), t, with_entropy=True)
    for f in FIELDS:
        assert torch.allclose(getattr(a, f), getattr(c, f), atol=1e-12)


def test_shape_errors():
    h, w, _, t = _inputs(4, 8, 10, bias=False)
    with pytest.raises(ValueError, match="hidden size"):
        fused_linear_logprobs(h, w[:, :5], t)
    with pytest.raises(ValueError, match="bias"):
        fused_linear_logprobs(h, w, t, torch.zeros(3))
