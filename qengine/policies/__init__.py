"""Policies: propose candidate actions for batches of text states.

The LLM policies are imported on first use, so ``import qengine.policies`` needs neither torch,
transformers nor vLLM:

* :class:`HFPolicy` — a Hugging Face causal LM (``qengine.policies.hf``);
* :class:`OpenAICompatiblePolicy` — any OpenAI-compatible HTTP endpoint
  (``qengine.policies.openai_compat``, standard library only);
* :class:`VLLMPolicy` — an in-process vLLM engine, GPU only (``qengine.policies.vllm_policy``).
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import Candidate, Policy, dedupe
from .scripted import ScriptedPolicy

__all__ = [
    "Candidate",
    "HFPolicy",
    "OpenAICompatiblePolicy",
    "Policy",
    "ScriptedPolicy",
    "VLLMPolicy",
    "dedupe",
]

_LAZY = {
    "HFPolicy": ".hf",
    "OpenAICompatiblePolicy": ".openai_compat",
    "VLLMPolicy": ".vllm_policy",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
