"""Step-level DPO: train a Q-value model on MCTS preference pairs (arXiv 2409.09345, section 4).

For a state s with a winning action a_w and a losing sibling a_l, the loss is DPO's

    L = -log σ( β·[(log πθ(a_w|s) - log πref(a_w|s)) - (log πθ(a_l|s) - log πref(a_l|s))] )

and the trained model's implicit Q-value of an action is Q(s, a) = β·(log πθ(a|s) − log πref(a|s)),
up to a per-state constant, which is all that ranking candidate actions needs. The reference πref is
the initial model, frozen; its log-probs are computed once before training.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ..data.pairs import records_env
from ..data.prompts import PromptStyle, style_actions, style_prompt
from ..models.causal_lm import lm_head
from . import distributed
from .config import StepDPOConfig
from .heldout import pair_accuracy, split_by_task
from .logprobs import completion_logprobs, completion_rows
from .loop import train_epochs
from .packing import (
    StateGroup,
    encode_packed,
    gather_actions,
    group_by_state,
    packed_action_logprobs,
    packed_action_rows,
    packs_prefixes,
    pair_action_index,
    state_batches,
)
from .tokenize import encode_completions


@torch.no_grad()
def _record_logprobs(
    model: Any, tokenizer: Any, records: Sequence[dict], cfg: StepDPOConfig, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probs of every record's chosen and rejected action → (float32 [R], [R])."""
    model.eval()
    chosen, rejected = torch.zeros(len(records)), torch.zeros(len(records))
    if not records:  # no held-out split
        return chosen, rejected
    if cfg.pack_prefixes and packs_prefixes(model):
        groups = group_by_state(records, cfg.prompt_style)
        for start in range(0, len(groups), cfg.per_device_train_batch_size):
            chunk = groups[start : start + cfg.per_device_train_batch_size]
            batch = encode_packed(tokenizer, chunk, max_length=cfg.max_length).to(device)
            logps = packed_action_logprobs(model, batch).cpu()
            c, r, rows = pair_action_index(chunk, batch)
            chosen[rows], rejected[rows] = logps[c], logps[r]
        return chosen, rejected
    for start in range(0, len(records), cfg.per_device_train_batch_size):
        chunk = records[start : start + cfg.per_device_train_batch_size]
        lw, ll = _pair_logprobs(model, tokenizer, chunk, cfg, device)
        chosen[start : start + len(chunk)] = lw.float().cpu()
        rejected[start : start + len(chunk)] = ll.float().cpu()
    return chosen, rejected


def _styled_texts(chunk: Sequence[dict], style: PromptStyle) -> tuple[list[str], list[str]]:
    """Prompts and completions of a chunk as the model sees them: every chosen, then every
    rejected (so one batch holds both sides and its halves split them)."""
    prompts = [style_prompt(r["prompt"], style, r.get("env")) for r in chunk]
    sides = [
        style_actions(r["prompt"], [r["chosen"], r["rejected"]], style, r.get("env")) for r in chunk
    ]
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
    """DPO loss of a chunk of pairs through ``qengine.kernels.fused_linear_dpo_loss``: only the
    action rows of the final hidden states meet the LM head, and no [tokens x vocab] logits are
    kept. (The path for models whose attention takes no tree mask, e.g. flash-attn.)"""
    prompts, completions = _styled_texts(chunk, cfg.prompt_style)
    batch = encode_completions(tokenizer, prompts, completions, max_length=cfg.max_length)
    rows, targets, cu_seqlens = completion_rows(model, batch.to(device))
    return _head_dpo_loss(model, rows, targets, cu_seqlens, reference, cfg.beta)


def _packed_dpo_loss(
    model: Any,
    tokenizer: Any,
    groups: Sequence[StateGroup],
    reference: tuple[torch.Tensor, torch.Tensor],
    cfg: StepDPOConfig,
    device: torch.device,
) -> torch.Tensor:
    """DPO loss of every pair of ``groups``, each state's prompt run once (``packing``).

    ``reference``: the reference log-probs (chosen [R], rejected [R]) of the R records that
    the groups' pairs index.
    """
    batch = encode_packed(tokenizer, groups, max_length=cfg.max_length).to(device)
    rows = packed_action_rows(model, batch)
    chosen, rejected, records = pair_action_index(groups, batch)
    # Chosen rows of every pair, then rejected ones: the layout the DPO op expects.
    index, cu_seqlens = gather_actions(batch, torch.cat([chosen, rejected]))
    index = index.to(device)
    ref = torch.cat([reference[0][records], reference[1][records]]).to(device)
    # index_select, not rows[index]: an action shared by several pairs repeats in ``index``, and
    # the backward of advanced indexing then accumulates with racing atomic adds on a multi-
    # threaded CPU (a different sum order per run: the demo trained a different model each time).
    # index_select's backward (index_add) sums in a fixed order.
    return _head_dpo_loss(
        model, rows.index_select(0, index), batch.targets[index], cu_seqlens.to(device), ref,
        cfg.beta,
    )  # fmt: skip


def _head_dpo_loss(
    model: Any,
    rows: torch.Tensor,
    targets: torch.Tensor,
    cu_seqlens: torch.Tensor,
    reference: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """rows [n, D] of 2P action sequences (chosen first) → mean DPO loss through the LM head."""
    from qengine.kernels import fused_linear_dpo_loss

    head = lm_head(model)  # the model's own logit transform (softcap / logit scale) included
    out = fused_linear_dpo_loss(
        rows.to(head.weight.dtype),
        head.weight,
        targets,
        bias=head.bias,
        cu_seqlens=cu_seqlens,
        ref_logps=reference,
        beta=beta,
        temperature=head.temperature,
        softcap=head.softcap,
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
    """Preference accuracy (chosen reward > rejected reward, ties half: ``pair_accuracy``) and
    mean reward margin on ``records`` (the margins of ``qengine.kernels.dpo_loss_from_logps``)."""
    from qengine.kernels import dpo_loss_from_logps

    if not records:
        return {}
    lw, ll = _record_logprobs(model, tokenizer, records, cfg, device)
    out = dpo_loss_from_logps(lw, ll, reference[0].float(), reference[1].float(), beta=cfg.beta)
    margin = out.reward_margins
    return {"accuracy": pair_accuracy(margin), "margin": float(margin.mean())}


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
    are saved as a :class:`~qengine.agents.QValueModel` (``save_pretrained``; rank 0 only under
    ``torch.distributed``), which ``QValueModel.from_pretrained`` loads.
    """
    cfg = config or StepDPOConfig()
    if not records:
        from ..data.pairs import NO_PAIRS
        from ..errors import UsageValueError

        raise UsageValueError(f"nothing to train on: {NO_PAIRS}")
    missing = [c for c in ("prompt", "chosen", "rejected") if records and c not in records[0]]
    if missing:
        raise ValueError(
            f"records must be non-empty with prompt/chosen/rejected (missing {missing})"
        )
    torch.manual_seed(cfg.seed)
    device = next(model.parameters()).device
    # under torchrun: every process starts from rank 0's model, and so shares one reference
    distributed.init_from_env("nccl" if device.type == "cuda" else "gloo")
    distributed.broadcast_parameters(model)
    reference_model = copy.deepcopy(model).eval()
    for p in reference_model.parameters():
        p.requires_grad_(False)
    train, held_out = split_by_task(list(records), cfg.eval_fraction, cfg.seed)
    if not train:
        raise ValueError("no training pairs left after the held-out split; lower eval_fraction")
    ref_train = _record_logprobs(reference_model, tokenizer, train, cfg, device)
    ref_eval = _record_logprobs(reference_model, tokenizer, held_out, cfg, device)
    history: dict[str, Any] = {"config": asdict(cfg), "train_pairs": len(train), "epochs": []}
    history["eval_before"] = evaluate_pairs(model, tokenizer, held_out, ref_eval, cfg, device)

    # With a tree mask, batches hold whole states and each state's prompt runs once.
    packed = cfg.pack_prefixes and packs_prefixes(model)

    def step_loss(idx: list[int]) -> tuple[torch.Tensor, dict[str, float]]:
        chunk = [train[i] for i in idx]
        if packed:
            groups = group_by_state(chunk, cfg.prompt_style)
            reference = (ref_train[0][idx], ref_train[1][idx])
            return _packed_dpo_loss(model, tokenizer, groups, reference, cfg, device), {}
        reference = torch.cat([ref_train[0][idx], ref_train[1][idx]]).to(device)
        return _fused_dpo_loss(model, tokenizer, chunk, reference, cfg, device), {}

    def end_of_epoch(epoch: int, means: dict[str, float]) -> None:
        row = {"epoch": epoch, **means}
        row.update(evaluate_pairs(model, tokenizer, held_out, ref_eval, cfg, device))
        history["epochs"].append(row)

    train_epochs(
        model, len(train), step_loss, cfg, device=device, desc="step-DPO", progress=progress,
        end_of_epoch=end_of_epoch,
        batches=state_batches(train, cfg.per_device_train_batch_size) if packed else None,
    )  # fmt: skip
    history["eval_after"] = history["epochs"][-1]
    if output_dir is not None and distributed.is_main_process():
        from ..agents.q_value import QValueModel

        QValueModel(
            model,
            reference_model,
            tokenizer,
            beta=cfg.beta,
            prompt_style=cfg.prompt_style,
            env=records_env(records),
            max_length=cfg.max_length,
            history=history,
        ).save_pretrained(output_dir)
    distributed.barrier()  # the other processes return once rank 0 has written the model
    return history
