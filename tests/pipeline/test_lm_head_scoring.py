"""Inference scoring without [tokens × V] logits: ``QValueModel`` and ``HFPolicy.score`` run the
decoder body and score only the action tokens' hidden states through the fused LM-head kernel
(``qengine.models.causal_lm.head_logprobs``). They must give what the full logits gave.

The reference, written out here, is the old way: the whole model's logits of each sequence,
``log_softmax`` over the vocabulary, the action tokens' entries summed. Tiny models of several
architectures cover what the head does after the matmul: tied embeddings (Llama), a soft-cap
(Gemma-2), a bias (Phi), a logit scale (Cohere) and a logit divisor (Granite).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from qengine.agents import QValueModel, candidate_logprobs
from qengine.models import build_word_tokenizer, tiny_causal_lm
from qengine.models.causal_lm import head_logprobs, lm_head
from qengine.policies import HFPolicy

ARCHS = ["llama", "gemma2", "phi", "cohere", "granite"]
WORDS = "buy a red blue green pink gold shirt click search the store now [ ] for me please"
PROMPT = "buy a red shirt for me please search the store"
CANDIDATES = ["click [ red shirt ]", "blue", "search the gold shirt now please"]
PAIRS = [
    ("buy a red shirt ", "click [ red shirt ]"),
    ("search the store now", " blue"),
    ("red", " green pink gold shirt"),
]


@pytest.fixture(scope="module")
def tokenizer():
    return build_word_tokenizer([WORDS])


def tiny_model(arch: str, tok, *, seed: int = 0):
    """A randomly initialised 2-layer model of ``arch``, its weights spread out (std ~0.2 noise)
    so that its distributions are peaked and a forgotten soft-cap, bias or scale shows."""
    import transformers as tf

    common = dict(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )  # fmt: skip
    torch.manual_seed(seed)
    if arch == "llama":
        model = tiny_causal_lm(tok, hidden_size=32, num_layers=2, num_heads=2, seed=seed)
    elif arch == "gemma2":  # soft-capped logits, tied embeddings, sliding-window layers
        config = tf.Gemma2Config(
            **common, head_dim=16, final_logit_softcapping=2.0, sliding_window=4
        )
        model = tf.Gemma2ForCausalLM(config)
    elif arch == "phi":  # an untied LM head with a bias
        model = tf.PhiForCausalLM(tf.PhiConfig(**common))
    elif arch == "cohere":  # logits * logit_scale
        model = tf.CohereForCausalLM(tf.CohereConfig(**common, logit_scale=2.5))
    elif arch == "granite":  # logits / logits_scaling
        model = tf.GraniteForCausalLM(tf.GraniteConfig(**common, logits_scaling=0.4))
    else:
        raise ValueError(arch)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return model.eval()


# ----------------------------------------------------------------------------- old-way references
@torch.no_grad()
def full_logits_logprob(model, ids: list[int], n_act: int) -> float:
    """Σ log_softmax(full logits) over the last ``n_act`` tokens of ``ids`` (one sequence)."""
    logits = model(input_ids=torch.tensor([ids])).logits[0].float()  # [T, V]
    logp = torch.log_softmax(logits[:-1], dim=-1)
    return sum(float(logp[t - 1, ids[t]]) for t in range(len(ids) - n_act, len(ids)))


def reference_candidate_logprobs(model, prompt_ids, candidates) -> np.ndarray:
    return np.array([full_logits_logprob(model, prompt_ids + c, len(c)) for c in candidates])


def encode(tok, prompt: str, candidates: list[str]) -> tuple[list[int], list[list[int]]]:
    prompt_ids = tok(prompt)["input_ids"]
    cands = [tok(c, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for c in candidates]
    return prompt_ids, cands


# ----------------------------------------------------------------------------- the LM head
def test_lm_head_reads_the_transform_each_architecture_applies(tokenizer) -> None:
    heads = {arch: lm_head(tiny_model(arch, tokenizer)) for arch in ARCHS}
    assert heads["llama"].softcap is None and heads["llama"].temperature == 1.0
    assert heads["llama"].bias is None
    assert heads["gemma2"].softcap == 2.0 and heads["gemma2"].temperature == 1.0
    assert heads["phi"].bias is not None and heads["phi"].bias.shape == (len(tokenizer),)
    assert heads["cohere"].temperature == pytest.approx(1 / 2.5)
    assert heads["granite"].temperature == pytest.approx(0.4)
    llama = tiny_model("llama", tokenizer)
    assert lm_head(llama).weight is llama.get_input_embeddings().weight  # tied: the same tensor


@pytest.mark.parametrize("arch", ARCHS)
def test_head_logprobs_equal_the_models_log_softmax(tokenizer, arch) -> None:
    model = tiny_model(arch, tokenizer)
    ids = torch.tensor([tokenizer(WORDS)["input_ids"]])
    with torch.no_grad():
        out = model(input_ids=ids, output_hidden_states=True)
        want = torch.log_softmax(out.logits[0, :-1].float(), -1).gather(-1, ids[0, 1:, None])[:, 0]
        got = head_logprobs(model, out.hidden_states[-1][0, :-1], ids[0, 1:])
        hot = head_logprobs(model, out.hidden_states[-1][0, :-1], ids[0, 1:], temperature=2.0)
        plain = torch.log_softmax(out.hidden_states[-1][0, :-1] @ lm_head(model).weight.t(), -1)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    want_hot = torch.log_softmax(out.logits[0, :-1].float() / 2.0, -1)
    torch.testing.assert_close(hot, want_hot.gather(-1, ids[0, 1:, None])[:, 0])
    if arch != "llama":  # the transform matters: the bare matmul is far off
        assert (plain.gather(-1, ids[0, 1:, None])[:, 0] - want).abs().max() > 1e-2


# ----------------------------------------------------------------------------- Q-value model
@pytest.mark.parametrize("arch", ARCHS)
def test_cached_candidate_logprobs_equal_full_logits(tokenizer, arch) -> None:
    model = tiny_model(arch, tokenizer)
    prompt_ids, cands = encode(tokenizer, PROMPT, CANDIDATES)
    got = candidate_logprobs(model, prompt_ids, cands)
    assert got.dtype == torch.float32 and got.shape == (len(cands),)
    want = reference_candidate_logprobs(model, prompt_ids, cands)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def q_model_dirs(tokenizer, tmp_path_factory) -> dict:
    """Saved Q-value models (policy and reference differ) with a soft-cap and with a head bias."""
    dirs = {}
    for arch in ("gemma2", "phi"):
        out = tmp_path_factory.mktemp(f"qmodel_{arch}")
        policy = tiny_model(arch, tokenizer, seed=1)
        reference = tiny_model(arch, tokenizer, seed=2)
        dirs[arch] = QValueModel(policy, reference, tokenizer, beta=0.3).save_pretrained(out)
    return dirs


@pytest.fixture(params=["gemma2", "phi"])
def q_model_dir(request, q_model_dirs):
    return q_model_dirs[request.param]


def test_q_value_model_scores_equal_full_logits(q_model_dir) -> None:
    q_model = QValueModel.from_pretrained(q_model_dir, device="cpu")
    got = q_model.score(PROMPT, CANDIDATES)
    prompt_ids, cands = q_model._ids(PROMPT, CANDIDATES)
    want = q_model.beta * (
        reference_candidate_logprobs(q_model.model, prompt_ids, cands)
        - reference_candidate_logprobs(q_model.reference, prompt_ids, cands)
    )
    assert got.dtype == np.float64 and got.shape == (len(CANDIDATES),)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    batch = q_model.score_batch([PROMPT, "store"], [CANDIDATES, ["now"]])
    np.testing.assert_allclose(batch[0], got, rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- HF policy
@pytest.mark.parametrize("arch", ARCHS)
def test_policy_scores_equal_full_logits(tokenizer, arch) -> None:
    model = tiny_model(arch, tokenizer)
    pol = HFPolicy(model, tokenizer, score_batch_size=2)  # two micro-batches, left-padded
    got = pol.score(PAIRS)
    want = [min(0.0, full_logits_logprob(model, *pol._split(c, a))) for c, a in PAIRS]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- no [tokens × V]
class ShapeSpy(TorchDispatchMode):
    """Records the shape of every tensor an aten op allocates (views, e.g. ``W.t()``, are not)."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view:
            tensors = tree_flatten(out)[0]
            self.shapes += [tuple(t.shape) for t in tensors if isinstance(t, torch.Tensor)]
        return out


def logit_rows(shapes: list[tuple[int, ...]], vocab: int) -> int:
    """The most rows of any [..., V] tensor made (0: none)."""
    rows = [int(np.prod(s[:-1])) for s in shapes if len(s) >= 2 and s[-1] == vocab]
    return max(rows, default=0)


def forbid_lm_head(model) -> None:
    def hook(module, args, output):
        raise AssertionError(f"the LM head of {type(model).__name__} ran: full logits were made")

    model.get_output_embeddings().register_forward_hook(hook)


def test_q_value_model_never_runs_the_lm_head(q_model_dir) -> None:
    q_model = QValueModel.from_pretrained(q_model_dir, device="cpu")
    want = q_model.score(PROMPT, CANDIDATES)
    forbid_lm_head(q_model.model)
    forbid_lm_head(q_model.reference)
    with ShapeSpy() as spy:
        got = q_model.score(PROMPT, CANDIDATES)
    np.testing.assert_array_equal(got, want)
    # At most the scored tokens get logits (the kernel's PyTorch fallback on CPU, unless the op
    # hides them as a custom op); the old code made [n, width, V] and [1, prompt, V].
    _, cands = q_model._ids(PROMPT, CANDIDATES)
    assert logit_rows(spy.shapes, len(q_model.tokenizer)) <= sum(map(len, cands))


def test_policy_scoring_never_runs_the_lm_head(tokenizer) -> None:
    model = tiny_model("gemma2", tokenizer)
    pol = HFPolicy(model, tokenizer)
    want = pol.score(PAIRS)
    forbid_lm_head(model)
    with ShapeSpy() as spy:
        got = pol.score(PAIRS)
    assert got == want
    n_act = sum(pol._split(c, a)[1] for c, a in PAIRS)
    assert logit_rows(spy.shapes, len(tokenizer)) <= n_act  # the old code: [B, A + 1, V]


_TRITON_SCRIPT = """
import json, sys
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from qengine.policies import HFPolicy
from qengine.agents import QValueModel

class Spy(TorchDispatchMode):
    shapes = []
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view:
            tensors = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
            self.shapes += [tuple(t.shape) for t in tensors]
        return out

for path in sys.argv[1:]:
    q_model = QValueModel.from_pretrained(path, device="cpu")
    pol = HFPolicy(q_model.model, q_model.tokenizer)
    with Spy() as spy:
        q = q_model.score(PROMPT, CANDIDATES).tolist()
        s = pol.score(PAIRS)
    v = len(q_model.tokenizer)
    wide = sorted({sh for sh in spy.shapes if len(sh) >= 2 and sh[-1] == v})
    print(json.dumps({"q": q, "score": s, "wide": wide}))
"""


@pytest.mark.skipif(
    not __import__("qengine.kernels", fromlist=["HAS_TRITON"]).HAS_TRITON,
    reason="triton not installed",
)
def test_triton_path_makes_no_logits_at_all(q_model_dirs, tmp_path) -> None:
    """Through the Triton kernels (interpreted on CPU) the scores are the PyTorch path's and no
    [..., V] tensor is made outside the kernel ops (whose own memory ``tests/kernels`` checks:
    once an op is a ``torch.library.custom_op`` a dispatch mode does not see inside it)."""
    script = f"PROMPT = {PROMPT!r}\nCANDIDATES = {CANDIDATES!r}\nPAIRS = {PAIRS!r}\n"
    script += textwrap.dedent(_TRITON_SCRIPT)
    env = {**os.environ, "TRITON_INTERPRET": "1", "QENGINE_KERNELS_IMPL": "triton"}
    dirs = list(q_model_dirs.values())
    # Outside the source tree: the installed package, with its native core.
    res = subprocess.run(
        [sys.executable, "-c", script, *map(str, dirs)],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.strip().splitlines()[-len(dirs) :]
    for path, line in zip(dirs, lines, strict=True):
        out = json.loads(line)
        assert out["wide"] == [], f"[..., V] tensors were made: {out['wide']}"
        # the PyTorch fallback, in this process
        q_model = QValueModel.from_pretrained(path, device="cpu")
        want = q_model.score(PROMPT, CANDIDATES)
        np.testing.assert_allclose(out["q"], want, rtol=1e-5, atol=1e-5)
        pol = HFPolicy(q_model.model, q_model.tokenizer)
        np.testing.assert_allclose(out["score"], pol.score(PAIRS), rtol=1e-5, atol=1e-5)
