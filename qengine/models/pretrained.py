"""Save and load qengine's models the Hugging Face way: one directory per model.

The Q-value model, the value model and the Q-RM each write, with ``save_pretrained(dir)``:

    dir/config.json, model.safetensors, tokenizer files   the causal LM (``save_pretrained``)
    dir/<sub>/...                                         extra LMs (the Q-model's reference)
    dir/<name>.safetensors                                extra tensors (a value head)
    dir/<qengine config>.json                             ``{"format": n, ...}``: what it is

and read it back with ``from_pretrained(dir, dtype=..., device=...)`` (transformers 5's
``dtype=``). This module is the one place that layout is written and checked: a directory without
the model's qengine config raises :class:`NotAModelError`, which says what to pass instead.
Safetensors only, never pickle; nothing downloads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import UsageFileNotFoundError

__all__ = ["NotAModelError", "load_lm", "load_tensors", "read_config", "save_model_dir"]


class NotAModelError(UsageFileNotFoundError):
    """A path given as a qengine model (Q-model, V-model, Q-RM) is not one: no such directory, or
    no qengine config file in it. The ``qengine`` command prints the message and exits 2."""


def save_model_dir(
    path: str | Path,
    *,
    config_file: str,
    config: Mapping[str, Any],
    model: Any,
    tokenizer: Any = None,
    submodels: Mapping[str, Any] | None = None,
    tensors: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Write a model directory (layout above) and return its path.

    ``config``: the JSON-serialisable qengine config (its ``format`` included);
    ``submodels``: sub-directory → LM saved there; ``tensors``: file name → tensor dict (CPU
    copies are written as safetensors).
    """
    from safetensors.torch import save_file

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    for sub, lm in (submodels or {}).items():
        lm.save_pretrained(out / sub)
    for name, state in (tensors or {}).items():
        cpu = {k: v.detach().cpu().contiguous() for k, v in state.items()}
        save_file(cpu, str(out / name), metadata={"format": str(config.get("format", 1))})
    (out / config_file).write_text(json.dumps(dict(config), indent=2))
    return out


def read_config(
    path: str | Path, *, config_file: str, kind: str, hint: str, formats: tuple[int, ...] = (1,)
) -> tuple[Path, dict[str, Any]]:
    """``(directory, qengine config)`` of a saved model.

    Raises :class:`NotAModelError` when ``path`` is not a directory holding ``config_file``
    (``kind`` names the model in the message, ``hint`` says how to make one), ValueError for a
    format this version cannot read.
    """
    root = Path(path).expanduser()
    if not (root / config_file).is_file():
        why = "does not exist" if not root.exists() else f"has no {config_file}"
        raise NotAModelError(f"{str(path)!r} is not a qengine {kind} ({why}); {hint}")
    config = json.loads((root / config_file).read_text())
    if config.get("format", 1) not in formats:
        raise ValueError(
            f"{root} holds a {kind} in format {config.get('format')!r}; this qengine reads "
            f"format(s) {list(formats)}: upgrade qengine or retrain"
        )
    return root, config


def load_lm(
    root: Path, *, dtype: Any = None, device: Any = None, tokenizer: bool = True
) -> tuple[Any, Any]:
    """The causal LM (and tokenizer) saved in ``root``, through the one loader
    ``qengine.models.causal_lm.load_causal_lm`` (``dtype=None``: bfloat16 on CUDA, else
    float32)."""
    from .causal_lm import load_causal_lm

    return load_causal_lm(root, device=device, dtype=dtype, tokenizer=tokenizer)


def load_tensors(root: Path, name: str) -> dict[str, Any]:
    """A tensor file written by :func:`save_model_dir` (on the CPU)."""
    from safetensors.torch import load_file

    return load_file(str(root / name))
