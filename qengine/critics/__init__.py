"""Critics for the Q-vs-V question: a state-value model, a V-guided agent, a generative critic.

* :class:`ValueModel` — V(s), a scalar head on any Hugging Face causal LM; trained by regression
  on MCTS node values (:func:`train_value_regression`, records from :func:`value_records`) or by
  Bradley-Terry on sibling successor states (:func:`train_value_bt`, :func:`sibling_pairs`);
* :class:`VGuidedAgent` — steps each candidate action in a private environment and executes the
  one whose next state has the highest value;
* :class:`GenerativeCritic` — a causal LM that reasons, then writes ``Value: <number>``
  (:func:`parse_value`), conditioned in context on recent samples of the current actor.

Every critic has ``score(texts) -> np.ndarray``. Names are imported on first use, so
``import qengine.critics`` needs neither torch nor transformers. See ``docs/critics.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "FAILURES",
    "GenerativeCritic",
    "HFGenerator",
    "InContextSample",
    "ParsedValue",
    "VGuidedAgent",
    "ValueModel",
    "ValueTrainConfig",
    "bt_loss",
    "evaluate_pairs",
    "evaluate_regression",
    "node_values",
    "parse_value",
    "regression_loss",
    "sibling_pairs",
    "split_by_task",
    "train_value_bt",
    "train_value_regression",
    "value_records",
]

_LAZY = {
    "FAILURES": ".parsing",
    "ParsedValue": ".parsing",
    "parse_value": ".parsing",
    "GenerativeCritic": ".generative",
    "HFGenerator": ".generative",
    "InContextSample": ".generative",
    "VGuidedAgent": ".agents",
    "ValueModel": ".value_model",
    "ValueTrainConfig": ".value_train",
    "bt_loss": ".value_train",
    "evaluate_pairs": ".value_train",
    "evaluate_regression": ".value_train",
    "regression_loss": ".value_train",
    "train_value_bt": ".value_train",
    "train_value_regression": ".value_train",
    "node_values": ".value_data",
    "sibling_pairs": ".value_data",
    "split_by_task": ".value_data",
    "value_records": ".value_data",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
