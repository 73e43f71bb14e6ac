"""The pieces every trainer shares: one config base, one held-out split, one pair accuracy, one
DPO loss, one save / load layout."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from qengine.critics import ValueTrainConfig
from qengine.models.pretrained import NotAModelError, read_config
from qengine.qrm import QRMTrainConfig
from qengine.train import StepDPOConfig, TrainConfig, pair_accuracy, split_by_task

LOOP_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


@pytest.mark.parametrize("config", [StepDPOConfig, ValueTrainConfig, QRMTrainConfig])
def test_every_trainer_config_is_a_train_config_with_trl_names(config) -> None:
    assert issubclass(config, TrainConfig)
    names = {f.name for f in dataclasses.fields(config)}
    assert LOOP_FIELDS <= names
    assert {
        "num_train_epochs",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
    } <= names
    assert not {"epochs", "batch_size", "grad_accumulation"} & names
    with pytest.raises(ValueError, match="per_device_train_batch_size"):
        config(per_device_train_batch_size=0)
    with pytest.raises(ValueError, match="learning_rate"):
        config(learning_rate=float("nan"))


def test_split_holds_out_whole_tasks_the_same_in_every_process() -> None:
    records = [{"task": f"t{i % 7}", "prompt": f"p{i}"} for i in range(50)]
    records += [{"prompt": "shared"}, {"prompt": "shared"}, {"state": "alone"}]
    train, held = split_by_task(records, 0.3, seed=4)
    assert len(train) + len(held) == len(records)
    train_keys = {r.get("task", r.get("prompt")) for r in train}
    held_keys = {r.get("task", r.get("prompt")) for r in held}
    assert not (train_keys & held_keys - {None})  # a task (or a prompt) is never on both sides
    assert split_by_task(records, 0.3, seed=4) == (train, held)
    assert split_by_task(records, 0.0, seed=4) == (records, [])
    with pytest.raises(ValueError, match="fraction"):
        split_by_task(records, 1.0)


def test_pair_accuracy_counts_ties_half_for_tensors_and_arrays() -> None:
    margin = [1.0, -2.0, 0.0, 0.0, 3.0]
    assert pair_accuracy(np.array(margin)) == pytest.approx(0.6)
    assert pair_accuracy(torch.tensor(margin, requires_grad=True)) == pytest.approx(0.6)
    with pytest.raises(ValueError, match="no pairs"):
        pair_accuracy(np.array([]))


def test_a_directory_that_is_not_a_model_is_a_usage_error(tmp_path) -> None:
    from qengine.errors import UsageError

    with pytest.raises(NotAModelError, match=r"has no qengine_x\.json\); train one") as info:
        read_config(tmp_path, config_file="qengine_x.json", kind="X model", hint="train one")
    assert isinstance(info.value, UsageError) and isinstance(info.value, FileNotFoundError)
    (tmp_path / "qengine_x.json").write_text('{"format": 9}')
    with pytest.raises(ValueError, match="format"):
        read_config(tmp_path, config_file="qengine_x.json", kind="X model", hint="")
