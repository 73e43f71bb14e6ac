"""Q-RM: token-level Q-function reward model (Chen et al. 2025, arXiv:2505.23363).

Legend: ``B`` sequences, ``T`` positions, ``P`` preference pairs. See ``docs/qrm.md``.
"""

from .model import QRM_CONFIG, QRM_VALUE_HEAD, QRewardModel
from .rewards import Normalization, check_token_masks, normalize_token_rewards
from .train import QRMTrainConfig, as_records, evaluate_qrm, train_qrm

__all__ = [
    "QRM_CONFIG",
    "QRM_VALUE_HEAD",
    "Normalization",
    "QRMTrainConfig",
    "QRewardModel",
    "as_records",
    "check_token_masks",
    "evaluate_qrm",
    "normalize_token_rewards",
    "train_qrm",
]
