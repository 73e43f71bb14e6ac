"""Op 4: fused_linear_dpo_loss against TRL's DPO formulas (written out here: trl is not a test
dependency), float64, and Liger-Kernel's LigerFusedLinearDPOLoss where installed."""

import pytest
import torch
import torch.nn.functional as F
from kernel_checks import TINY, check, generator, grads, leaves
from qengine.kernels import cu_seqlens_from_lengths, fused_linear_dpo_loss


def trl_dpo_loss(pc, pr, rc, rr, beta, loss_type, label_smoothing=0.0, nc=None, nr=None):
    """trl.DPOTrainer's losses and rewards (trl 1.x), verbatim in substance: log-probs are sums
    over completion tokens; IPO divides each log-ratio by its token count (nc, nr) inside the
    loss; rewards are beta * (summed) log-ratios for every loss type."""
    logits = (pc - pr) - (rc - rr)
    if loss_type == "sigmoid":
        losses = (
            -F.logsigmoid(beta * logits) * (1 - label_smoothing)
            - F.logsigmoid(-beta * logits) * label_smoothing
        )
    elif loss_type == "robust":
        losses = (
            -F.logsigmoid(beta * logits) * (1 - label_smoothing)
            + F.logsigmoid(-beta * logits) * label_smoothing
        ) / (1 - 2 * label_smoothing)
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * logits)
    elif loss_type == "ipo":
        avg = (pc - rc) / nc.clamp(min=1.0) - (pr - rr) / nr.clamp(min=1.0)
        losses = (avg - 1 / (2 * beta)) ** 2
    return losses, beta * (pc - rc).detach(), beta * (pr - rr).detach()


def _batch(p=3, t=11, d=31, v=123, seed=0):
    g = generator().manual_seed(seed)
    h = torch.randn(2 * p, t, d, generator=g)
    w = torch.randn(v, d, generator=g) / d**0.5 * 2
    rw = w + 0.1 * torch.randn(v, d, generator=g) / d**0.5
    tgt = torch.randint(0, v, (2 * p, t), generator=g)
    tgt[:, :4] = -100  # prompt
    tgt[1, 5:] = -100  # a single-token action
    tgt[2 * p - 1, 9:] = -100  # padding
    return h, w, rw, tgt


def _trl_seq_logps(h, w, tgt):
    """(summed log-probs, completion token counts) per sequence."""
    logits = (h @ w.T).double()
    lsm = torch.log_softmax(logits, -1)
    valid = tgt != -100
    lp = lsm.gather(-1, tgt.clamp_min(0)[..., None]).squeeze(-1) * valid
    return lp.sum(-1), valid.sum(-1).double()


@pytest.mark.parametrize("impl", [pytest.param("triton", marks=pytest.mark.triton), "torch"])
@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo", "hinge", "robust"])
def test_dpo_matches_trl_formula(loss_type, impl):
    h, w, rw, tgt = _batch()
    beta, ls = 0.3, (0.1 if loss_type in ("sigmoid", "robust") else 0.0)
    hh, ww = leaves(torch.float64, h, w)
    out = fused_linear_dpo_loss(
        hh.float(), ww.float(), tgt, ref_weight=rw, beta=beta, loss_type=loss_type,
        label_smoothing=ls, impl=impl, config=TINY,
    )  # fmt: skip
    out.loss.backward()
    h2, w2 = leaves(torch.float64, h, w)
    pol, n = _trl_seq_logps(h2, w2, tgt)
    ref, _ = _trl_seq_logps(h.double(), rw.double(), tgt)
    losses, cr, rr = trl_dpo_loss(
        pol[:3], pol[3:], ref[:3], ref[3:], beta, loss_type, ls, n[:3], n[3:]
    )
    losses.mean().backward()
    check("loss", out.loss, losses.mean(), None, torch.float32)
    check("chosen_rewards", out.chosen_rewards, cr, None, torch.float32)
    check("rejected_rewards", out.rejected_rewards, rr, None, torch.float32)
    check("margins", out.reward_margins, cr - rr, None, torch.float32)
    assert out.reward_accuracy.item() == pytest.approx((cr > rr).double().mean().item())
    check("dh", hh.grad, h2.grad, None, torch.float32)
    check("dW", ww.grad, w2.grad, None, torch.float32)


@pytest.mark.triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dpo_packed_precomputed_ref_bf16(dtype):
    h, w, _, tgt = _batch(p=2, t=9)
    lengths = torch.tensor([9, 4, 7, 9])  # ragged sequences, packed
    keep = torch.arange(9)[None, :] < lengths[:, None]
    hp, tp = h[keep], tgt[keep]
    tp[:4] = -100
    cu = cu_seqlens_from_lengths(lengths)
    ref_logps = torch.randn(4, generator=generator().manual_seed(1)) - 10
    res = []
    for dt, impl in ((dtype, "triton"), (torch.float64, "torch"), (dtype, "torch")):
        src = [x.to(dtype) for x in (hp, w)]
        xs = leaves(dt, *src)
        o = fused_linear_dpo_loss(
            xs[0], xs[1], tp, cu_seqlens=cu, ref_logps=ref_logps, beta=0.1, impl=impl,
            config=TINY,
        )  # fmt: skip
        o.loss.backward()
        res.append((o, grads(xs)))
    (a, ga), (r, gr), (e, ge) = res
    for f in ("loss", "chosen_logps", "rejected_logps", "chosen_rewards"):
        check(f, getattr(a, f), getattr(r, f), getattr(e, f), dtype)
    for name, x, y, z in zip(("dh", "dW"), ga, gr, ge, strict=True):
        check(name, x, y, z, dtype)


def test_dpo_fully_masked_sequence_and_errors():
    h, w, rw, tgt = _batch(p=2)
    tgt[0] = -100  # a chosen sequence with no action token: log-prob 0, finite loss
    out = fused_linear_dpo_loss(h, w, tgt, ref_weight=rw, impl="torch")
    assert torch.isfinite(out.loss)
    with pytest.raises(ValueError, match="ref_logps"):
        fused_linear_dpo_loss(h, w, tgt)
    with pytest.raises(ValueError, match="loss_type"):
        fused_linear_dpo_loss(h, w, tgt, reference_free=True, loss_type="kto")
    with pytest.raises(ValueError, match="2P"):
        fused_linear_dpo_loss(h[:3], w, tgt[:3], reference_free=True)


def test_dpo_matches_liger():
    """Liger-Kernel's fused-linear DPO loss (the test extra installs it; its chunked losses are
    plain PyTorch, so this runs on CPU)."""
    from liger_kernel import chunked_loss as liger

    h, w, rw, tgt = _batch(p=2, t=8, d=16, v=40)
    beta = 0.1
    ours = fused_linear_dpo_loss(h, w, tgt, ref_weight=rw, beta=beta, impl="torch")
    loss_fn = liger.LigerFusedLinearDPOLoss(beta=beta, use_ref_model=True, compiled=False)
    theirs = loss_fn(w, h, tgt, ref_input=h, ref_weight=rw)
    loss = theirs[0] if isinstance(theirs, tuple) else theirs
    assert torch.allclose(ours.loss, loss.float(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("impl", [pytest.param("triton", marks=pytest.mark.triton), "torch"])
def test_ipo_rewards_and_accuracy_are_trls(impl):
    """The issue's case: N=6 packed tokens, cu_seqlens=[0, 1, 6] (a 1-token chosen action, a
    5-token rejected one), beta=0.1. TRL reports rewards from summed log-ratios (the IPO loss alone
    averages them); qengine used to report beta * mean, which flipped the accuracy."""
    g = generator(7)
    h, w = torch.randn(6, 8, generator=g), torch.randn(13, 8, generator=g)
    tgt = torch.randint(0, 13, (6,), generator=g)
    cu = torch.tensor([0, 1, 6], dtype=torch.int32)
    ref = torch.tensor([-2.0, -3.0])
    out = fused_linear_dpo_loss(
        h, w, tgt, cu_seqlens=cu, ref_logps=ref, beta=0.1, loss_type="ipo", impl=impl,
        config=TINY,
    )  # fmt: skip
    lp = torch.log_softmax(h.double() @ w.double().T, -1).gather(-1, tgt[:, None]).squeeze(-1)
    pc, pr = lp[:1].sum(), lp[1:].sum()
    loss, cr, rr = trl_dpo_loss(
        pc, pr, ref[0].double(), ref[1].double(), 0.1, "ipo",
        nc=torch.tensor(1.0, dtype=torch.float64), nr=torch.tensor(5.0, dtype=torch.float64),
    )  # fmt: skip
    assert out.chosen_rewards.item() == pytest.approx(cr.item(), rel=1e-5)
    assert out.rejected_rewards.item() == pytest.approx(rr.item(), rel=1e-5)
    assert out.reward_accuracy.item() == float(cr > rr)
    assert out.loss.item() == pytest.approx(loss.item(), rel=1e-5)
