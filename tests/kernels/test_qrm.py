"""Op 5: Q-RM pairwise loss, both Z definitions, against a float64 formula from the paper."""

import pytest
import torch
import torch.nn.functional as F
from kernel_checks import TINY, check, generator, grads, leaves
from qengine.kernels import qrm_pairwise_loss


def _batch(p=2, t=10, d=31, v=123, seed=1):
    g = generator().manual_seed(seed)
    h = torch.randn(2 * p, t, d, generator=g)
    w = torch.randn(v, d, generator=g) / d**0.5
    tgt = torch.randint(0, v, (2 * p, t), generator=g)
    tgt[:, :3] = -100
    tgt[0, 4:] = -100  # single-token action
    return h, w, tgt


def _paper_loss(z, tgt, beta=0.2, gamma=2.0):
    valid = tgt != -100
    means = (z * valid).sum(-1) / valid.sum(-1).clamp_min(1)
    p = tgt.shape[0] // 2
    return -F.logsigmoid(beta * (means[:p] - means[p:]) - gamma).mean()


@pytest.mark.parametrize("impl", [pytest.param("triton", marks=pytest.mark.triton), "torch"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_qrm_lm_head(impl, dtype):
    h, w, tgt = _batch()
    xs = leaves(dtype, h, w)
    out = qrm_pairwise_loss(xs[0], xs[1], tgt, head="lm", impl=impl, config=TINY)
    out.loss.backward()
    x64 = leaves(torch.float64, h.to(dtype), w.to(dtype))
    z = (x64[0] @ x64[1].T).gather(-1, tgt.clamp_min(0)[..., None]).squeeze(-1)
    ref = _paper_loss(z, tgt)
    ref.backward()
    xe = leaves(dtype, h, w)
    ze = (xe[0] @ xe[1].T).float().gather(-1, tgt.clamp_min(0)[..., None]).squeeze(-1)
    eager = _paper_loss(ze, tgt)
    eager.backward()
    check("loss", out.loss, ref, eager, dtype)
    for name, a, r, e in zip(("dh", "dW"), grads(xs), grads(x64), grads(xe), strict=True):
        check(name, a, r, e, dtype)


@pytest.mark.parametrize("impl", [pytest.param("triton", marks=pytest.mark.triton), "torch"])
def test_qrm_value_head(impl):
    h, _, tgt = _batch()
    g = generator().manual_seed(3)
    vw, vb = torch.randn(31, generator=g), torch.randn(1, generator=g)
    xs = leaves(torch.float32, h, vw, vb)
    out = qrm_pairwise_loss(xs[0], xs[1], tgt, head="value", bias=xs[2], impl=impl)
    out.loss.backward()
    x64 = leaves(torch.float64, h, vw, vb)
    ref = _paper_loss(x64[0] @ x64[1] + x64[2], tgt)
    ref.backward()
    check("loss", out.loss, ref, None, torch.float32)
    for name, a, r in zip(("dh", "dw", "db"), grads(xs), grads(x64), strict=True):
        check(name, a, r, None, torch.float32)
    assert out.accuracy.item() in (0.0, 0.5, 1.0)


def test_qrm_rejects_unknown_head():
    h, w, tgt = _batch()
    with pytest.raises(ValueError, match="head"):
        qrm_pairwise_loss(h, w, tgt, head="critic")
