"""Training a :class:`ValueModel`: regression on MCTS node values, or Bradley-Terry on siblings.

Regression (records ``{state, value[, visits | weight], task}``, e.g. ``value_records``)::

    L = Σ_i w_i (V(s_i) − y_i)² / Σ_i w_i,     w_i = visits_i (``weight_by_visits``) or 1

Bradley-Terry on successor states of one parent (records ``{chosen, rejected, task}``, e.g.
``sibling_pairs``; ``chosen`` is the child state with the higher Q)::

    L = −mean_p log σ(V(s_w,p) − V(s_l,p))

Both: AdamW with linear warmup and decay (``qengine.train.optim.adamw_with_warmup``), gradient
accumulation and clipping, bf16 autocast on CUDA, a held-out split by task evaluated before
training and after every epoch (regression: MSE, MAE and the MSE of predicting the training mean;
pairs: accuracy, ties counted half, and the mean margin V_w − V_l). With ``output_dir`` the model
is saved with :meth:`ValueModel.save_pretrained`, its history in ``qengine_value.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..train import distributed
from ..train.config import TrainConfig
from ..train.heldout import pair_accuracy, split_by_task
from ..train.loop import train_epochs
from .value_model import ValueModel

_log = logging.getLogger(__name__)

__all__ = [
    "ValueTrainConfig",
    "bt_loss",
    "evaluate_pairs",
    "evaluate_regression",
    "regression_loss",
    "train_value_bt",
    "train_value_regression",
]


@dataclass(frozen=True, kw_only=True)
class ValueTrainConfig(TrainConfig):
    """Hyper-parameters of both value-model trainers: the loop's fields
    (:class:`~qengine.train.config.TrainConfig`; ``per_device_train_batch_size`` counts states
    for regression, pairs for Bradley-Terry) and the regression's options."""

    per_device_train_batch_size: int = 16
    weight_by_visits: bool = False  # regression: weight each node by its MCTS visit count
    init_bias_to_mean: bool = True  # regression: start the head at the mean training target


# ------------------------------------------------------------------------------------ losses
def regression_loss(
    values: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Weighted MSE Σ w (v − y)² / Σ w of [B] tensors (scalar)."""
    err = (values.float() - targets.float()) ** 2
    if weights is None:
        return err.mean()
    w = weights.float()
    return (w * err).sum() / w.sum().clamp_min(1e-12)


def bt_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """Bradley-Terry −mean log σ(V_w − V_l) of [P] tensors (scalar)."""
    return -F.logsigmoid(chosen.float() - rejected.float()).mean()


# ------------------------------------------------------------------------------------ checks
def _check_records(records: Sequence[dict], columns: Sequence[str], kind: str) -> list[dict]:
    records = list(records)
    if not records:
        raise ValueError(f"no {kind} records to train on")
    missing = [c for c in columns if c not in records[0]]
    if missing:
        raise ValueError(
            f"{kind} records need the columns {list(columns)} (missing {missing}); build them "
            "with qengine.critics.value_records / sibling_pairs"
        )
    return records


def _targets(records: Sequence[dict]) -> np.ndarray:
    y = np.array([float(r["value"]) for r in records], dtype=np.float64)
    if not np.isfinite(y).all():
        raise ValueError("regression targets must be finite (a record's 'value' is NaN or inf)")
    return y


def _weights(records: Sequence[dict], cfg: ValueTrainConfig) -> np.ndarray:
    if not cfg.weight_by_visits:
        return np.ones(len(records))
    w = np.array([float(r.get("weight", r.get("visits", 1))) for r in records])
    if not (np.isfinite(w).all() and (w >= 0).all()):
        raise ValueError("visit weights ('weight' or 'visits') must be finite and >= 0")
    return np.maximum(w, 1.0)  # an exact terminal node the search never revisited counts once


# -------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate_regression(
    vm: ValueModel, records: Sequence[dict], *, batch_size: int = 32, train_mean: float = 0.5
) -> dict[str, float]:
    """Held-out MSE and MAE of V against ``value``; ``baseline_mse`` predicts ``train_mean``."""
    if not records:
        return {}
    y = _targets(records)
    v = vm.score([r["state"] for r in records], batch_size=batch_size)
    return {
        "mse": float(np.mean((v - y) ** 2)),
        "mae": float(np.mean(np.abs(v - y))),
        "baseline_mse": float(np.mean((train_mean - y) ** 2)),
    }


@torch.no_grad()
def evaluate_pairs(vm: ValueModel, pairs: Sequence[dict], *, batch_size: int = 32) -> dict:
    """Pair accuracy (V_w > V_l; a tie counts half, like a coin flip) and the mean margin."""
    if not pairs:
        return {}
    vw = vm.score([p["chosen"] for p in pairs], batch_size=batch_size)
    vl = vm.score([p["rejected"] for p in pairs], batch_size=batch_size)
    margin = vw - vl
    return {"accuracy": pair_accuracy(margin), "margin": float(margin.mean())}


# ---------------------------------------------------------------------------------- training
def _fit(
    vm: ValueModel,
    train: list[dict],
    step_loss: Callable[[list[dict]], torch.Tensor],
    evaluate: Callable[[], dict[str, float]],
    cfg: ValueTrainConfig,
    history: dict[str, Any],
    desc: str,
    progress: bool,
) -> None:
    """qengine's training loop (``train_epochs``) on ``train``, evaluated after each epoch."""

    def end_of_epoch(epoch: int, means: dict[str, float]) -> None:
        row: dict[str, Any] = {"epoch": epoch, **means}
        row.update(evaluate())
        history["epochs"].append(row)
        line = f"{desc} epoch {epoch}: " + ", ".join(
            f"{k} {v:.4g}" for k, v in row.items() if k != "epoch"
        )
        _log.info(line)
        if progress:
            tqdm.write(line)

    train_epochs(
        vm,
        len(train),
        lambda idx: (step_loss([train[i] for i in idx]), {}),
        cfg,
        device=vm.device,
        desc=desc,
        progress=progress,
        end_of_epoch=end_of_epoch,
    )
    vm.eval()
    history["eval_after"] = history["epochs"][-1]


def _finish(vm: ValueModel, history: dict[str, Any], output_dir: str | Path | None) -> None:
    vm.history = history
    if output_dir is not None and distributed.is_main_process():
        vm.save_pretrained(output_dir)
    distributed.barrier()  # the other processes return once rank 0 has written the model


def train_value_regression(
    vm: ValueModel,
    records: Sequence[dict],
    *,
    config: ValueTrainConfig | None = None,
    output_dir: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Fit V to node values: records ``{state, value[, visits], task}`` (``value_records``).

    Returns the history: config, sizes, ``eval_before``, per-epoch loss and held-out metrics,
    ``eval_after`` (MSE, MAE, baseline MSE of the training mean).
    """
    cfg = config or ValueTrainConfig()
    records = _check_records(records, ("state", "value"), "regression")
    torch.manual_seed(cfg.seed)
    train, held_out = split_by_task(records, cfg.eval_fraction, cfg.seed)
    if not train:
        raise ValueError("no training records left after the held-out split; lower eval_fraction")
    y, w = _targets(train), _weights(train, cfg)
    mean = float(np.average(y, weights=w))
    _targets(held_out)
    if cfg.init_bias_to_mean:
        with torch.no_grad():  # start from the best constant: training must beat it
            vm.value_head.bias.fill_(mean)
    history: dict[str, Any] = {
        "objective": "regression",
        "config": asdict(cfg),
        "train_states": len(train),
        "eval_states": len(held_out),
        "train_mean": mean,
        "epochs": [],
    }

    def evaluate() -> dict[str, float]:
        return evaluate_regression(
            vm, held_out, batch_size=cfg.per_device_train_batch_size, train_mean=mean
        )

    history["eval_before"] = evaluate()

    def step_loss(chunk: list[dict]) -> torch.Tensor:
        values = vm.values([r["state"] for r in chunk])
        targets = torch.tensor(_targets(chunk), device=values.device)
        weights = torch.tensor(_weights(chunk, cfg), device=values.device)
        return regression_loss(values, targets, weights if cfg.weight_by_visits else None)

    _fit(vm, train, step_loss, evaluate, cfg, history, "V regression", progress)
    _finish(vm, history, output_dir)
    return history


def train_value_bt(
    vm: ValueModel,
    pairs: Sequence[dict],
    *,
    config: ValueTrainConfig | None = None,
    output_dir: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Fit V by Bradley-Terry on sibling successor states ``{chosen, rejected, task}``
    (``sibling_pairs``); each micro-batch runs its P chosen and P rejected states in one pass.

    Returns the history: ``eval_before``, per-epoch loss, held-out accuracy and margin,
    ``eval_after``.
    """
    cfg = config or ValueTrainConfig()
    pairs = _check_records(pairs, ("chosen", "rejected"), "pair")
    torch.manual_seed(cfg.seed)
    train, held_out = split_by_task(pairs, cfg.eval_fraction, cfg.seed)
    if not train:
        raise ValueError("no training pairs left after the held-out split; lower eval_fraction")
    history: dict[str, Any] = {
        "objective": "bradley-terry",
        "config": asdict(cfg),
        "train_pairs": len(train),
        "eval_pairs": len(held_out),
        "epochs": [],
    }

    def evaluate() -> dict[str, float]:
        return evaluate_pairs(vm, held_out, batch_size=cfg.per_device_train_batch_size)

    history["eval_before"] = evaluate()

    def step_loss(chunk: list[dict]) -> torch.Tensor:
        values = vm.values([p["chosen"] for p in chunk] + [p["rejected"] for p in chunk])
        return bt_loss(values[: len(chunk)], values[len(chunk) :])

    _fit(vm, train, step_loss, evaluate, cfg, history, "V Bradley-Terry", progress)
    _finish(vm, history, output_dir)
    return history
