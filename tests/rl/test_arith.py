"""The shipped Q-RM vs ORM experiment in miniature: plumbing, and that rewards and losses move."""

from __future__ import annotations

import json
import math

from qengine.rl.arith import (
    ArithConfig,
    answer_of,
    generate_problems,
    run_experiment,
    write_results,
)


def test_problems_are_seeded_and_answers_parse() -> None:
    a, b = generate_problems(20, seed=3), generate_problems(20, seed=3)
    assert a == b and a != generate_problems(20, seed=4)
    for p in a:
        assert answer_of(p.solution) == p.answer >= 0
        for step in p.solution.split(" . ")[:2]:
            x, op, y, _, z = step.split()
            assert (int(x) + int(y) if op == "+" else int(x) - int(y)) == int(z) >= 0
    assert answer_of("1 + 2 = 3 . answer") is None
    assert answer_of("answer three") is None
    assert answer_of("") is None


def test_miniature_experiment_runs_end_to_end(tmp_path) -> None:
    config = ArithConfig(
        hidden_size=32, num_layers=1, sft_steps=20, sft_batch=16, qrm_prompts=24, qrm_samples=2,
        qrm_epochs=1, rl_steps=4, rl_batch=8, eval_every=2, eval_problems=12,
        target_accuracy=1.01, max_new_tokens=16,
    )  # fmt: skip
    result = run_experiment(config)
    assert result["sft"]["final_loss"] < 3.0  # from ~ln(49) = 3.9 at initialisation
    assert result["qrm"]["pairs"] > 0
    assert set(result["methods"]) == {"qrm", "orm"}
    for method in ("qrm", "orm"):
        run = result["methods"][method]
        assert run["steps_to_target"] is None  # unreachable target: all steps run
        assert [s for s, _ in run["curve"]] == [0, 2, 4]
        assert len(run["losses"]) == 4 and all(math.isfinite(x) for x in run["losses"])
    # Q-RM rewards are dense: its loss moves from step to step even when no sample is right.
    assert len(set(result["methods"]["qrm"]["losses"])) > 1
    # The outcome reward is sparse: with a mean baseline its loss is 0 exactly when every sample
    # of the batch got the same outcome, and nonzero otherwise.
    orm = result["methods"]["orm"]
    for loss, acc in zip(orm["losses"], orm["train_sample_accuracy"], strict=True):
        assert (loss == 0.0) == (acc in (0.0, 1.0))
    assert result["speedup_orm_over_qrm"] is None
    path = write_results(result, tmp_path / "qrm_vs_orm")
    assert json.loads(path.read_text())[0]["config"]["rl_steps"] == 4
    assert "| seed |" in path.with_suffix(".md").read_text()
