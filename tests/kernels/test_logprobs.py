"""Op 1: token_logprobs against float64 references, log_softmax().gather(), bf16 / fp32."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from kernel_checks import DTYPES, check, generator, grads, leaves
from qengine.kernels import token_logprobs, token_logprobs_reference

FIELDS = ("logp", "lse", "target_logit", "entropy")


def _inputs(n, v, seed=0, ignore_frac=0.2):
    g = generator().manual_seed(seed)
    logits = torch.randn(n, v, generator=g) * 4
    target = torch.randint(0, v, (n,), generator=g)
    target[torch.rand(n, generator=g) < ignore_frac] = -100
    return logits, target


def _run(logits, target, impl, **kw):
    out = token_logprobs(logits, target, with_entropy=True, impl=impl, **kw)
    w = torch.linspace(0.5, 1.5, logits.shape[0])
    loss = (out.logp * w).sum() + 0.3 * out.lse.sum() + 0.7 * out.entropy.sum()
    loss = loss + 0.2 * out.target_logit.sum()
    loss.backward()
    return out


def _compare(logits, target, dtype, block_v=None, **kw):
    (x,) = leaves(dtype, logits)
    (x64,) = leaves(torch.float64, logits.to(dtype))
    (xe,) = leaves(dtype, logits)
    out = _run(x, target, "triton", block_v=block_v, **kw)
    ref = _run(x64, target, "torch", **kw)
    eager = _run(xe, target, "torch", **kw)
    for f in FIELDS:
        check(f, getattr(out, f), getattr(ref, f), getattr(eager, f), dtype, floor=1.0)
    check("dlogits", *grads([x, x64, xe]), dtype)
    assert torch.equal(out.argmax, ref.argmax)


@pytest.mark.triton
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,v", [(47, 123), (1, 7), (16, 64)])
@pytest.mark.parametrize("opts", [{}, {"softcap": 5.0, "temperature": 0.7}])
def test_token_logprobs_matches_float64(n, v, dtype, opts):
    logits, target = _inputs(n, v)
    _compare(logits, target, dtype, block_v=32, **opts)


@pytest.mark.triton
def test_token_logprobs_default_tiles_and_3d():
    logits, target = _inputs(6, 123)
    out = token_logprobs(logits.reshape(2, 3, 123), target.reshape(2, 3), impl="triton")
    ref = token_logprobs_reference(logits.double(), target)
    assert out.logp.shape == (2, 3)
    assert torch.allclose(out.logp.reshape(-1).double(), ref.logp, rtol=1e-5, atol=1e-5)


@pytest.mark.triton
@given(
    n=st.integers(1, 20),
    v=st.integers(2, 70),
    frac=st.sampled_from([0.0, 0.5, 1.0]),
    seed=st.integers(0, 1000),
)
def test_token_logprobs_hypothesis(n, v, frac, seed):
    logits, target = _inputs(n, v, seed, frac)
    _compare(logits, target, torch.float32, block_v=16)


def test_reference_matches_log_softmax_gather():
    logits, target = _inputs(47, 123)
    ref = token_logprobs_reference(logits.double(), target, with_entropy=True)
    valid = target != -100
    lsm = torch.log_softmax(logits.double(), -1)
    want = lsm.gather(-1, target.clamp_min(0)[:, None]).squeeze(-1) * valid
    assert torch.allclose(ref.logp, want, atol=1e-12)
    assert torch.allclose(ref.entropy, -(lsm.exp() * lsm).sum(-1), atol=1e-12)


def test_mask_equals_ignore_index():
    logits, target = _inputs(10, 9, ignore_frac=0.0)
    mask = torch.arange(10) % 3 != 0
    a = token_logprobs(logits, target, mask=mask, impl="torch").logp
    b = token_logprobs(logits, torch.where(mask, target, -100), impl="torch").logp
    assert torch.equal(a, b)


def test_bad_inputs_raise_readable_errors():
    with pytest.raises(ValueError, match="disagree"):
        token_logprobs(torch.randn(3, 5), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="temperature"):
        token_logprobs(torch.randn(3, 5), torch.zeros(3, dtype=torch.long), temperature=0)
    with pytest.raises(ValueError, match="impl"):
        token_logprobs(torch.randn(3, 5), torch.zeros(3, dtype=torch.long), impl="cuda")


@pytest.mark.parametrize("impl", ["torch", pytest.param("triton", marks=pytest.mark.triton)])
def test_out_of_vocabulary_target_is_refused(impl: str) -> None:
    from qengine.kernels import fused_linear_logprobs, token_logprobs

    logits = torch.randn(5, 11)
    with pytest.raises(IndexError, match="outside the vocabulary"):
        token_logprobs(logits, torch.tensor([0, 1, 11, 2, 3]), impl=impl)
    with pytest.raises(IndexError, match="outside the vocabulary"):
        token_logprobs(logits, torch.tensor([0, -3, 1, 2, 3]), impl=impl)
    ok = token_logprobs(logits, torch.tensor([0, -100, 1, 2, 3]), impl=impl)
    assert ok.logp[1] == 0
    hidden, weight = torch.randn(5, 7), torch.randn(11, 7)
    with pytest.raises(IndexError, match="outside the vocabulary"):
        fused_linear_logprobs(hidden, weight, torch.tensor([0, 1, 2, 3, 40]), impl=impl)
