"""qengine.kernels - fused Triton kernels for token-level Q-value methods, with PyTorch references.

Importable without a GPU and without Triton: every op falls back to its PyTorch implementation on
CPU (``impl="auto"``; see :mod:`._dispatch`). The ops with kernels are ``torch.library`` custom ops
(namespace ``qengine``), so ``torch.compile(fullgraph=True)`` traces through all of them. Legend
used throughout: ``N`` tokens (rows, packed over sequences), ``D`` hidden size, ``V`` vocabulary,
``S`` segments, ``P`` preference pairs, ``C`` candidate actions, ``β`` temperature of the implicit
reward.

Ops: (1) :func:`token_logprobs`, (2) :func:`fused_linear_logprobs`, (3) :func:`token_q_scores`,
:func:`value_head_scores`, :func:`segment_reduce`, (4) :func:`fused_linear_dpo_loss`,
(5) :func:`qrm_pairwise_loss`, (6) :func:`implicit_step_q`.
"""

if __name__ != "qengine.kernels":
    # This folder imported as a top-level ``kernels`` (the repository root on sys.path: an editable
    # install, or a command run from the root). transformers probes for Hugging Face's own
    # ``kernels`` package by importing that name; running this package a second time would register
    # the ``qengine::`` custom ops again and free the live ones (a segfault at the next call).
    # Hand out the one real package instead.
    import importlib as _importlib
    import sys as _sys

    _sys.modules[__name__] = _importlib.import_module("qengine.kernels")
else:
    from ._common import TokenLogprobs
    from ._triton import HAS_TRITON
    from .dpo import DPOOutput, dpo_loss_from_logps, fused_linear_dpo_loss
    from .fused_linear_logprobs import (
        FusedLinearConfig,
        fused_linear_logprobs,
        fused_linear_logprobs_reference,
    )
    from .implicit_q import ImplicitQ, implicit_step_q
    from .logprobs import token_logprobs, token_logprobs_reference
    from .q_scoring import (
        TokenQ,
        ValueHeadScores,
        token_q_scores,
        value_head_scores,
        value_head_scores_reference,
    )
    from .qrm import QRMOutput, qrm_loss_from_scores, qrm_pairwise_loss
    from .segments import (
        SegmentStats,
        cu_seqlens_from_lengths,
        segment_reduce,
        segment_reduce_reference,
    )

__all__ = [
    "HAS_TRITON",
    "DPOOutput",
    "FusedLinearConfig",
    "ImplicitQ",
    "QRMOutput",
    "SegmentStats",
    "TokenLogprobs",
    "TokenQ",
    "ValueHeadScores",
    "cu_seqlens_from_lengths",
    "dpo_loss_from_logps",
    "fused_linear_dpo_loss",
    "fused_linear_logprobs",
    "fused_linear_logprobs_reference",
    "implicit_step_q",
    "qrm_loss_from_scores",
    "qrm_pairwise_loss",
    "segment_reduce",
    "segment_reduce_reference",
    "token_logprobs",
    "token_logprobs_reference",
    "token_q_scores",
    "value_head_scores",
    "value_head_scores_reference",
]
