"""Hostile input to every public kernel op, on both paths: a clear exception before any launch,
never a crash, an out-of-bounds read or a silently wrong number.

Segment offsets (``cu_seqlens``) used to reach the kernels unchecked: ``[0, -4, 7]`` aborted the
process on the torch path and summed garbage on the Triton path, offsets past N segfaulted.
"""

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_checks import generator
from qengine.kernels import (
    dpo_loss_from_logps,
    fused_linear_dpo_loss,
    fused_linear_logprobs,
    implicit_step_q,
    qrm_pairwise_loss,
    segment_reduce,
    token_logprobs,
    token_q_scores,
    value_head_scores,
)

IMPLS = [pytest.param("triton", marks=pytest.mark.triton), "torch"]
N, D, V = 7, 5, 11


def _inputs(seed=0):
    g = generator(seed)
    h = torch.randn(N, D, generator=g)
    w = torch.randn(V, D, generator=g)
    t = torch.randint(0, V, (N,), generator=g)
    return h, w, t


def _segment_ops(impl):
    """Every public op that takes ``cu_seqlens``: name -> call(cu)."""
    h, w, t = _inputs()
    return {
        "segment_reduce": lambda cu: segment_reduce(h[:, 0], cu, impl=impl),
        "value_head_scores": lambda cu: value_head_scores(h, w[0], cu_seqlens=cu, impl=impl),
        "token_q_scores": lambda cu: token_q_scores(h, w, t, cu_seqlens=cu, impl=impl),
        "dpo": lambda cu: fused_linear_dpo_loss(
            h, w, t, cu_seqlens=cu, reference_free=True, impl=impl
        ),
        "ipo": lambda cu: fused_linear_dpo_loss(
            h, w, t, cu_seqlens=cu, reference_free=True, loss_type="ipo", impl=impl
        ),
        "qrm_lm": lambda cu: qrm_pairwise_loss(h, w, t, cu_seqlens=cu, impl=impl),
        "qrm_value": lambda cu: qrm_pairwise_loss(
            h, w[0], t, head="value", cu_seqlens=cu, impl=impl
        ),
        "implicit_step_q": lambda cu: implicit_step_q(
            h, w, t, ref_weight=w.flip(0), cu_seqlens=cu, impl=impl
        ),
    }


# The cases, then their classes: negative, decreasing, not starting at 0, short, past N.
BAD_OFFSETS = [
    [0, -4, 7],
    [0, 3, 5000],
    [0, 3, 10**7],
    [0, 3, 50],
    [0, 5, 3, 7],
    [2, 4, 7],
    [0, 3],
    [0, 2, 4],
    [-1, 3, 7],
    [0, 7, 7, 8],
    [0, 3, 2**31 - 1],
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("offsets", BAD_OFFSETS, ids=str)
def test_bad_cu_seqlens_raise_on_every_op(impl, offsets):
    for name, call in _segment_ops(impl).items():
        for dtype in (torch.int32, torch.int64):
            with pytest.raises(ValueError, match="cu_seqlens"):
                call(torch.tensor(offsets, dtype=dtype))
                pytest.fail(f"{name} accepted cu_seqlens={offsets}")


@pytest.mark.parametrize("impl", IMPLS)
def test_malformed_cu_seqlens_tensors_raise(impl):
    for name, call in _segment_ops(impl).items():
        for cu, err in (
            (torch.tensor([0.0, 3.0, 7.0]), TypeError),
            (torch.tensor([True, False]), TypeError),
            (torch.zeros(0, dtype=torch.int32), ValueError),
            (torch.tensor([[0, 3, 7]]), ValueError),
        ):
            with pytest.raises(err):
                call(cu)
                pytest.fail(f"{name} accepted {cu}")


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=25)
@given(data=st.data())
def test_random_offsets_are_either_valid_or_refused(impl, data):
    """Hypothesis over arbitrary offset lists: valid ones give finite results equal to the
    reference's, every other one raises ValueError (no crash, no garbage)."""
    offsets = data.draw(st.lists(st.integers(-3, N + 3), min_size=1, max_size=6))
    cu = torch.tensor(offsets, dtype=torch.int32)
    valid = (
        offsets[0] == 0 and offsets[-1] == N and all(a <= b for a, b in itertools.pairwise(offsets))
    )
    x = torch.randn(N, generator=generator(len(offsets)))
    if valid:
        got = segment_reduce(x, cu, impl=impl)
        want = segment_reduce(x.double(), cu, impl="torch")
        assert torch.allclose(got.sum.double(), want.sum, atol=1e-5)
        assert torch.equal(got.count.double(), want.count)
    else:
        with pytest.raises(ValueError, match="cu_seqlens"):
            segment_reduce(x, cu, impl=impl)


@pytest.mark.parametrize("impl", IMPLS)
def test_validate_false_skips_only_the_value_check(impl):
    h, _, _ = _inputs()
    cu = torch.tensor([0, 3, 7])
    a = segment_reduce(h[:, 0], cu, impl=impl, validate=False)
    b = segment_reduce(h[:, 0], cu, impl=impl)
    assert torch.equal(a.sum, b.sum)
    with pytest.raises(TypeError):  # shape and dtype are checked even then: they cost no sync
        segment_reduce(h[:, 0], cu.float(), impl=impl, validate=False)


BAD_TEMPERATURES = [0.0, -1.0, math.nan, math.inf, -math.inf]
BAD_SOFTCAPS = [0.0, -2.0, math.nan, math.inf]


@pytest.mark.parametrize("impl", IMPLS)
def test_bad_temperature_and_softcap_raise(impl):
    h, w, t = _inputs()
    logits = h @ w.T
    calls = {
        "token_logprobs": lambda **kw: token_logprobs(logits, t, impl=impl, **kw),
        "fused_linear_logprobs": lambda **kw: fused_linear_logprobs(h, w, t, impl=impl, **kw),
        "token_q_scores": lambda **kw: token_q_scores(h, w, t, impl=impl, **kw),
        "dpo": lambda **kw: fused_linear_dpo_loss(
            h[:6].view(2, 3, D), w, t[:6].view(2, 3), reference_free=True, impl=impl, **kw
        ),
    }
    for name, call in calls.items():
        for temp in BAD_TEMPERATURES:
            with pytest.raises(ValueError, match="temperature"):
                call(temperature=temp)
                pytest.fail(f"{name} accepted temperature={temp}")
        for cap in BAD_SOFTCAPS:
            with pytest.raises(ValueError, match="softcap"):
                call(softcap=cap)
                pytest.fail(f"{name} accepted softcap={cap}")


@pytest.mark.parametrize("impl", IMPLS)
def test_dtype_mismatch_is_one_type_error_on_both_paths(impl):
    h, w, t = _inputs()
    with pytest.raises(TypeError, match="dtypes differ"):
        fused_linear_logprobs(h, w.double(), t, impl=impl)
    with pytest.raises(TypeError, match="dtypes differ"):
        fused_linear_logprobs(h, w, t, torch.zeros(V, dtype=torch.float64), impl=impl)
    with pytest.raises(TypeError, match="dtypes differ"):
        value_head_scores(h, w[0].double(), impl=impl)


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo", "hinge", "robust"])
@pytest.mark.parametrize("beta", [0.0, -0.1, math.nan, math.inf])
def test_bad_beta_raises_for_every_loss(loss_type, beta):
    lp = torch.zeros(2)
    n = torch.ones(2)
    with pytest.raises(ValueError, match="beta"):
        dpo_loss_from_logps(
            lp, lp, lp, lp, beta=beta, loss_type=loss_type, chosen_num_tokens=n,
            rejected_num_tokens=n,
        )  # fmt: skip


def test_bad_label_smoothing_and_ipo_without_lengths():
    lp = torch.zeros(2)
    with pytest.raises(ValueError, match="label_smoothing"):
        dpo_loss_from_logps(lp, lp, lp, lp, label_smoothing=1.5)
    with pytest.raises(ValueError, match="label_smoothing"):
        dpo_loss_from_logps(lp, lp, lp, lp, loss_type="robust", label_smoothing=0.5)
    with pytest.raises(ValueError, match="num_tokens"):
        dpo_loss_from_logps(lp, lp, lp, lp, loss_type="ipo")


@pytest.mark.parametrize("beta,gamma", [(0.0, 2.0), (math.nan, 2.0), (0.2, math.inf)])
def test_bad_qrm_hyperparameters_raise(beta, gamma):
    h, w, t = _inputs()
    with pytest.raises(ValueError, match=r"beta|gamma"):
        qrm_pairwise_loss(
            h[:6].view(2, 3, D), w, t[:6].view(2, 3), beta=beta, gamma=gamma, impl="torch"
        )


def test_out_of_vocabulary_targets_raise_on_both_paths():
    h, w, t = _inputs()
    for impl in ("torch", "triton"):
        for bad in (V, 10**6, -5):
            tt = t.clone()
            tt[2] = bad
            with pytest.raises(IndexError, match="vocabulary"):
                fused_linear_logprobs(h, w, tt, impl=impl, ignore_index=-100)
