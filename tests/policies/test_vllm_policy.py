"""VLLMPolicy: the import guard for real; the plumbing with a stand-in ``vllm`` module.

vLLM needs a CUDA GPU and is not installed here, so the stand-in below mimics the documented
shapes of ``vllm.LLM.generate`` (``RequestOutput.outputs[j]`` with ``text``, ``token_ids`` and
``logprobs`` = one ``{token_id: Logprob(logprob, rank, decoded_token)}`` per token). This checks
qengine's side only; VLLMPolicy is untested against a real vLLM engine.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from dataclasses import dataclass, replace

import pytest

from qengine.envs import TextState
from qengine.policies import Candidate, Policy, VLLMPolicy

SAMPLES = [
    [" Buy.\nAction: click[buy now]", "??", " Buy!\nAction: click[buy now]"],
    [" Search.\nAction: search[red mug]", " Item.\nAction: click[b0a]"],
]


def test_import_guard_says_pip_install_vllm(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(ImportError, match=r"pip install vllm.*GPU|GPU.*pip install vllm"):
        VLLMPolicy(tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="real vLLM present")
def test_import_guard_without_monkeypatch(tmp_path) -> None:
    with pytest.raises(ImportError, match="pip install vllm"):
        VLLMPolicy(tmp_path)


@dataclass
class _Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


def _completion(text: str) -> types.SimpleNamespace:
    toks = [text[i : i + 3] for i in range(0, len(text), 3)]  # 3-character "tokens"
    ids = list(range(100, 100 + len(toks)))
    steps = [{tid: _Logprob(-0.25, 1, tok)} for tid, tok in zip(ids, toks, strict=True)]
    return types.SimpleNamespace(text=text, token_ids=ids, logprobs=steps)


def _fake_vllm() -> types.ModuleType:
    mod = types.ModuleType("vllm")

    class SamplingParams:
        def __init__(self, **kw) -> None:
            self.__dict__.update(kw)

    class LLM:
        def __init__(self, model: str, **kw) -> None:
            self.model, self.kw, self.calls = model, kw, []

        def generate(self, prompts, params, use_tqdm=True):
            self.calls.append((list(prompts), params))
            return [
                types.SimpleNamespace(
                    prompt=p, outputs=[_completion(t) for t in SAMPLES[i % 2][: params.n]]
                )
                for i, p in enumerate(prompts)
            ]

    mod.SamplingParams, mod.LLM = SamplingParams, LLM
    return mod


def _expected(text: str, action: str) -> float:
    start, end = text.index(action), text.index(action) + len(action)
    return -0.25 * sum(1 for lo in range(0, len(text), 3) if lo < end and lo + 3 > start)


def test_plumbing_with_a_stand_in_vllm(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "vllm", _fake_vllm())
    pol = VLLMPolicy(tmp_path, temperature=0.8, seed=7, dtype="bfloat16")
    assert isinstance(pol, Policy)
    assert pol.llm.model == str(tmp_path) and pol.llm.kw == {"dtype": "bfloat16"}
    s = TextState("shop", "train/00000", "buy a red mug", "[search]")
    out = pol.propose([s, replace(s, done=True), s], 3)
    assert out[1] == []
    assert out[0] == [Candidate("click[buy now]", _expected(SAMPLES[0][0], "click[buy now]"))]
    assert out[2] == [
        Candidate("search[red mug]", _expected(SAMPLES[1][0], "search[red mug]")),
        Candidate("click[b0a]", _expected(SAMPLES[1][1], "click[b0a]")),
    ]
    ((prompts, params),) = pol.llm.calls  # one generate call for the whole batch
    assert len(prompts) == 2 and prompts[0].endswith("Thought:")
    assert (params.n, params.temperature, params.logprobs, params.seed) == (3, 0.8, 0, 7)
    greedy = VLLMPolicy(pol.llm, greedy=True)
    assert greedy.sampling_params(5).n == 1 and greedy.sampling_params(5).temperature == 0.0
    with pytest.raises(FileNotFoundError, match="local"):
        VLLMPolicy(tmp_path / "missing")
    with pytest.raises(TypeError, match="llm_kwargs"):
        VLLMPolicy(pol.llm, dtype="half")
