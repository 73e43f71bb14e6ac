"""The ``qengine::`` custom ops: opcheck (schema, fake impls, autograd registration) on the PyTorch
and Triton paths, the PyTorch path's explicit backward against the float64 ``*_reference``
autograd, and ``torch.compile(fullgraph=True)`` through the public ops, compiled vs eager."""

import copy
import dataclasses
import importlib

import pytest
import qengine.kernels as K
import torch
import torch.nn.functional as F
from functorch.compile import make_boxed_func
from kernel_checks import TINY, check, generator, grads, leaves
from torch import nn
from torch._dynamo.backends.common import aot_autograd
from torch.library import opcheck

OPS = torch.ops.qengine
# the package re-exports a function of the same name, so `import ... as` would give the function
flp_module = importlib.import_module("qengine.kernels.fused_linear_logprobs")
N, D, V = 7, 12, 37
# Tiny Triton tiles, and a PyTorch-path budget of 10 fp32 columns per chunk for N = 7 rows.
CFG = dataclasses.replace(TINY, slice_bytes=N * 4 * 10)
CFG_ARGS = tuple(getattr(CFG, f.name) for f in dataclasses.fields(CFG))
PATHS = pytest.mark.parametrize(
    "use_triton", [False, pytest.param(True, marks=pytest.mark.triton)], ids=["torch", "triton"]
)


def _target(n=N, v=V, seed=0):
    """Normalised int32 targets (-1 = ignored) with two ignored rows, as the ops take them."""
    t = torch.randint(0, v, (n,), generator=generator(seed), dtype=torch.int32)
    t[[1, n - 2]] = -1
    return t


def _token_ids(seed=0):
    """The same targets as the public functions take them (int64, ignore_index = -100)."""
    t = _target(seed=seed).long()
    t[t < 0] = -100
    return t


def _flp_inputs(bias, seed=0):
    g = generator(seed)
    h = torch.randn(N, D, generator=g)
    w = torch.randn(V, D, generator=g) / D**0.5 * 3
    b = torch.randn(V, generator=g) if bias else None
    return h, w, b


def _schema_names(op):
    return [a.name for a in op.default._schema.arguments]


def test_config_fields_travel_in_declaration_order():
    """The ops rebuild FusedLinearConfig positionally from its fields."""
    fields = [f.name for f in dataclasses.fields(K.FusedLinearConfig)]
    for op in (OPS.fused_linear_logprobs, OPS.fused_linear_logprobs_backward):
        names = _schema_names(op)
        assert names[-len(fields) - 1 :] == [*fields, "use_triton"], op


# ----------------------------------------------------------------------------- opcheck
FLP_OPTS = {
    "plain": dict(bias=False, softcap=None, with_entropy=False),
    "bias-ent": dict(bias=True, softcap=None, with_entropy=True),
    "cap": dict(bias=False, softcap=4.0, with_entropy=False),
    "bias-cap-ent": dict(bias=True, softcap=4.0, with_entropy=True),
}


@PATHS
@pytest.mark.parametrize("opts", FLP_OPTS.values(), ids=FLP_OPTS.keys())
def test_opcheck_fused_linear_logprobs(use_triton, opts):
    h, w, b = leaves(torch.float32, *_flp_inputs(opts["bias"]))
    args = (h, w, b, _target(), 0.8, opts["softcap"], opts["with_entropy"], *CFG_ARGS, use_triton)
    opcheck(OPS.fused_linear_logprobs.default, args)


@PATHS
@pytest.mark.parametrize("needs", [(True, True, True), (False, True, False), (True, False, True)])
@pytest.mark.parametrize("with_entropy", [False, True])
def test_opcheck_fused_linear_logprobs_backward(use_triton, needs, with_entropy):
    h, w, b = _flp_inputs(bias=True)
    t = _target()
    out = OPS.fused_linear_logprobs(h, w, b, t, 0.8, 4.0, with_entropy, *CFG_ARGS, use_triton)
    g = [torch.randn(N, generator=generator(i)) for i in range(4)]
    args = (h, w, b, t, out[1], out[3], *g[:3], g[3] if with_entropy else None, *needs)
    opcheck(OPS.fused_linear_logprobs_backward.default, (*args, 0.8, 4.0, *CFG_ARGS, use_triton))


@PATHS
@pytest.mark.parametrize("temperature,softcap,with_entropy", [(1.0, None, False), (0.7, 5.0, True)])
def test_opcheck_token_logprobs(use_triton, temperature, softcap, with_entropy):
    (x,) = leaves(torch.float32, torch.randn(N, V, generator=generator()) * 3)
    args = (x, _target(), temperature, softcap, with_entropy, 16, use_triton)
    opcheck(OPS.token_logprobs.default, args)
    with torch.no_grad():  # the backward op has no backward of its own
        _, lse, _, ent, _ = OPS.token_logprobs(*args)
    g = [torch.randn(N, generator=generator(i)) for i in range(4)]
    bwd = (x.detach(), args[1], lse, ent, *g[:3], g[3] if with_entropy else None)
    opcheck(OPS.token_logprobs_backward.default, (*bwd, temperature, softcap, 16, use_triton))


def _segments():
    cu = torch.tensor([0, 3, 3, N], dtype=torch.int32)  # with an empty segment
    mask = (torch.rand(N, generator=generator(5)) > 0.3).float()
    return cu, mask


@PATHS
@pytest.mark.parametrize("bias,masked", [(False, False), (True, True)])
def test_opcheck_value_head_scores(use_triton, bias, masked):
    cu, mask = _segments()
    g = generator()
    h, w = leaves(torch.float32, torch.randn(N, D, generator=g), torch.randn(D, generator=g))
    b = torch.randn(1, generator=g).requires_grad_() if bias else None
    opcheck(OPS.value_head_scores.default, (h, w, b, cu, mask if masked else None, use_triton))
    gz = torch.randn(N, generator=g)
    opcheck(OPS.value_head_scores_backward.default, (h.detach(), w.detach(), gz, use_triton))


@PATHS
@pytest.mark.parametrize("masked", [False, True])
def test_opcheck_segment_reduce(use_triton, masked):
    cu, mask = _segments()
    (x,) = leaves(torch.float32, torch.randn(N, generator=generator()))
    opcheck(OPS.segment_reduce.default, (x, cu, mask if masked else None, use_triton))


# ----------------------------------------------------------------------------- PyTorch path
def _assert_matches(name, out, ref, dtype, floor=1e-3):
    """float64: 1e-10; float32: kernel_checks' 1e-5 of the reference's scale (>= ``floor``)."""
    if out is None or ref is None:
        assert out is None and ref is None, name
    elif dtype == torch.float64:
        torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10, msg=lambda m: f"{name}: {m}")
    else:
        check(name, out, ref, None, dtype, floor=floor)


STATS = ("logp", "lse", "target_logit", "entropy")


FLP_TORCH_OPTS = {
    "plain": dict(bias=False),
    "bias-cap-T": dict(bias=True, softcap=4.0, temperature=0.8),
    "mask": dict(bias=True, masked=True, temperature=1.2),
}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("opts", FLP_TORCH_OPTS.values(), ids=FLP_TORCH_OPTS.keys())
def test_torch_path_fused_linear_matches_float64_reference(dtype, opts):
    opts = dict(opts)
    h, w, b = _flp_inputs(opts.pop("bias"), seed=3)
    t = _token_ids(seed=3)
    mask = (torch.arange(N) % 3 != 0) if opts.pop("masked", False) else None

    def run(xdt, fn, **kw):
        xs = leaves(xdt, h, w, b)
        out = fn(*xs[:2], t, xs[2], mask=mask, with_entropy=True, **opts, **kw)
        rw = torch.linspace(0.5, 1.5, N, dtype=xdt)
        loss = (out.logp * rw).sum() + 0.3 * out.lse.sum() - 0.7 * out.entropy.sum()
        (loss + 0.2 * (out.target_logit * rw.flip(0)).sum()).backward()
        return out, grads(xs)

    out, g_out = run(dtype, K.fused_linear_logprobs, impl="torch", config=CFG)
    ref, g_ref = run(torch.float64, K.fused_linear_logprobs_reference)
    for f in STATS:
        _assert_matches(f, getattr(out, f), getattr(ref, f), dtype, floor=1.0)
    assert torch.equal(out.argmax, ref.argmax)
    for name, a, r in zip(("dh", "dW", "db"), g_out, g_ref, strict=True):
        _assert_matches(name, a, r, dtype)


def test_torch_path_fused_linear_only_weight_needs_grad():
    h, w, b = (x.double() for x in _flp_inputs(bias=True))
    t = _token_ids()
    (w_op,) = leaves(torch.float64, w)
    (w_ref,) = leaves(torch.float64, w)
    K.fused_linear_logprobs(h, w_op, t, b, impl="torch", config=CFG).logp.sum().backward()
    K.fused_linear_logprobs_reference(h, w_ref, t, b).logp.sum().backward()
    _assert_matches("dW", w_op.grad, w_ref.grad, torch.float64)


def test_torch_path_fused_linear_never_holds_full_vocab(monkeypatch):
    """Forward and backward see the logits [N, V] only as chunks of <= slice_bytes fp32 columns."""
    widths = []
    raw_logits = flp_module._raw_logits

    def spy(h, w, b, v0, v1):
        widths.append(v1 - v0)
        return raw_logits(h, w, b, v0, v1)

    monkeypatch.setattr(flp_module, "_raw_logits", spy)
    h, w, b = leaves(torch.float32, *_flp_inputs(bias=True))
    out = K.fused_linear_logprobs(h, w, _token_ids(), b, impl="torch", config=CFG)
    assert out.entropy is None  # not requested: an empty tensor from the op, None here
    out.logp.sum().backward()
    assert widths == [10, 10, 10, 7] * 2  # forward, then the recomputing backward
    big = dataclasses.replace(CFG, slice_bytes=64 << 20)
    widths.clear()
    K.fused_linear_logprobs(h, w, _token_ids(), b, impl="torch", config=big)
    assert widths == [V]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("opts", [{}, {"softcap": 5.0, "temperature": 0.7}], ids=["plain", "cap-T"])
def test_torch_path_token_logprobs_matches_float64_reference(dtype, opts):
    logits = (torch.randn(V, N, generator=generator(1)) * 4).t()  # non-contiguous rows
    t = _token_ids(seed=1)

    def run(xdt, fn, **kw):
        (x,) = leaves(xdt, logits)
        out = fn(x, t, with_entropy=True, **opts, **kw)
        rw = torch.linspace(0.5, 1.5, N, dtype=xdt)
        loss = (out.logp * rw).sum() + 0.3 * out.lse.sum() + 0.7 * out.entropy.sum()
        (loss + 0.2 * out.target_logit.sum()).backward()
        return out, x.grad

    out, g_out = run(dtype, K.token_logprobs, impl="torch")
    ref, g_ref = run(torch.float64, K.token_logprobs_reference)
    for f in STATS:
        _assert_matches(f, getattr(out, f), getattr(ref, f), dtype, floor=1.0)
    assert torch.equal(out.argmax, ref.argmax)
    _assert_matches("dlogits", g_out, g_ref, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_torch_path_value_head_and_segments_match_float64_reference(dtype):
    cu, mask = _segments()
    g = generator(2)
    h, w, b = torch.randn(N, D, generator=g), torch.randn(D, generator=g), torch.randn(1)
    x = torch.randn(N, generator=g)
    res = []
    for xdt, impl in ((dtype, "torch"), (torch.float64, None)):
        xs = leaves(xdt, h, w, b, x)
        if impl is None:
            vh = K.value_head_scores_reference(*xs[:3], cu_seqlens=cu, mask=mask.bool())
            seg = K.segment_reduce_reference(xs[3], cu, mask=mask.bool())
        else:
            vh = K.value_head_scores(*xs[:3], cu_seqlens=cu, mask=mask.bool(), impl=impl)
            seg = K.segment_reduce(xs[3], cu, mask=mask.bool(), impl=impl)
        rw = torch.linspace(-1, 2, N, dtype=xdt)
        loss = (vh.z * rw).sum() + vh.segments.sum.sum() + 2 * vh.segments.mean.sum()
        (loss + (seg.sum * torch.arange(3)).sum() + seg.mean.sum()).backward()
        res.append(((vh.z, *vh.segments, *seg), grads(xs)))
    (out, g_out), (ref, g_ref) = res
    for i, (a, r) in enumerate(zip(out, ref, strict=True)):
        _assert_matches(f"output {i}", a, r, dtype)
    for name, a, r in zip(("dh", "dw", "db", "dx"), g_out, g_ref, strict=True):
        _assert_matches(name, a, r, dtype)


# ----------------------------------------------------------------------------- torch.compile
@pytest.fixture
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _assert_close_fp32(name, a, b):
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=lambda m: f"{name}: {m}")


class TinyLM(nn.Module):
    """Embedding -> linear trunk -> LM head; SFT loss (op 2) plus sequence DPO on the same head."""

    def __init__(self, vocab=V, dim=16):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.trunk = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, vocab)
        self.register_buffer("ref_head", torch.randn(vocab, dim) / dim**0.5)

    def forward(self, tokens, target):
        h = torch.tanh(self.trunk(self.embed(tokens)))
        # 1600 B: chunks of 10 vocabulary columns for the 40 tokens of the batch
        kw = dict(softcap=5.0, impl="torch", config=dataclasses.replace(CFG, slice_bytes=1600))
        out = K.fused_linear_logprobs(
            h, self.head.weight, target, self.head.bias, with_entropy=True, **kw
        )
        action = (target != -100).float()
        sft = -(out.logp * action).sum() / action.sum() - 0.01 * out.entropy.mean()
        dpo = K.fused_linear_dpo_loss(
            h, self.head.weight, target, bias=self.head.bias, ref_weight=self.ref_head, beta=0.5,
            **kw,
        )  # fmt: skip
        return sft + dpo.loss, out.lse, dpo.reward_margins


def _lm_batch(pairs=2, t=9, seed=0):
    g = generator(seed)
    tokens = torch.randint(0, V, (2 * pairs, t), generator=g)
    target = torch.randint(0, V, (2 * pairs, t), generator=g)
    target[:, :3] = -100  # prompt
    target[1, -2:] = -100  # padding
    return tokens, target


def _param_grads(model):
    return {n: p.grad for n, p in model.named_parameters()}


@pytest.mark.usefixtures("fresh_dynamo")
def test_compiled_lm_loss_matches_eager_inductor():
    """The issue's test: a model whose loss uses op 2 and fused DPO, compiled with the default
    (inductor) backend on CPU, fullgraph; outputs and every parameter gradient equal eager's."""
    torch.manual_seed(0)
    eager = TinyLM()
    compiled = copy.deepcopy(eager)
    fn = torch.compile(compiled, fullgraph=True)
    tokens, target = _lm_batch()
    out_c = fn(tokens, target)
    out_c[0].backward()
    out_e = eager(tokens, target)
    out_e[0].backward()
    for name, a, b in zip(("loss", "lse", "margins"), out_c, out_e, strict=True):
        _assert_close_fp32(name, a, b)
    g_e = _param_grads(eager)
    for name, g in _param_grads(compiled).items():
        _assert_close_fp32(name, g, g_e[name])


def _capturing_backend():
    """aot_eager that keeps the forward and backward graphs' code."""
    codes = []

    def keep(gm, _inputs):
        codes.append(gm.code)
        return make_boxed_func(gm.forward)

    return aot_autograd(fw_compiler=keep, bw_compiler=keep), codes


def _scoring_losses(h, w, b, vw, vb, ref_w, target, cu, impl):
    """All public ops but fused_linear_dpo_loss (TinyLM has it) in one loss, plus two outputs of
    no_grad / integer ops."""
    kw = dict(impl=impl, config=CFG)
    tq = K.token_q_scores(h, w, target, b, beta=0.5, cu_seqlens=cu, softcap=4.0, **kw)
    tl = K.token_logprobs(h @ w.t() + b, target, temperature=0.9, with_entropy=True, impl=impl)
    vh = K.value_head_scores(h, vw, vb, cu_seqlens=cu, mask=target != -100, impl=impl)
    seg = K.segment_reduce(tl.entropy, cu, mask=target != -100, impl=impl)
    qrm_v = K.qrm_pairwise_loss(h, vw, target, head="value", bias=vb, cu_seqlens=cu, **kw)
    qrm_lm = K.qrm_pairwise_loss(h, w, target, bias=b, cu_seqlens=cu, **kw)
    half = (cu.numel() - 1) // 2
    dpo = K.dpo_loss_from_logps(
        tq.segments.sum[:half], tq.segments.sum[half:], seg.mean[:half], seg.mean[half:],
        loss_type="ipo", chosen_num_tokens=seg.count[:half], rejected_num_tokens=seg.count[half:],
    )  # fmt: skip
    iq = K.implicit_step_q(h, w, target, ref_weight=ref_w, bias=b, cu_seqlens=cu, **kw)
    loss = (
        tq.advantage.sum() + tl.logp.sum() + vh.segments.mean.sum() + seg.sum.sum()
        + qrm_v.loss + qrm_lm.loss + dpo.loss + F.softplus(vh.z).mean()
    )  # fmt: skip
    return loss, iq.q, tq.v, tl.argmax


def _scoring_inputs(lengths, seed=0):
    g = generator(seed)
    cu = K.cu_seqlens_from_lengths(torch.tensor(lengths))
    n = sum(lengths)
    target = torch.randint(0, V, (n,), generator=g)
    target[torch.rand(n, generator=g) < 0.25] = -100
    params = leaves(
        torch.float32,
        torch.randn(n, D, generator=g),
        torch.randn(V, D, generator=g) / D**0.5,
        torch.randn(V, generator=g),
        torch.randn(D, generator=g),
        torch.randn(1, generator=g),
    )
    return (*params, torch.randn(V, D, generator=g) / D**0.5, target, cu)


def _check_compiled_scoring(impl, shapes):
    backend, codes = _capturing_backend()
    fn = torch.compile(_scoring_losses, fullgraph=True, backend=backend)
    for lengths in shapes:  # a second shape recompiles with dynamic shapes (symbolic fake impls)
        inputs = _scoring_inputs(lengths)
        out_c = fn(*inputs, impl)
        g_c = torch.autograd.grad(out_c[0], inputs[:5])
        eager = _scoring_inputs(lengths)
        out_e = _scoring_losses(*eager, impl)
        g_e = torch.autograd.grad(out_e[0], eager[:5])
        for name, a, b in zip(("loss", "implicit q", "v", "argmax"), out_c, out_e, strict=True):
            _assert_close_fp32(name, a, b)
        for name, a, b in zip(("dh", "dW", "db", "dvw", "dvb"), g_c, g_e, strict=True):
            _assert_close_fp32(name, a, b)
    code = "\n".join(codes)
    for op in (
        "fused_linear_logprobs", "fused_linear_logprobs_backward", "token_logprobs",
        "token_logprobs_backward", "value_head_scores", "value_head_scores_backward",
        "segment_reduce",
    ):  # fmt: skip
        assert f"torch.ops.qengine.{op}.default" in code, op


@pytest.mark.usefixtures("fresh_dynamo")
def test_compiled_scoring_ops_match_eager_torch_path():
    """segment_reduce, value_head_scores, qrm_pairwise_loss (both heads), token_q_scores,
    token_logprobs, dpo_loss_from_logps and implicit_step_q under fullgraph. aot_eager backend:
    the ops are opaque to any backend, so this checks tracing, fake impls and the backward graph;
    inductor's C++ compile would only add time."""
    _check_compiled_scoring("torch", [[5, 3, 0, 6], [4, 9, 2, 7, 1, 3]])


@pytest.mark.triton
@pytest.mark.usefixtures("fresh_dynamo")
def test_compiled_scoring_ops_match_eager_triton_path():
    """The Triton path goes through the same custom ops (kernels run by the interpreter)."""
    _check_compiled_scoring("triton", [[5, 3, 0, 6]])
