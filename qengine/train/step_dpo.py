"""Step-level DPO: train a Q-value model on MCTS preference pairs (arXiv 2409.09345, section 4).

For a state s with a winning action a_w and a losing sibling a_l, the loss is DPO's

    L = -log σ( β·[(log πθ(a_w|s) - log πref(a_w|s)) - (log πθ(a_l|s) - log πref(a_l|s))] )

and the trained model's implicit Q-value of an action is Q(s, a) = β·(log πθ(a|s) − log πref(a|s)),
up to a per-state constant, which is all that ranking candidate actions needs. The reference πref is
the initial model, frozen; its log-probs are computed once before training.
"""

from __future__ import annotations

import copy
import json
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..data.prompts import PromptStyle, style_actions, style_prompt
from .logprobs import completion_logprobs, completion_rows
from .loop import train_epochs
from .tokenize import encode_completions

QMODEL_CONFIG = "qengine_qmodel.json"
REFERENCE_DIR = "reference"


@dataclass(frozen=True, kw_only=True)
class StepDPOConfig:
    """Hyper-parameters of step-level DPO (paper defaults where it gives them: β = 0.1)."""

    beta: float = 0.1
    learning_rate: float = 1e-4
    epochs: int = 3
    batch_size: int = 8  # pairs per micro-batch
    grad_accumulation: int = 1
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_length: int = 512
    eval_fraction: float = 0.1  # held-out pairs for preference accuracy (0: none)
    prompt_style: PromptStyle = "full"  # "compact": instruction, past actions, last observation
    bf16: bool | None = None  # None: on CUDA when supported
    seed: int = 0

    def __post_init__(self) -> None:
        if not (self.beta > 0 and math.isfinite(self.beta)):
            raise ValueError(f"beta must be a positive number, got {self.beta}")
        if self.epochs < 1 or self.batch_size < 1 or self.grad_accumulation < 1:
            raise ValueError("epochs, batch_size and grad_accumulation must be >= 1")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ValueError("eval_fraction must lie in [0, 1)")


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Sigmoid DPO on summed completion log-probs [P] → (mean loss, per-pair metrics)."""
    chosen = beta * (policy_chosen - reference_chosen)
    rejected = beta * (policy_rejected - reference_rejected)
    margin = chosen - rejected
    loss = -F.logsigmoid(margin).mean()
    return loss, {"chosen_reward": chosen, "rejected_reward": rejected, "margin": margin}


def _split(records: Sequence[dict], fraction: float, seed: int) -> tuple[list, list]:
    """Held-out split by task, so no state of an evaluation task is seen in training."""
    tasks = sorted({str(r.get("task", i)) for i, r in enumerate(records)})
    random.Random(seed).shuffle(tasks)
    held = set(tasks[: round(len(tasks) * fraction)]) if fraction > 0 else set()
    train = [r for i, r in enumerate(records) if str(r.get("task", i)) not in held]
    evaluation = [r for i, r in enumerate(records) if str(r.get("task", i)) in held]
    return train, evaluation


@torch.no_grad()
def _reference_logprobs(
    model: Any, tokenizer: Any, records: Sequence[dict], cfg: StepDPOConfig, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    model.eval()
    out_c, out_r = [torch.zeros(0)], [torch.zeros(0)]  # no records (no held-out split): empty
    for start in range(0, len(records), cfg.batch_size):
        chunk = records[start : start + cfg.batch_size]
        lw, ll = _pair_logprobs(model, tokenizer, chunk, cfg, device)
        out_c.append(lw.float().cpu())
        out_r.append(ll.float().cpu())
    return torch.cat(out_c), torch.cat(out_r)


def _styled_texts(chunk: Sequence[dict], style: PromptStyle) -> tuple[list[str], list[str]]:
    """Prompts and completions of a chunk as the model sees them: every chosen, then every
    rejected (so one batch holds both sides and its halves split them)."""
    prompts = [style_prompt(r["prompt"], style) for r in chunk]
    sides = [style_actions(r["prompt"], [r["chosen"], r["rejected"]], style) for r in chunk]
    return prompts * 2, [c for c, _ in sides] + [r for _, r in sides]


def _pair_logprobs(
    model: Any, tokenizer: Any, chunk: Sequence[dict], cfg: StepDPOConfig, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chosen and rejected completions of a chunk in ONE forward pass → ([P], [P])."""
    prompts, completions = _styled_texts(chunk, cfg.prompt_style)
    batch = encode_completions(tokenizer, prompts, completions, max_length=cfg.max_length)
    logps = completion_logprobs(model, batch.to(device))
    return logps[: len(chunk)], logps[len(chunk) :]


def _fused_dpo_loss(
    model: Any,
    tokenizer: Any,
    chunk: Sequence[dict],
    reference: torch.Tensor,
    cfg: StepDPOConfig,
    device: torch.device,
) -> torch.Tensor:
    """DPO loss of a chunk through ``qengine.kernels.fused_linear_dpo_loss``: only the action
    rows of the final hidden states meet the LM head, and no [tokens x vocab] logits are kept."""
    from qengine.kernels import fused_linear_dpo_loss

    prompts, completions = _styled_texts(chunk, cfg.prompt_style)
    batch = encode_completions(tokenizer, prompts, completions, max_length=cfg.max_length)
    rows, targets, cu_seqlens = completion_rows(model, batch.to(device))
    head = model.get_output_embeddings()
    out = fused_linear_dpo_loss(
        rows.to(head.weight.dtype),
        head.weight,
        targets,
        bias=getattr(head, "bias", None),
        cu_seqlens=cu_seqlens,
        ref_logps=reference,
        beta=cfg.beta,
    )
    return out.loss


@torch.no_grad()
def evaluate_pairs(
    model: Any,
    tokenizer: Any,
    records: Sequence[dict],
    reference: tuple[torch.Tensor, torch.Tensor],
    cfg: StepDPOConfig,
    device: torch.device,
) -> dict[str, float]:
    """Preference accuracy (chosen reward > rejected reward) and mean margin on ``records``."""
    if not records:
        return {}
    model.eval()
    margins = []
    for start in range(0, len(records), cfg.batch_size):
        chunk = records[start : start + cfg.batch_size]
        lw, ll = _pair_logprobs(model, tokenizer, chunk, cfg, device)
        rw = reference[0][start : start + len(chunk)].to(device)
        rl = reference[1][start : start + len(chunk)].to(device)
        _, m = dpo_loss(lw.float(), ll.float(), rw, rl, cfg.beta)
        margins.append(m["margin"].cpu())
    margin = torch.cat(margins)
    # A tie (margin exactly 0, e.g. before training) counts as half right, like a coin flip.
    accuracy = (margin > 0).float().mean() + 0.5 * (margin == 0).float().mean()
    return {"accuracy": float(accuracy), "margin": float(margin.mean())}


def train_step_dpo(
    model: Any,
    tokenizer: Any,
    records: Sequence[dict],
    *,
    config: StepDPOConfig | None = None,
    output_dir: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``model`` in place on preference ``records`` (prompt / chosen / rejected).

    Returns a history with per-epoch training loss and held-out accuracy / margin (before and
    after training). With ``output_dir`` the trained model, the frozen reference and the tokenizer
    are saved with ``save_pretrained`` plus ``qengine_qmodel.json`` (β, reference location).
    """
    cfg = config or StepDPOConfig()
    missing = [c for c in ("prompt", "chosen", "rejected") if records and c not in records[0]]
    if not records or missing:
        raise ValueError(
            f"records must be non-empty with prompt/chosen/rejected (missing {missing})"
        )
    torch.manual_seed(cfg.seed)
    device = next(model.parameters()).device
    reference_model = copy.deepcopy(model).eval()
    for p in reference_model.parameters():
        p.requires_grad_(False)
    train, held_out = _split(list(records), cfg.eval_fraction, cfg.seed)
    if not train:
        raise ValueError("no training pairs left after the held-out split; lower eval_fraction")
    ref_train = _reference_logprobs(reference_model, tokenizer, train, cfg, device)
    ref_eval = _reference_logprobs(reference_model, tokenizer, held_out, cfg, device)
    history: dict[str, Any] = {"config": asdict(cfg), "train_pairs": len(train), "epochs": []}
    history["eval_before"] = evaluate_pairs(model, tokenizer, held_out, ref_eval, cfg, device)

    def step_loss(idx: list[int]) -> tuple[torch.Tensor, dict[str, float]]:
        chunk = [train[i] for i in idx]
        reference = torch.cat([ref_train[0][idx], ref_train[1][idx]]).to(device)
        return _fused_dpo_loss(model, tokenizer, chunk, reference, cfg, device), {}

    def end_of_epoch(epoch: int, means: dict[str, float]) -> None:
        row = {"epoch": epoch, **means}
        row.update(evaluate_pairs(model, tokenizer, held_out, ref_eval, cfg, device))
        history["epochs"].append(row)

    train_epochs(
        model, len(train), step_loss, cfg, device=device, desc="step-DPO", progress=progress,
        end_of_epoch=end_of_epoch,
    )  # fmt: skip
    history["eval_after"] = history["epochs"][-1]
    if output_dir is not None:
        save_q_model(
            model,
            reference_model,
            tokenizer,
            output_dir,
            cfg.beta,
            history,
            prompt_style=cfg.prompt_style,
            max_length=cfg.max_length,
        )
    return history


def save_q_model(
    model: Any,
    reference: Any,
    tokenizer: Any,
    output_dir: str | Path,
    beta: float,
    history: dict[str, Any] | None = None,
    *,
    prompt_style: PromptStyle = "full",
    max_length: int = 512,
) -> Path:
    """Write a Q-value model: model + tokenizer, ``reference/``, ``qengine_qmodel.json``."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    reference.save_pretrained(out / REFERENCE_DIR)
    meta = {
        "beta": beta,
        "reference": REFERENCE_DIR,
        "prompt_style": prompt_style,
        "max_length": max_length,
        "history": history or {},
    }
    (out / QMODEL_CONFIG).write_text(json.dumps(meta, indent=2))
    return out
