"""Op 6 - implicit step Q for inference (DPO's implicit reward, Rafailov et al. 2024,
"From r to Q*", arXiv:2404.12358).

For ``C`` candidate actions (steps) sharing one prefix, each a run of action tokens packed with
``cu_seqlens`` [C + 1] (the shared prefix is encoded once by the model; only the action tokens'
final hidden states are passed here, ``N`` rows in total):

    Q(s, a_c) = β Σ_{t ∈ a_c} (log πθ(y_t | ·) - log πref(y_t | ·))

Both log-prob passes are op 2 forwards (no logits in HBM) and the per-candidate sums the
deterministic segment kernel; no autograd state is kept.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .fused_linear_logprobs import FusedLinearConfig, fused_linear_logprobs
from .segments import resolve_cu_seqlens, segment_reduce

__all__ = ["ImplicitQ", "implicit_step_q"]


class ImplicitQ(NamedTuple):
    """fp32 [C]: ``q`` = β (policy - ref); per-candidate summed log-probs and action lengths."""

    q: torch.Tensor
    policy_logps: torch.Tensor
    ref_logps: torch.Tensor
    num_tokens: torch.Tensor


@torch.no_grad()
def implicit_step_q(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    *,
    ref_weight: torch.Tensor,
    ref_hidden: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    ref_bias: torch.Tensor | None = None,
    cu_seqlens: torch.Tensor | None = None,
    beta: float = 0.1,
    temperature: float = 1.0,
    softcap: float | None = None,
    ignore_index: int = -100,
    impl: str = "auto",
    config: FusedLinearConfig | None = None,
    validate: bool = True,
) -> ImplicitQ:
    """Implicit Q of many candidate actions, batched.

    Args:
        hidden: [N, D] policy hidden states of the candidates' action tokens (packed, with
            ``cu_seqlens`` [C + 1]) or [C, T, D] padded (``ignore_index`` in ``target`` on padding).
        weight / bias: policy LM head [V, D] / [V]; ref_weight / ref_bias: reference head.
        ref_hidden: the reference model's hidden states (default: ``hidden``, e.g. a shared trunk).
        target: [N] or [C, T] action token ids.
    """
    cu = resolve_cu_seqlens(target, cu_seqlens, validate=validate)
    kw = dict(
        temperature=temperature, softcap=softcap, ignore_index=ignore_index, impl=impl,
        config=config,
    )  # fmt: skip
    action = (target.reshape(-1) != ignore_index).float()
    pol = fused_linear_logprobs(hidden, weight, target, bias, **kw).logp.reshape(-1)
    ref = fused_linear_logprobs(
        hidden if ref_hidden is None else ref_hidden, ref_weight, target, ref_bias, **kw
    ).logp.reshape(-1)
    pol_s = segment_reduce(pol, cu, mask=action, impl=impl, validate=False)
    ref_s = segment_reduce(ref, cu, mask=action, impl=impl, validate=False)
    return ImplicitQ(beta * (pol_s.sum - ref_s.sum), pol_s.sum, ref_s.sum, pol_s.count)
